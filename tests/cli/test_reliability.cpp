// Issue 22: no run is ever lost or silently wrong. Each finding has a test here:
//   1. no output path overwrites an input or a checkpoint            (hostile suite, fast)
//   2. a SIGKILL anywhere in a save leaves a resumable pair          (reliability suite: the 25-kill loop)
//   3. one writer per run directory                                  (fast lock tests; two real runs: reliability)
//   4. non-finite results are exit-1 failures naming the layer       (fast)
//   5. an up-front memory estimate                                   (fast refusal; the RSS comparison: reliability)
// plus checksums (fast, and the 300-flip test: reliability), resume mismatches, and the messages.
// Child processes are this program run on its helper test case (fork + exec at once, as tests/train does).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "cli/eval.h"
#include "cli/train.h"
#include "hostile_util.h"
#include "tensor/rng.h"
#include "train/checkpoint.h"
#include "train/diagnose.h"
#include "train/memory.h"
#include "train/run_lock.h"
#include "train/safetensors.h"

using namespace hostile;
using nlohmann::ordered_json;

namespace {

constexpr const char* kChildArgs = "GRADLAB_RELIABILITY_CHILD_ARGS";

struct Child {
  int pid = -1;
};

// Starts `gradlab train ARGS` as a child process (stdout and stderr to files), with extra environment.
Child spawn_train(const std::vector<std::string>& args, const std::vector<std::string>& env,
                  const std::string& out_path, const std::string& err_path) {
  std::string joined;
  for (const auto& a : args) joined += a + '\x1f';
  std::vector<std::string> env_strings = env;
  env_strings.push_back(std::string(kChildArgs) + "=" + joined);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    for (auto& e : env_strings) ::putenv(e.data());
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) ::dup2(out, 1);
    if (err >= 0) ::dup2(err, 2);
    const char* argv[] = {"/proc/self/exe", "--test-case=reliability child process helper", "--no-version=true",
                          nullptr};
    ::execv("/proc/self/exe", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  return {pid};
}

struct Ended {
  int status = 0;
  long max_rss_kb = 0;
  bool killed() const { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  int code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

Ended wait_for(const Child& c) {
  Ended e;
  struct rusage ru {};
  while (::wait4(c.pid, &e.status, 0, &ru) < 0)
    if (errno != EINTR) throw std::runtime_error("wait4 failed");
  e.max_rss_kb = ru.ru_maxrss;
  return e;
}

// log.csv without the tokens_per_second column (wall-clock time is the one thing a rerun may change).
std::string log_without_timing(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string line, out;
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, ',')) cols.push_back(col);
    if (line.back() == ',') cols.push_back("");
    for (std::size_t i = 0; i < cols.size(); ++i)
      if (i != 4) out += cols[i] + (i + 1 < cols.size() ? "," : "");
    out += "\n";
  }
  return out;
}

Run run_command(int (*f)(const std::vector<std::string>&, std::ostream&, std::ostream&),
                const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Run r;
  r.code = f(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}
Run attn(const std::vector<std::string>& args) { return run_command(gradlab::cli::run_attn, args); }
Run sample(const std::vector<std::string>& args) { return run_command(gradlab::cli::run_sample, args); }

// The reference checkpoint with `change` applied to its model file (checksums recomputed, as a forger would).
void edit_model(const std::string& dir, const std::function<void(SafetensorsParts&)>& change) {
  const std::string path = gradlab::checkpoint_files(dir).model;
  SafetensorsParts p = SafetensorsParts::parse(read_file(path));
  change(p);
  write_file(path, p.bytes());
}

void set_float(SafetensorsParts& p, const std::string& tensor, std::size_t index, float value) {
  const auto [begin, end] = p.range(tensor);
  REQUIRE(begin + 4 * (index + 1) <= end);
  std::memcpy(p.data.data() + begin + 4 * index, &value, 4);
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// A checkpoint directory as gradlab wrote it before issue 22: two plain files at the top level, no checksums.
void write_legacy_checkpoint(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const gradlab::CheckpointFiles ref = gradlab::checkpoint_files(reference_checkpoint());
  for (const auto& [from, name] : {std::pair{ref.model, gradlab::kModelFileName}, std::pair{ref.train_state, gradlab::kTrainStateFileName}}) {
    SafetensorsParts p = SafetensorsParts::parse(read_file(from));
    p.header["__metadata__"].erase(gradlab::kSafetensorsChecksumKey);
    if (std::string(name) == gradlab::kModelFileName)  // the model did not record its run's seed and data
      for (const char* key : {"seed", "data"}) p.header["__metadata__"].erase(key);
    write_file(dir + "/" + name, p.bytes());
  }
}

}  // namespace

TEST_SUITE("hostile") {

TEST_CASE("reliability child process helper") {
  const char* packed = std::getenv(kChildArgs);
  if (!packed) return;  // run as a test of its own: nothing to do
  std::vector<std::string> args;
  std::string word;
  for (const char* p = packed; *p; ++p) {
    if (*p == '\x1f') {
      args.push_back(word);
      word.clear();
    } else {
      word += *p;
    }
  }
  const int rc = gradlab::cli::run_train(args);
  std::fflush(stdout);
  std::_Exit(rc);
}

TEST_CASE("layout: an old checkpoint directory loads in every command and converts on its first save") {
  TempDir tmp;
  const std::string dir = tmp.file("old");
  write_legacy_checkpoint(dir);
  Run e = eval({"--model", dir, "--data", reference_text_file()});
  INFO(e.err);
  CHECK(e.code == 0);
  CHECK(e.err.find("written before gradlab stored checksums") != std::string::npos);
  CHECK(sample({"--model", dir, "--prompt", "the", "--tokens", "3"}).code == 0);
  CHECK(attn({"--model", dir, "--example", "--out", tmp.file("fig.png")}).code == 0);
  Run r = train({"--resume", dir, "--max_iters", "3"});
  if (r.code != 0) MESSAGE(r.err);
  REQUIRE(r.code == 0);
  CHECK(std::filesystem::is_symlink(dir + "/latest"));
  CHECK(std::filesystem::is_symlink(dir + "/" + gradlab::kModelFileName));
  gradlab::LoadedCheckpoint c = gradlab::load_checkpoint(dir);
  CHECK(c.state.step == 3);
  CHECK(c.notes.empty());  // the new pair carries checksums
  CHECK(eval({"--model", dir, "--data", reference_text_file()}).code == 0);
}

TEST_CASE("outputs: eval --grads onto a checkpoint file or an input is refused naming both paths") {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  const std::string model = dir + "/" + gradlab::kModelFileName;
  const std::string state = dir + "/" + gradlab::kTrainStateFileName;
  const std::string text = tmp.file("text.txt");
  write_file(text, read_file(reference_text_file()));
  const std::string model_bytes = read_file(model), state_bytes = read_file(state), text_bytes = read_file(text);
  const std::string elsewhere = tmp.file("copy.safetensors");  // a checkpoint file that is not an input
  write_file(elsewhere, model_bytes);
  for (const std::string& target : {model, state, gradlab::checkpoint_files(dir).model, text, elsewhere}) {
    Run r = eval({"--model", dir, "--data", text, "--grads", target});
    INFO(target << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err_lines() == 1);
    CHECK(r.out.empty());
    CHECK(r.err.find(target) != std::string::npos);
    CHECK(r.err.find("would overwrite") != std::string::npos);
  }
  CHECK(read_file(model) == model_bytes);
  CHECK(read_file(state) == state_bytes);
  CHECK(read_file(text) == text_bytes);
  CHECK(read_file(elsewhere) == model_bytes);
  // a new file is fine, and so is writing over an earlier gradient file
  const std::string grads = tmp.file("grads.safetensors");
  CHECK(eval({"--model", dir, "--data", text, "--grads", grads}).code == 0);
  CHECK(eval({"--model", dir, "--data", text, "--grads", grads}).code == 0);
  // --resume still works: nothing of the checkpoint was touched
  CHECK(train({"--resume", dir, "--max_iters", "3"}).code == 0);
}

TEST_CASE("outputs: attn --out whose siblings are an input and train --out onto a checkpoint are refused") {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  // attn writes fig.png, fig.svg, fig.npy, fig.json: a model file named fig.safetensors is one of its inputs
  const std::string model_file = tmp.file("fig.safetensors");
  write_file(model_file, read_file(dir + "/" + gradlab::kModelFileName));
  Run a = attn({"--model", model_file, "--example", "--out", tmp.file("fig.png")});
  CHECK(a.code == 2);
  CHECK(a.err.find(model_file) != std::string::npos);
  CHECK(attn({"--model", model_file, "--example", "--out", tmp.file("other.png")}).code == 0);
  // a new run into a directory that holds a checkpoint would replace it: only --resume may
  const auto before = read_file(dir + "/" + gradlab::kModelFileName);
  std::vector<std::string> args = tiny_flags();
  for (const std::string& w : {std::string("--max_iters"), std::string("2"), std::string("--data"),
                               reference_text_file(), std::string("--out"), dir})
    args.push_back(w);
  Run t = train(args);
  CHECK(t.code == 2);
  CHECK(t.err_lines() == 1);
  CHECK(t.err.find("already holds a checkpoint") != std::string::npos);
  CHECK(read_file(dir + "/" + gradlab::kModelFileName) == before);
  // and --data may not be a file the run writes (its own log)
  write_file(dir + "/log.csv", read_file(reference_text_file()));
  Run d = train({"--resume", dir, "--data", dir + "/log.csv", "--max_iters", "3"});
  CHECK(d.code == 2);
  CHECK(d.err.find("would overwrite its input") != std::string::npos);
}

TEST_CASE("lock: a second run on a held directory fails at once naming the holder, a dead holder's lock is taken over") {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  {
    gradlab::RunLock held(dir);  // another writer (flock conflicts between open files, also in one process)
    Run r = train({"--resume", dir, "--max_iters", "3"});
    CHECK(r.code == 2);
    CHECK(r.err_lines() == 1);
    CHECK(r.err.find("in use by another gradlab run") != std::string::npos);
    CHECK(r.err.find("pid " + std::to_string(::getpid())) != std::string::npos);
    CHECK_THROWS_AS(gradlab::RunLock{dir}, gradlab::RunLockedError);
  }
  CHECK_FALSE(std::filesystem::exists(dir + "/" + gradlab::kRunLockFileName));  // released and removed
  // a lock file whose process died (nobody holds the flock): taken over, with a note
  write_file(dir + "/" + gradlab::kRunLockFileName, "pid 999999, started 2026-01-01 00:00:00 UTC\n");
  Run r = train({"--resume", dir, "--max_iters", "3"});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("took over the lock file") != std::string::npos);
  CHECK(r.err.find("pid 999999") != std::string::npos);
}

TEST_CASE("non-finite: a finite 3e38 weight makes eval sample and attn fail with exit 1 naming the layer") {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  edit_model(dir, [](SafetensorsParts& p) {
    for (std::size_t i = 0; i < 8; ++i) set_float(p, "transformer.h.0.mlp.c_fc.weight", i, 3e38f);
  });
  Run e = eval({"--model", dir, "--data", reference_text_file()});
  INFO(e.err);
  MESSAGE("eval says: " << e.err);
  CHECK(e.code == 1);
  CHECK(e.out.empty());
  CHECK(e.err_lines() == 1);
  CHECK(e.err.find("transformer.h.0") != std::string::npos);
  Run s = sample({"--model", dir, "--prompt", "the cat", "--tokens", "5"});
  INFO(s.err);
  CHECK(s.code == 1);
  CHECK(s.out.empty());
  CHECK(s.err.find("transformer.h.0") != std::string::npos);
  Run a = attn({"--model", dir, "--example", "--out", tmp.file("fig.png")});
  INFO(a.err);
  CHECK(a.code == 1);
  CHECK(a.err.find("transformer.h.0") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(tmp.file("fig.png")));
}

TEST_CASE("non-finite: locate_nonfinite names the parameter or the first layer that overflows") {
  gradlab::GPTConfig c;
  c.vocab_size = 11, c.block_size = 8, c.n_layer = 3, c.n_head = 2, c.n_embd = 8;
  gradlab::GPT model(c, 5);
  const std::vector<std::int32_t> ids = {1, 2, 3, 4, 5, 6};
  CHECK(gradlab::locate_nonfinite(model, ids).empty());  // a healthy model: nothing to report
  // a huge (finite) query/key weight in layer 1: its attention scores overflow, layer 0 stays finite
  gradlab::Tensor w = model.parameter("transformer.h.1.attn.c_attn.weight").data();
  for (std::int64_t i = 0; i < 8; ++i)
    for (std::int64_t j = 0; j < 16; ++j) w.set({j, i}, 3e38);
  const std::string where = gradlab::locate_nonfinite(model, ids);
  INFO(where);
  CHECK(where.find("layer 1 (transformer.h.1.attn)") != std::string::npos);
  CHECK(where.find("transformer.h.1.attn.c_attn.weight") != std::string::npos);
  // a NaN weight is named as such, before any forward pass
  model.parameter("transformer.h.2.mlp.c_proj.weight").data().set({0, 0}, NAN);
  CHECK(gradlab::locate_nonfinite(model, ids).find("parameter transformer.h.2.mlp.c_proj.weight holds nan") !=
        std::string::npos);
}

TEST_CASE("memory: a config far beyond the machine is refused at once with the estimate and its parts") {
  TempDir tmp;
  std::vector<std::string> args = {"--n_embd", "16384", "--n_layer", "256", "--n_head", "256", "--max_iters", "1",
                                   "--data", reference_text_file(), "--out", tmp.file("run"), "--progress", "none"};
  const auto t0 = std::chrono::steady_clock::now();
  Run r = train(args);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err_lines() == 1);
  for (const char* part : {"estimated", "TiB", "weights", "AdamW moments", "activations", "MemAvailable"})
    CHECK(r.err.find(part) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(tmp.file("run") + "/log.csv"));
  // --max_memory sets the limit
  std::vector<std::string> tiny = tiny_flags();
  for (const std::string& w : {std::string("--max_iters"), std::string("1"), std::string("--data"), reference_text_file(),
                               std::string("--out"), tmp.file("small"), std::string("--max_memory"), std::string("1M")})
    tiny.push_back(w);
  Run m = train(tiny);
  CHECK(m.code == 2);
  CHECK(m.err.find("--max_memory 1M") != std::string::npos);
  tiny.back() = "2G";
  CHECK(train(tiny).code == 0);
}

TEST_CASE("checksums: a flipped byte and swapped same-size tensors are refused by name, old files load with a note") {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  const std::string path = gradlab::checkpoint_files(dir).model;
  const std::string good = read_file(path);
  SafetensorsParts parts = SafetensorsParts::parse(good);
  const std::size_t data_start = good.size() - parts.data.size();
  // one bit of one weight: still a finite float, so only the checksum can tell
  std::string flipped = good;
  const auto [b, e] = parts.range("transformer.h.0.attn.c_proj.weight");
  flipped[data_start + b + 1] ^= 0x01;
  write_file(path, flipped);
  Run r = eval({"--model", dir, "--data", reference_text_file()});
  CHECK(r.code == 2);
  CHECK(r.err.find("transformer.h.0.attn.c_proj.weight") != std::string::npos);
  CHECK(r.err.find("checksum mismatch") != std::string::npos);
  // two tensors of one size with their offsets swapped (the header otherwise valid)
  SafetensorsParts swapped = parts;
  std::swap(swapped.header["transformer.h.0.ln_1.weight"]["data_offsets"],
            swapped.header["transformer.h.0.ln_2.weight"]["data_offsets"]);
  std::string text = swapped.header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  write_file(path, bytes + text + swapped.data);
  r = eval({"--model", dir, "--data", reference_text_file()});
  CHECK(r.code == 2);
  CHECK(r.err.find("checksum mismatch") != std::string::npos);
  CHECK(r.err.find("transformer.h.0.ln_") != std::string::npos);
  // a file written before the checksums: loads, with one note
  SafetensorsParts old = parts;
  old.header["__metadata__"].erase(gradlab::kSafetensorsChecksumKey);
  write_file(path, old.bytes());
  r = eval({"--model", dir, "--data", reference_text_file()});
  CHECK(r.code == 0);
  CHECK(r.err.find("written before gradlab stored checksums") != std::string::npos);
}

TEST_CASE("resume: a train_state of another seed or with a foreign RNG state is refused with the reason") {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  // the same model config trained with another seed
  std::vector<std::string> args = tiny_flags();
  for (const std::string& w : {std::string("--max_iters"), std::string("2"), std::string("--seed"), std::string("7"),
                               std::string("--data"), reference_text_file(), std::string("--out"), tmp.file("other")})
    args.push_back(w);
  REQUIRE(train(args).code == 0);
  const std::string state = gradlab::checkpoint_files(dir).train_state;
  const std::string good_state = read_file(state);
  write_file(state, read_file(gradlab::checkpoint_files(tmp.file("other")).train_state));
  Run r = train({"--resume", dir, "--max_iters", "3"});
  CHECK(r.code == 2);
  CHECK(r.err.find("seed 7") != std::string::npos);
  // the right seed, but an RNG state that seed's stream never reaches in 2 steps
  SafetensorsParts p = SafetensorsParts::parse(good_state);
  gradlab::Rng foreign(99, 1001);
  p.header["__metadata__"]["rng"] = gradlab::rng_state_to_string(foreign.get_state());
  write_file(state, p.bytes());
  r = train({"--resume", dir, "--max_iters", "3"});
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err_lines() == 1);
  CHECK(r.err.find("RNG") != std::string::npos);
  write_file(state, good_state);
  CHECK(train({"--resume", dir, "--max_iters", "3"}).code == 0);
}

TEST_CASE("messages: /proc/self/status cannot be sized, an error is the only line a script sees") {
  TempDir tmp;
  std::vector<std::string> args = tiny_flags();
  for (const char* w : {"--data", "/proc/self/status", "--max_iters", "1"}) args.push_back(w);
  args.push_back("--out");
  args.push_back(tmp.file("run"));
  Run r = train(args);
  CHECK(r.code == 2);
  CHECK(r.err.find("cannot be sized") != std::string::npos);
  CHECK(r.err.find("empty") == std::string::npos);
#ifdef GRADLAB_BIN
  // the real program with stderr to a file (not a terminal): the start-up line only with --verbose
  const std::string err_file = tmp.file("err.txt");
  const std::string base = std::string(GRADLAB_BIN) + " eval --model " + tmp.file("missing") + " 2>" + err_file;
  CHECK(WEXITSTATUS(std::system(base.c_str())) == 2);
  const std::string quiet = read_file(err_file);
  CHECK(std::count(quiet.begin(), quiet.end(), '\n') == 1);
  CHECK(quiet.find("missing") != std::string::npos);
  CHECK(WEXITSTATUS(std::system((std::string(GRADLAB_BIN) + " eval --verbose --model " + tmp.file("missing") + " 2>" +
                                 err_file).c_str())) == 2);
  const std::string verbose = read_file(err_file);
  CHECK(std::count(verbose.begin(), verbose.end(), '\n') == 2);
  CHECK(verbose.find("gradlab ") == 0);
#endif
}

}  // TEST_SUITE hostile

TEST_SUITE("reliability") {

TEST_CASE("kill loop: 25 SIGKILLs at random points of saving always resume to the uninterrupted run") {
  TempDir tmp;
  // 6 steps with a checkpoint after each: every step's save is a place to die.
  std::vector<std::string> flags = tiny_flags();
  for (const std::string& w : {std::string("--max_iters"), std::string("6"), std::string("--checkpoint_interval"),
                               std::string("1"), std::string("--data"), reference_text_file()})
    flags.push_back(w);
  const std::string ref = tmp.file("ref");
  REQUIRE(train(with(flags, {"--out", ref})).code == 0);
  const std::string ref_model = read_file(ref + "/" + gradlab::kModelFileName);
  const std::string ref_log = log_without_timing(ref + "/log.csv");
  // Kill points drawn over the whole run (a point past its last save lets the run finish: drawn again).
  gradlab::Rng rng(2022, 22);
  int kills = 0, attempts = 0, resumed_from_pair = 0;
  std::string points;
  while (kills < 25 && attempts < 200) {
    ++attempts;
    const std::string dir = tmp.file("run" + std::to_string(attempts));
    const int point = 1 + static_cast<int>(rng.below(250));  // the run passes about 245 fault points
    Ended first = wait_for(spawn_train(with(flags, {"--out", dir}), {"GRADLAB_FAULT_SAVE_POINT=" + std::to_string(point)},
                                       tmp.file("o"), tmp.file("e")));
    if (!first.killed()) {
      CHECK(first.code() == 0);  // the point lay beyond the run's last save
      continue;
    }
    ++kills;
    points += " " + std::to_string(point);
    // Resume when a pair was published, else start the same run again; both must end where the reference did.
    const bool has_pair = gradlab::holds_checkpoint(dir) &&
                          std::filesystem::exists(gradlab::checkpoint_files(dir).model);
    Run again = has_pair ? train({"--resume", dir}) : train(with(flags, {"--out", dir}));
    resumed_from_pair += has_pair;
    INFO("kill point " << point << ": " << again.err);
    REQUIRE(again.code == 0);
    CHECK(read_file(dir + "/" + gradlab::kModelFileName) == ref_model);
    CHECK(log_without_timing(dir + "/log.csv") == ref_log);
    // nothing of the interrupted save is left behind
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      CHECK(name.find(".tmp.") == std::string::npos);
      CHECK(name.find(".partial-") == std::string::npos);
    }
  }
  MESSAGE("kills " << kills << " in " << attempts << " runs, " << resumed_from_pair << " resumed from a published pair; kill points" << points);
  CHECK(kills == 25);
  CHECK(resumed_from_pair > 0);
}

TEST_CASE("kill loop: SIGKILLs during the conversion of an old directory leave one consistent pair") {
  TempDir tmp;
  gradlab::Rng rng(2023, 22);
  int kills = 0;
  for (int k = 0; k < 12; ++k) {
    const std::string dir = tmp.file("old" + std::to_string(k));
    write_legacy_checkpoint(dir);
    const int point = 1 + static_cast<int>(rng.below(40));  // the conversion and the first save
    Ended first = wait_for(spawn_train({"--resume", dir, "--max_iters", "4", "--checkpoint_interval", "1"},
                                       {"GRADLAB_FAULT_SAVE_POINT=" + std::to_string(point)}, tmp.file("o"), tmp.file("e")));
    if (!first.killed()) continue;
    ++kills;
    INFO("kill point " << point);
    const gradlab::LoadedCheckpoint c = gradlab::load_checkpoint(dir);  // a whole pair, old or new
    CHECK((c.state.step == 2 || c.state.step == 3));
    Run again = train({"--resume", dir, "--max_iters", "4"});
    INFO(again.err);
    CHECK(again.code == 0);
    CHECK(gradlab::load_checkpoint(dir).state.step == 4);
  }
  MESSAGE(kills << " kills during conversion");
  CHECK(kills >= 10);
}

TEST_CASE("byte flips: 300 random bytes of tensor data flipped give 300 refusals") {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  const std::string path = gradlab::checkpoint_files(dir).model;
  const std::string good = read_file(path);
  const std::size_t data_size = SafetensorsParts::parse(good).data.size();
  const std::size_t data_start = good.size() - data_size;
  gradlab::Rng rng(300, 22);
  int refused = 0;
  for (int k = 0; k < 300; ++k) {
    std::string bytes = good;
    const std::size_t at = data_start + rng.below(static_cast<std::uint32_t>(data_size));
    bytes[at] = static_cast<char>(bytes[at] ^ (1 + rng.below(255)));  // a non-zero change of that byte
    write_file(path, bytes);
    Run r = eval({"--model", dir, "--data", reference_text_file()});
    if (r.code == 2 && r.err_lines() == 1 && r.err.find("tensor '") != std::string::npos) ++refused;
    else
      INFO("flip at byte " << at << " gave exit " << r.code << ": " << r.err);
  }
  write_file(path, good);
  MESSAGE("300 byte flips: " << refused << " refusals");
  CHECK(refused == 300);
}

TEST_CASE("concurrency: a second run on a training run's --out fails at once, and the first run's log stays whole") {
  TempDir tmp;
  std::vector<std::string> flags = tiny_flags();
  const int iters = 20000;  // long enough (about a second here) that the second run surely starts while the first trains
  for (const std::string& w : {std::string("--max_iters"), std::to_string(iters), std::string("--data"),
                               reference_text_file(), std::string("--out"), tmp.file("run")})
    flags.push_back(w);
  // The second run starts once the first holds the lock. Started together, a loaded machine could let the
  // first finish before the second began, and the second would then meet a finished checkpoint instead.
  Child a = spawn_train(flags, {}, tmp.file("a.out"), tmp.file("a.err"));
  const std::string lock_path = tmp.file("run") + "/" + gradlab::kRunLockFileName;
  for (int i = 0; i < 2000 && !std::filesystem::exists(lock_path); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE_MESSAGE(std::filesystem::exists(lock_path), "the first run never took its lock: " << read_file(tmp.file("a.err")));
  Child b = spawn_train(flags, {}, tmp.file("b.out"), tmp.file("b.err"));
  const Ended eb = wait_for(b), ea = wait_for(a);
  INFO(read_file(tmp.file("a.err")));
  CHECK(ea.code() == 0);
  const std::string loser_err = read_file(tmp.file("b.err"));
  INFO(loser_err);
  CHECK(eb.code() == 2);
  CHECK(loser_err.find("in use by another gradlab run (pid " + std::to_string(a.pid)) != std::string::npos);
  // the log has the header, one row per step and the final evaluation, steps in order
  std::istringstream log(read_file(tmp.file("run") + "/log.csv"));
  std::string line;
  std::getline(log, line);
  int expected = 0;
  while (std::getline(log, line)) {
    CHECK(std::stoi(line) == expected);
    ++expected;
  }
  CHECK(expected == iters + 1);
}

TEST_CASE("memory: the estimate is within 25% of a real run's peak RSS") {
  TempDir tmp;
  const std::vector<std::string> flags = {
      "--n_layer", "4",  "--n_head", "4", "--n_embd", "256", "--block_size", "128", "--batch_size", "16",
      "--max_iters", "1", "--eval_interval", "0", "--eval_iters", "1", "--progress", "none", "--threads", "1",
      "--data", reference_text_file(), "--out", tmp.file("run")};
  const Ended e = wait_for(spawn_train(flags, {}, tmp.file("o"), tmp.file("e")));
  INFO(read_file(tmp.file("e")));
  REQUIRE(e.code() == 0);
  gradlab::GPTConfig c;
  c.n_layer = 4, c.n_head = 4, c.n_embd = 256, c.block_size = 128, c.bias = false;
  c.vocab_size = gradlab::load_model(gradlab::checkpoint_files(tmp.file("run")).model)->config().vocab_size;
  const double text_bytes = static_cast<double>(read_file(reference_text_file()).size()) * 5;
  const double estimate = gradlab::estimate_training_memory(c, 16, static_cast<std::int64_t>(text_bytes)).total();
  const double measured = static_cast<double>(e.max_rss_kb) * 1024.0;
  MESSAGE("peak RSS " << gradlab::format_bytes(measured) << ", estimate " << gradlab::format_bytes(estimate)
                      << ", ratio " << estimate / measured);
  CHECK(estimate / measured > 0.75);
  CHECK(estimate / measured < 1.25);
}

}  // TEST_SUITE reliability
