// gradlab eval and gradlab sample called with argument vectors: the JSON line, --grads, and bad input (one line,
// exit code 2).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/eval.h"
#include "cli/train.h"
#include "eval_util.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/safetensors.h"
#include "data/tasks.h"

using namespace gradlab;
using namespace evaltest;

namespace {

const char* kText = "the cat sat on the mat\nthe dog sat on the log\n";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// A small text model (char tokenizer of kText) saved as a checkpoint directory.
struct TextModel {
  TempDir dir{"cli"};
  Tokenizer tok = Tokenizer::char_level(kText);
  std::string model_dir;
  std::string data;
  TextModel(PosKind pos = PosKind::Rope, const std::string& mask = "stablemask") {
    GPTConfig c = tiny_config(pos, mask);
    c.vocab_size = tok.vocab_size();
    GPT model(c, 41);
    perturb(model, 0.2, 42);
    model_dir = dir.file("ckpt");
    std::filesystem::create_directories(model_dir);
    save_model(join_path(model_dir, kModelFileName), model, &tok);
    data = dir.file("data.txt");
    write_text(data, kText);
  }
};

struct Run {
  int code;
  std::string out, err;
};

Run eval(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = cli::run_eval(args, out, err);
  return {code, out.str(), err.str()};
}

Run sample(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = cli::run_sample(args, out, err);
  return {code, out.str(), err.str()};
}

nlohmann::json last_json_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return nlohmann::json::parse(s.substr(s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1));
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_SUITE("eval") {

TEST_CASE("gradlab eval prints one JSON line with loss + tokens + windows + per_position") {
  TextModel m;
  Run r = eval({"--model", m.model_dir, "--data", m.data, "--ctx", "6"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = last_json_line(r.out);
  const std::int64_t n = static_cast<std::int64_t>(m.tok.encode(kText).size());
  CHECK(j["windows"] == n / 7);
  CHECK(j["tokens"] == (n / 7) * 6);
  CHECK(j["ctx"] == 6);
  CHECK(j["per_position"].size() == 6);
  CHECK(j["window"].is_null());
  CHECK(!j.contains("accuracy"));
  // the same number as the library's evaluate on the same windows
  ModelInfo info;
  auto model = load_model(join_path(m.model_dir, kModelFileName), &info);
  EvalResult lib = evaluate(*model, make_eval_windows(m.tok.encode(kText), 6));
  CHECK(j["loss"].get<double>() == doctest::Approx(lib.loss).epsilon(1e-9));

  // past the training length (L = 8) with a sliding window, and the help text carries the rule
  Run r2 = eval({"--model", m.model_dir, "--data", m.data, "--ctx", "12", "--window", "4"});
  INFO(r2.err);
  REQUIRE(r2.code == 0);
  CHECK(last_json_line(r2.out)["window"] == 4);
  Run h = eval({"--help"});
  CHECK(h.code == 0);
  CHECK(h.out.find("non-overlapping windows of T+1 tokens") != std::string::npos);
  CHECK(h.out.find("partial window is dropped") != std::string::npos);
}

TEST_CASE("gradlab eval without --data reads the checkpoint's own data on its validation split") {
  TempDir dir("own");
  std::string text;
  for (int i = 0; i < 30; ++i) text += kText;
  const std::string data = dir.file("corpus.txt");
  write_text(data, text);
  std::ostringstream tout, terr;
  const int trained = cli::run_train({"--data", data, "--n_layer", "1", "--n_head", "2", "--n_embd", "16",
                                      "--block_size", "8", "--batch_size", "2", "--max_iters", "2", "--pos", "rope",
                                      "--progress", "none", "--out", dir.file("run")},
                                     tout, terr);
  INFO(terr.str());
  REQUIRE(trained == 0);
  Run r = eval({"--model", dir.file("run")});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = last_json_line(r.out);
  Tokenizer tok = Tokenizer::char_level(text);
  const std::int64_t n = static_cast<std::int64_t>(tok.encode(text).size());
  CHECK(j["windows"] == (n - n * 9 / 10) / 9);  // the last 10% of the tokens, windows of T+1 = 9
  CHECK(j["data"] == data);
  Run all = eval({"--model", dir.file("run"), "--split", "all"});
  REQUIRE(all.code == 0);
  CHECK(last_json_line(all.out)["windows"] == n / 9);
}

TEST_CASE("gradlab eval --grads writes every parameter's gradient under its name") {
  TextModel m;
  const std::string gfile = m.dir.file("grads.safetensors");
  Run r = eval({"--model", m.model_dir, "--data", m.data, "--ctx", "8", "--grads", gfile, "--batch_size", "1"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  SafetensorsFile f = read_safetensors(gfile);
  ModelInfo info;
  auto model = load_model(join_path(m.model_dir, kModelFileName), &info);
  Batch b = make_eval_windows(m.tok.encode(kText), 8);
  Var loss = model->loss(model->forward(b.inputs, b.B, b.T), b.targets);
  loss.backward();
  REQUIRE(f.tensors.size() == model->named_parameters().size());
  for (auto& named : model->named_parameters()) {
    const auto& name = named.first;  // not a structured binding: clang 14 cannot capture one (INFO)
    auto& p = named.second;
    INFO(name);
    REQUIRE(f.tensors.count(name) == 1);
    CHECK(f.tensors.at(name).shape() == p.shape());
    CHECK(ops::max_abs_diff(f.tensors.at(name), p.grad()) < 1e-6);
  }
  CHECK(f.metadata.at("format") == "gradlab-grads-1");
}

TEST_CASE("gradlab eval on a position task reports accuracy") {
  TempDir dir("task");
  auto task = make_task("position-parity", 8);
  GPTConfig c = tiny_config(PosKind::Alibi, "stablemask");
  c.vocab_size = task->vocab_size();
  GPT model(c, 3);
  save_model(dir.file("model.safetensors"), model, nullptr, "position-parity");
  Run r = eval({"--model", dir.path.string()});  // the model's own task by default
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = last_json_line(r.out);
  CHECK(j.contains("accuracy"));
  CHECK(j["accuracy"].get<double>() >= 0.0);
  CHECK(j["accuracy"].get<double>() <= 1.0);
  CHECK(j["per_position_accuracy"].size() == 8);
  // another task's vocabulary does not fit this model
  Run wrong = eval({"--model", dir.path.string(), "--task", "position-index"});
  CHECK(wrong.code == 2);
  CHECK(wrong.err.find("vocabulary") != std::string::npos);
}

TEST_CASE("gradlab eval and sample: bad input is one line and exit code 2") {
  TextModel m;
  const std::string bad = m.dir.file("bad.txt");
  write_text(bad, "the cat\nsat Zon the mat\n");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"--model", m.model_dir, "--data", bad}, "'Z'"},
      {{"--model", m.model_dir, "--data", m.data, "--ctx", "0"}, "ctx"},
      {{"--model", m.model_dir, "--data", m.data, "--ctx", "-3"}, "ctx"},
      {{"--model", m.model_dir, "--data", m.data, "--ctx", "4", "--window", "5"}, "W = 5"},
      {{"--model", m.dir.file("nowhere"), "--data", m.data}, "nowhere"},
      {{"--model", m.model_dir, "--task", "position-sorting"}, "position-sorting"},
      {{"--model", m.model_dir, "--data", m.dir.file("missing.txt")}, "missing.txt"},
      {{"--model", m.model_dir}, "--data"},
      {{"--model", m.model_dir, "--data", m.data, "--ctx", "100"}, "needs 101"},
      {{"--model", m.model_dir, "--data", m.data, "--ctx", "8", "--window", "4", "--grads", m.dir.file("g")},
       "sliding"},
  };
  for (const Case& c : cases) {
    Run r = eval(c.args);
    INFO(c.args[c.args.size() - 1] << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(lines(r.err) == 1);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.out.empty());
  }
  // the unknown character is named with its position (character index 12 of the file)
  Run r = eval({"--model", m.model_dir, "--data", bad});
  CHECK(r.err.find("12") != std::string::npos);

  // learned positions cannot evaluate past L
  TextModel learned(PosKind::Learned, "causal");
  Run l = eval({"--model", learned.model_dir, "--data", learned.data, "--ctx", "9"});
  CHECK(l.code == 2);
  CHECK(l.err.find("learned") != std::string::npos);

  const std::vector<Case> sample_cases = {
      {{"--model", m.model_dir, "--prompt", "the Qat"}, "'Q'"},
      {{"--model", m.model_dir, "--prompt", ""}, "empty"},
      {{"--model", m.dir.file("nowhere"), "--prompt", "the"}, "nowhere"},
      {{"--model", m.model_dir, "--prompt", "the", "--top_k", "1000"}, "top_k"},
      {{"--model", m.model_dir, "--prompt", "the", "--temperature", "-1"}, "temperature"},
  };
  for (const Case& c : sample_cases) {
    Run s = sample(c.args);
    INFO(s.err);
    CHECK(s.code == 2);
    CHECK(lines(s.err) == 1);
    CHECK(s.err.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("gradlab sample continues the prompt and is seeded") {
  TextModel m;
  Run a = sample({"--model", m.model_dir, "--prompt", "the ", "--tokens", "20", "--seed", "3"});
  INFO(a.err);
  REQUIRE(a.code == 0);
  CHECK(a.out.rfind("the ", 0) == 0);
  CHECK(m.tok.encode(a.out.substr(0, a.out.size() - 1)).size() == 4 + 20);
  Run b = sample({"--model", m.model_dir, "--prompt", "the ", "--tokens", "20", "--seed", "3"});
  CHECK(a.out == b.out);
  Run g1 = sample({"--model", m.model_dir, "--prompt", "the ", "--tokens", "20", "--temperature", "0", "--seed", "1"});
  Run g2 = sample({"--model", m.model_dir, "--prompt", "the ", "--tokens", "20", "--temperature", "0", "--seed", "2"});
  CHECK(g1.out == g2.out);  // greedy ignores the seed
}

}  // TEST_SUITE
