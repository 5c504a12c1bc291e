#pragma once
// The step-through helper shared by every lesson.
//
//   int main(int argc, char** argv) {
//     return gradlab::lesson::run(argc, argv, [](gradlab::lesson::Lesson& L) {
//       L.step("The shape of a tensor");
//       L.say("A tensor is a flat block of numbers plus a shape and strides.");
//       L.check(t.numel() == 6, "a (2, 3) tensor holds 6 numbers");
//       L.save_text("table.csv", csv);        // writes out/lesson-NN/table.csv and remembers it
//     }, {.number = 1, .name = "tensors", .title = "Tensors: shape, strides, views"});
//   }
//
// Every lesson accepts the same flags: --no-pause, --quick, --out DIR (default out/lesson-NN), --seed N
// (the seed used is always printed). A step prints its heading; when stdin is a terminal and --no-pause is not
// given, the lesson waits for Enter before the next step. check() asserts a mechanical claim: a failed claim is
// reported at once and the lesson exits with code 1 at the end (after listing the files it wrote).
// The last lines of every lesson list each file it wrote.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cli/args.h"

namespace gradlab::lesson {

struct Info {
  int number = 0;            // NN
  std::string name;          // "flagship"
  std::string title;         // one line, shown at the start
  std::uint64_t default_seed = 1337;
};

class Lesson {
 public:
  Lesson(Info info, cli::ArgParser& args);

  bool quick() const { return quick_; }
  bool pause() const { return pause_; }
  std::uint64_t seed() const { return seed_; }
  const std::string& out_dir() const { return out_dir_; }
  const Info& info() const { return info_; }
  cli::ArgParser& args() { return args_; }

  // A new step: waits for Enter after the previous one (terminal only), then prints "== Step k: heading ==".
  void step(const std::string& heading);
  // One or more lines of explanation (printed as given, each line indented by two spaces).
  void say(const std::string& text);
  // printf-style line.
  void sayf(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  // Asserts a mechanical claim: prints "  [ok] claim" or "  [FAILED] claim (detail)"; failures make the lesson
  // exit non-zero at the end. Returns cond.
  bool check(bool cond, const std::string& claim, const std::string& detail = "");
  // |a - b| <= atol + rtol |b|, printed with both values and the error.
  bool check_close(double a, double b, double rtol, double atol, const std::string& claim);
  int failures() const { return failures_; }

  // out_dir/file (directories are created on first use); the path is remembered as written.
  std::string path(const std::string& file);
  // out_dir/name without registering it: a stem for functions that add extensions (.png, .svg) and return the
  // paths they wrote (pass those to wrote()).
  std::string stem(const std::string& name);
  // Remembers a path written by someone else (e.g. the files returned by save_attention_figure).
  void wrote(const std::string& path);
  void wrote(const std::vector<std::string>& paths);
  // Writes text to out_dir/file and remembers it; returns the path.
  std::string save_text(const std::string& file, const std::string& text);
  const std::vector<std::string>& files() const { return files_; }

  // Prints the summary: the seed, the checks, and every file written. Returns the exit code (0 or 1).
  int finish();

 private:
  Info info_;
  cli::ArgParser& args_;
  bool quick_ = false, pause_ = false;
  std::uint64_t seed_ = 0;
  std::string out_dir_;
  int step_count_ = 0, checks_ = 0, failures_ = 0;
  std::vector<std::string> files_;
  std::vector<std::string> failed_claims_;
};

// Declares the common flags (plus whatever `declare` adds), parses, runs `body`, and returns the exit code:
// 0 all claims held, 1 a claim failed or the lesson threw, 2 bad usage. --help prints and returns 0.
int run(int argc, char** argv, const Info& info, const std::function<void(cli::ArgParser&)>& declare,
        const std::function<void(Lesson&)>& body);
inline int run(int argc, char** argv, const Info& info, const std::function<void(Lesson&)>& body) {
  return run(argc, argv, info, nullptr, body);
}

// Small formatting helpers for tables printed by lessons.
std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
// Seconds since an arbitrary start (steady clock).
double now_seconds();

}  // namespace gradlab::lesson
