#include "lessons/lesson.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>

#include "tensor/cpu.h"
#include "tensor/error.h"

namespace gradlab::lesson {

namespace {

std::string vformat(const char* format, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  const int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0) return "";
  std::string s(static_cast<std::size_t>(n) + 1, '\0');
  std::vsnprintf(s.data(), s.size(), format, ap);
  s.resize(static_cast<std::size_t>(n));
  return s;
}

std::string two_digits(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d", n);
  return buf;
}

}  // namespace

std::string fmt(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  std::string s = vformat(format, ap);
  va_end(ap);
  return s;
}

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

Lesson::Lesson(Info info, cli::ArgParser& args) : info_(std::move(info)), args_(args) {
  quick_ = args_.get_flag("quick");
  // Pause only when a person is there to press Enter.
  pause_ = !args_.get_flag("no_pause") && ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO);
  seed_ = static_cast<std::uint64_t>(args_.get_int64("seed"));
  out_dir_ = args_.get_string("out");
  if (out_dir_.empty()) throw_error("--out: an empty directory name");
}

void Lesson::step(const std::string& heading) {
  if (step_count_ > 0 && pause_) {
    std::cout << "\n  [Enter: next step] " << std::flush;
    std::string line;
    if (!std::getline(std::cin, line)) pause_ = false;  // stdin closed: run on
  }
  ++step_count_;
  std::cout << "\n== Step " << step_count_ << ": " << heading << " ==\n" << std::flush;
}

void Lesson::say(const std::string& text) {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    std::cout << (line.empty() ? "" : "  ") << line << "\n";
    start = end + 1;
  }
  std::cout << std::flush;
}

void Lesson::sayf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  std::string s = vformat(format, ap);
  va_end(ap);
  say(s);
}

bool Lesson::check(bool cond, const std::string& claim, const std::string& detail) {
  ++checks_;
  if (cond) {
    std::cout << "  [ok] " << claim << (detail.empty() ? "" : " (" + detail + ")") << "\n";
  } else {
    ++failures_;
    failed_claims_.push_back(claim);
    std::cout << "  [FAILED] " << claim << (detail.empty() ? "" : " (" + detail + ")") << "\n";
  }
  std::cout << std::flush;
  return cond;
}

bool Lesson::check_close(double a, double b, double rtol, double atol, const std::string& claim) {
  const double err = std::fabs(a - b);
  const bool ok = std::isfinite(a) && std::isfinite(b) && err <= atol + rtol * std::fabs(b);
  return check(ok, claim, fmt("%.9g vs %.9g, |diff| %.2e", a, b, err));
}

std::string Lesson::path(const std::string& file) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir_, ec);
  if (ec) throw_error("--out ", out_dir_, ": cannot create the directory: ", ec.message());
  std::string p = (std::filesystem::path(out_dir_) / file).string();
  wrote(p);
  return p;
}

std::string Lesson::stem(const std::string& name) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir_, ec);
  if (ec) throw_error("--out ", out_dir_, ": cannot create the directory: ", ec.message());
  return (std::filesystem::path(out_dir_) / name).string();
}

void Lesson::wrote(const std::string& p) {
  for (const auto& f : files_)
    if (f == p) return;
  files_.push_back(p);
}

void Lesson::wrote(const std::vector<std::string>& paths) {
  for (const auto& p : paths) wrote(p);
}

std::string Lesson::save_text(const std::string& file, const std::string& text) {
  const std::string p = path(file);
  std::ofstream f(p, std::ios::binary);
  f << text;
  f.close();
  if (!f) throw_error("lesson: cannot write ", p);
  return p;
}

int Lesson::finish() {
  std::cout << "\n== Done: lesson " << two_digits(info_.number) << " (" << info_.name << ") ==\n";
  std::cout << "  seed " << seed_ << (quick_ ? ", --quick sizes" : "") << "\n";
  std::cout << "  " << checks_ - failures_ << "/" << checks_ << " checks passed\n";
  for (const auto& c : failed_claims_) std::cout << "  FAILED: " << c << "\n";
  if (files_.empty()) {
    std::cout << "  files written: none\n";
  } else {
    std::cout << "  files written (" << files_.size() << "):\n";
    for (const auto& f : files_) std::cout << "    " << f << "\n";
  }
  std::cout << std::flush;
  return failures_ == 0 ? 0 : 1;
}

int run(int argc, char** argv, const Info& info, const std::function<void(cli::ArgParser&)>& declare,
        const std::function<void(Lesson&)>& body) {
  const std::string command = "lesson " + two_digits(info.number) + "-" + info.name;
  cli::ArgParser args(command, info.title);
  std::unique_ptr<Lesson> lesson;
  try {
    args.section("lesson");
    args.add_flag("no_pause", "run straight through (no waiting for Enter between steps)");
    args.add_flag("quick", "small sizes, for CI (a few seconds)");
    args.add_string("out", "out/lesson-" + two_digits(info.number), "output folder for images and data", "DIR");
    args.add_int("seed", static_cast<std::int64_t>(info.default_seed), 0, std::numeric_limits<std::int64_t>::max(),
                 "seed of every random choice in the lesson");
    if (declare) {
      args.section("this lesson");
      declare(args);
    }
    args.parse(argc - 1, argv + 1);
    if (args.help_requested()) {
      std::cout << args.help();
      return 0;
    }
    lesson = std::make_unique<Lesson>(info, args);
  } catch (const cli::UsageError& e) {
    std::cerr << e.what() << "\n";  // already names the command
    return 2;
  } catch (const Error& e) {
    std::cerr << command << ": " << e.what() << "\n";
    return 2;
  }
  std::cout << "Lesson " << two_digits(info.number) << ": " << info.title << "\n";
  std::cout << "  " << build_info() << "\n";
  std::cout << "  seed " << lesson->seed() << (lesson->quick() ? " (--quick)" : "") << ", output folder "
            << lesson->out_dir() << "\n";
  try {
    body(*lesson);
  } catch (const std::exception& e) {
    std::cout << std::flush;
    std::cerr << command << ": error: " << e.what() << "\n";
    lesson->finish();
    return 1;
  }
  return lesson->finish();
}

}  // namespace gradlab::lesson
