// The CLI on documents: gradlab train --task bigram-backcopy and --bos, gradlab eval's document rule and
// --keep_first, and the sink metrics in gradlab attn's JSON.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/eval.h"
#include "cli/train.h"
#include "eval_util.h"
#include "train/checkpoint.h"

using namespace gradlab;
using namespace evaltest;

namespace {

struct Run {
  int code;
  std::string out, err;
};

using Command = int (*)(const std::vector<std::string>&, std::ostream&, std::ostream&);
Run call(Command f, const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = f(args, out, err);
  return {code, out.str(), err.str()};
}

nlohmann::json last_json(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const std::size_t nl = s.rfind('\n');
  return nlohmann::json::parse(nl == std::string::npos ? s : s.substr(nl + 1));
}

const std::vector<std::string> kSmall = {"--n_layer", "1",  "--n_head",    "2", "--n_embd",   "16",   "--block_size",
                                         "8",         "--batch_size", "2", "--max_iters", "2", "--progress", "none"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_SUITE("eval") {

TEST_CASE("gradlab train --task bigram-backcopy records the corpus, and eval follows the document rule") {
  TempDir dir("bb");
  const std::string run = dir.file("run");
  Run t = call(cli::run_train, with(kSmall, {"--task", "bigram-backcopy", "--out", run}));
  INFO(t.err);
  REQUIRE(t.code == 0);
  CHECK(t.err.find("bigram-backcopy corpus: 8000 documents") != std::string::npos);
  const nlohmann::json src = nlohmann::json::parse(load_train_state(join_path(run, kTrainStateFileName)).data);
  CHECK(src["kind"] == "bigram-backcopy");
  CHECK(src["alpha"] == 0.2);
  CHECK(src["letters"] == 32);
  CHECK(src["bos"] == "^");
  CHECK(cli::declared_bos(run) == "^");
  // the validation split is the last 800 documents of 65 tokens; T = 8: one window per document
  Run e = call(cli::run_eval, {"--model", run});
  INFO(e.err);
  REQUIRE(e.code == 0);
  CHECK(last_json(e.out)["windows"] == 800);
  CHECK(last_json(e.out)["keep_first"] == 0);
  Run k = call(cli::run_eval, {"--model", run, "--window", "4", "--keep_first", "2"});
  REQUIRE(k.code == 0);
  CHECK(last_json(k.out)["keep_first"] == 2);
  CHECK(last_json(k.out)["loss"] != last_json(call(cli::run_eval, {"--model", run, "--window", "4"}).out)["loss"]);
  // bad uses are one line and exit code 2
  for (const auto& bad : std::vector<std::vector<std::string>>{{"--model", run, "--keep_first", "2"},
                                                                {"--model", run, "--window", "4", "--keep_first", "4"},
                                                                {"--model", run, "--bos", "ab"}}) {
    Run b = call(cli::run_eval, bad);
    CHECK(b.code == 2);
    CHECK(std::count(b.err.begin(), b.err.end(), '\n') == 1);
  }
  // gradlab attn: the sink metrics per mask, with the BOS the training data declared
  Run a = call(cli::run_attn, {"--model", run, "--mask", "both", "--text", "^abcdxyz",
                               "--out", dir.file("attn.png"), "--min_row", "2"});
  INFO(a.err);
  REQUIRE(a.code == 0);
  const nlohmann::json j = last_json(a.out);
  REQUIRE(j["sinks"].size() == 2);
  CHECK(j["sinks"][0]["mask"] == "causal");
  CHECK(j["sinks"][1]["mask"] == "StableMask");
  CHECK(j["sinks"][0]["min_row"] == 2);
  CHECK(j["sinks"][0]["heads"].size() == 2);
  CHECK(j["sinks"][0]["mean"]["real_mass"].get<double>() == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(j["sinks"][1]["mean"]["real_mass"].get<double>() < 1.0);
  CHECK(j["sinks"][0]["mean"]["bos_norm"].is_number());  // the BOS is at position 0 of the text
  CHECK(j["sinks"][0].contains("sink_ratio"));
  CHECK(j["sinks"][0]["strongest"].contains("head"));
}

TEST_CASE("gradlab train --data FILE --bos CHAR trains on documents, and --bos needs --data") {
  TempDir dir("bos");
  std::string text;
  for (int d = 0; d < 60; ++d) text += "#the cat sat on the mat\n";
  const std::string data = dir.file("docs.txt");
  std::ofstream(data, std::ios::binary) << text;
  const std::string run = dir.file("run");
  Run t = call(cli::run_train, with(kSmall, {"--data", data, "--bos", "#", "--out", run}));
  INFO(t.err);
  REQUIRE(t.code == 0);
  CHECK(cli::declared_bos(run) == "#");
  // 60 documents of 24 characters; val = the last 10% = 144 tokens = 6 documents, one window of 9 each
  Run e = call(cli::run_eval, {"--model", run});
  REQUIRE(e.code == 0);
  CHECK(last_json(e.out)["windows"] == 6);
  // the same checkpoint read without the document rule: windows of 9 from the first token
  Run p = call(cli::run_eval, {"--model", run, "--data", data, "--split", "val"});
  REQUIRE(p.code == 0);
  CHECK(last_json(p.out)["windows"] == 144 / 9);
  Run bad = call(cli::run_train, with(kSmall, {"--bos", "#", "--out", dir.file("x")}));
  CHECK(bad.code == 2);
  CHECK(bad.err.find("--bos needs --data") != std::string::npos);
  Run missing = call(cli::run_train, with(kSmall, {"--data", data, "--bos", "%", "--out", dir.file("y")}));
  CHECK(missing.code != 0);
  CHECK(missing.err.find("does not occur in the text") != std::string::npos);
}

}  // TEST_SUITE
