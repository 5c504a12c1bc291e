// `gradlab train`: usage errors, the JSON line, resume through the command line, and the crash tests that
// need a separate process (SIGKILL in the middle of a checkpoint save, Ctrl-C).
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/train.h"
#include "train/checkpoint.h"
#include "train_util.h"

using namespace gradlab;
using namespace train_test;

namespace {

struct Run {
  int rc;
  std::string out, err;
};

Run train(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int rc = cli::run_train(args, out, err);
  return {rc, out.str(), err.str()};
}

std::vector<std::string> with(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

std::string last_line(const std::string& text) {
  std::string s = text;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// A text file of the small grammar corpus, so runs need not generate the default 250k-character one.
std::string grammar_file(const TempDir& dir) {
  std::string path = dir.file("grammar.txt");
  write_file(path, small_grammar().tokenizer()->decode(std::vector<std::int32_t>(
                       small_grammar().split_begin(Split::Train),
                       small_grammar().split_begin(Split::Train) + small_grammar().token_count())));
  return path;
}

std::vector<std::string> csv_column(const std::string& csv, int column) {
  std::vector<std::string> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string f;
    for (int i = 0; i <= column; ++i) std::getline(fields, f, ',');
    out.push_back(f);
  }
  return out;
}

}  // namespace

TEST_SUITE("train") {

// Not a test by itself: the child process of the crash tests runs here (spawn_train in train_util.cpp).
TEST_CASE("train child process helper") {
  const char* packed = std::getenv("GRADLAB_TRAIN_CHILD_ARGS");
  if (!packed) return;  // a normal test run: nothing to do
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
  const int rc = cli::run_train(args);
  std::fflush(stdout);
  std::_Exit(rc);
}


TEST_CASE("cli: usage errors are one line with exit code 2 and touch nothing") {
  TempDir dir;
  const std::string data = grammar_file(dir);
  const std::string out = dir.file("out");
  std::filesystem::create_directory(out);
  write_file(out + "/model.safetensors", "sentinel");
  write_file(dir.file("short.txt"), "too short");
  write_file(dir.file("empty.txt"), "");
  const std::vector<std::string> base = with(tiny_cli_args(), {"--data", data, "--out", out});
  struct Case {
    std::vector<std::string> args;
    const char* expect;
  } cases[] = {
      {with(base, {"--bogus_flag", "1"}), "--bogus_flag"},
      {with(base, {"--max_iters"}), "--max_iters"},
      {with(base, {"--max_iters", "-5"}), "--max_iters"},
      {{"--n_embd", "30", "--n_head", "4", "--data", data, "--out", out}, "does not divide"},
      {with(tiny_cli_args(), {"--batch_size", "0", "--out", out}), "--batch_size"},
      {with(tiny_cli_args(), {"--data", dir.file("missing.txt"), "--out", out}), "missing.txt"},
      {with(tiny_cli_args(), {"--data", dir.file("short.txt"), "--out", out}), "short"},
      {with(tiny_cli_args(), {"--data", dir.file("empty.txt"), "--out", out}), "empty"},
      {with(base, {"--mask", "sideways"}), "sideways"},
      {with(base, {"--gamma", "-1"}), "--gamma"},
      {with(base, {"--learning_rate", "0"}), "learning_rate"},
      {with(base, {"--task", "position-index"}), "--task"},  // both --data and --task
      {with(tiny_cli_args(), {"--data", data}), "--out"},     // no output directory
      {{"--resume", dir.file("nowhere")}, "nowhere"},
      {with(tiny_cli_args(), {"--data", data, "--out", data}), "not a directory"},
  };
  for (const auto& c : cases) {
    Run r = train(c.args);
    CAPTURE(c.expect);
    CAPTURE(r.err);
    CHECK(r.rc == 2);
    CHECK(r.out.empty());
    REQUIRE(!r.err.empty());
    CHECK(r.err.find('\n') == r.err.size() - 1);  // exactly one line
    CHECK(r.err.find(c.expect) != std::string::npos);
  }
  CHECK(read_file(out + "/model.safetensors") == "sentinel");
  CHECK_FALSE(file_exists(out + "/log.csv"));
}

TEST_CASE("cli: --help lists the flags and exits 0") {
  Run r = train({"--help"});
  CHECK(r.rc == 0);
  for (const char* flag : {"--n_layer", "--mask", "--resume", "--grad_clip", "--task", "--tokenizer", "--gamma"})
    CHECK(r.out.find(flag) != std::string::npos);
}

TEST_CASE("cli: a short run ends with one JSON line and writes the checkpoint and log") {
  TempDir dir;
  const std::string out = dir.file("run");
  Run r = train(with(tiny_cli_args(), {"--data", grammar_file(dir), "--max_iters", "7", "--out", out, "--mask",
                                       "stablemask", "--pos", "rope", "--gamma", "0.5", "--seed", "5"}));
  INFO(r.err);
  REQUIRE(r.rc == 0);
  nlohmann::json j = nlohmann::json::parse(last_line(r.out));
  CHECK(j["iters"] == 7);
  CHECK(j["tokens"] == 7 * 4 * 16);
  CHECK(j["seed"] == 5);
  CHECK(j["tokens_per_second"].get<double>() > 0);
  CHECK(std::isfinite(j["train_loss"].get<double>()));
  CHECK(std::isfinite(j["val_loss"].get<double>()));
  CHECK(r.err.find("seed 5") != std::string::npos);
  LoadedCheckpoint ck = load_checkpoint(out);
  CHECK(ck.state.step == 7);
  CHECK(ck.info.config.mask == "stablemask");
  CHECK(ck.info.config.pos == PosKind::Rope);
  CHECK(ck.info.config.gamma == GammaKind::Constant);
  auto losses = csv_column(read_file(out + "/log.csv"), 2);
  CHECK(losses.size() == 8);  // 7 steps and the final evaluation row
}

TEST_CASE("cli: --resume continues the log exactly as an uninterrupted run") {
  TempDir dir;
  const std::string data = grammar_file(dir);
  const auto common = with(tiny_cli_args(), {"--data", data, "--lr_decay_iters", "8", "--warmup_iters", "2"});
  Run full = train(with(common, {"--max_iters", "8", "--out", dir.file("full")}));
  REQUIRE(full.rc == 0);
  Run part = train(with(common, {"--max_iters", "5", "--out", dir.file("part")}));
  REQUIRE(part.rc == 0);
  // model flags cannot change on resume
  Run bad = train({"--resume", dir.file("part"), "--n_layer", "3"});
  CHECK(bad.rc == 2);
  CHECK(bad.err.find("--n_layer") != std::string::npos);
  Run rest = train({"--resume", dir.file("part"), "--max_iters", "8", "--progress", "none", "--threads", "1"});
  INFO(rest.err);
  REQUIRE(rest.rc == 0);
  auto a = csv_column(read_file(dir.file("full") + "/log.csv"), 2);
  auto b = csv_column(read_file(dir.file("part") + "/log.csv"), 2);
  CHECK(a == b);  // the same 9-digit losses, row for row, including the final evaluation
  CHECK(nlohmann::json::parse(last_line(rest.out))["iters"] == 3);
}

TEST_CASE("crash: SIGKILL in the middle of a checkpoint save leaves the previous one intact") {
  TempDir dir;
  const std::string data = grammar_file(dir);
  const std::string ck = dir.file("ck");
  Run first = train(with(tiny_cli_args(), {"--data", data, "--max_iters", "4", "--lr_decay_iters", "8", "--out", ck}));
  REQUIRE(first.rc == 0);
  const std::string model_before = read_file(ck + "/model.safetensors");
  const std::string state_before = read_file(ck + "/train_state.safetensors");
  // The child resumes to step 8 and dies (SIGKILL, from the writer's fault-injection hook) once 2000 bytes of its
  // final checkpoint are written.
  const int pid = spawn_train({"--resume", ck, "--max_iters", "8", "--progress", "none"},
                              {"GRADLAB_FAULT_WRITE_BYTES=2000"}, dir.file("child.out"));
  const int status = wait_child(pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  // the half-written temporary file is there (the kill did happen mid-save) ...
  bool temp_found = false;
  for (const auto& e : std::filesystem::recursive_directory_iterator(ck))  // the save writes under ck/steps/
    temp_found = temp_found || e.path().filename().string().find(".tmp.") != std::string::npos;
  CHECK(temp_found);
  // ... and the previous checkpoint is untouched and loads
  CHECK(read_file(ck + "/model.safetensors") == model_before);
  CHECK(read_file(ck + "/train_state.safetensors") == state_before);
  LoadedCheckpoint c = load_checkpoint(ck);
  CHECK(c.state.step == 4);
}

TEST_CASE("crash: Ctrl-C (SIGINT) ends the run after the step with a checkpoint and exit code 130") {
  TempDir dir;
  const std::string data = grammar_file(dir);
  const std::string ck = dir.file("ck");
  const int pid = spawn_train(with(tiny_cli_args(), {"--data", data, "--max_iters", "1000000", "--out", ck}), {},
                              dir.file("child.out"));
  // wait until the child has trained a few steps (its log has rows), then interrupt it
  const auto t0 = std::chrono::steady_clock::now();
  bool started = false;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    if (csv_column(read_file(ck + "/log.csv"), 0).size() >= 3) {
      started = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(started);
  ::kill(pid, SIGINT);
  const int status = wait_child(pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  LoadedCheckpoint c = load_checkpoint(ck);
  CHECK(c.state.step >= 3);
  nlohmann::json j = nlohmann::json::parse(last_line(read_file(dir.file("child.out"))));
  CHECK(j["status"] == "interrupted");
  CHECK(j["step"] == c.state.step);
}

}  // TEST_SUITE
