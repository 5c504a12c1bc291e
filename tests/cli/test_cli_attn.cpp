// gradlab attn called with argument vectors: the files it writes (png, svg, npy, json), the npy shape and
// contents, the printed statistics, and bad input (one line, exit code 2).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/eval.h"
#include "eval_util.h"
#include "train/checkpoint.h"
#include "viz/attention.h"

using namespace gradlab;
using namespace evaltest;

namespace {

const char* kVocabText = "the cat sat on the mat.\n";

struct Run {
  int code;
  std::string out, err;
};

Run attn(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = cli::run_attn(args, out, err);
  return {code, out.str(), err.str()};
}

nlohmann::json last_json_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nlohmann::json::parse(nl == std::string::npos ? s : s.substr(nl + 1));
}

std::string save_text_model(const TempDir& dir, const std::string& name, const std::string& mask, std::uint64_t seed) {
  Tokenizer tok = Tokenizer::char_level(kVocabText);
  GPTConfig c = tiny_config(PosKind::Rope, mask);
  c.block_size = 16;
  c.vocab_size = tok.vocab_size();
  GPT model(c, seed);
  perturb(model, 0.3, seed + 1);
  const std::string d = dir.file(name);
  std::filesystem::create_directories(d);
  save_model(join_path(d, kModelFileName), model, &tok);
  return d;
}

// The attention the library records for the model in `dir` under `mask` (same weights), (L, H, T, T).
std::vector<double> recorded(const std::string& dir, const std::string& mask, const std::string& text) {
  ModelInfo info;
  auto m = load_model(join_path(dir, kModelFileName), &info);
  GPTConfig c = m->config();
  c.mask = mask;
  GPT g(c, 0);
  g.load_state_dict(m->state_dict(), "test");
  auto ids = info.tokenizer->encode(text);
  AttentionRecorder rec;
  ForwardOptions fo;
  fo.recorder = &rec;
  NoGrad ng;
  g.forward(ids, 1, static_cast<std::int64_t>(ids.size()), fo);
  return rec.stacked(0).to_vector();
}

}  // namespace

TEST_SUITE("eval") {

TEST_CASE("gradlab attn --mask both writes png + svg + json and one npy per mask shaped n_layer x n_head x T x T") {
  TempDir dir("attn");
  const std::string model = save_text_model(dir, "m", "stablemask", 50);
  const std::string text = "the cat sat on the mat.";
  const std::int64_t T = static_cast<std::int64_t>(text.size());
  Run r = attn({"--model", model, "--mask", "both", "--text", text, "--out", dir.file("fig.png")});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = last_json_line(r.out);
  std::vector<std::string> files = j["files"];
  std::vector<std::string> npys;
  for (const auto& f : files) {
    CHECK(std::filesystem::file_size(f) > 0);
    if (f.size() > 4 && f.substr(f.size() - 4) == ".npy") npys.push_back(f);
  }
  CHECK(std::find(files.begin(), files.end(), dir.file("fig.png")) != files.end());
  CHECK(std::find(files.begin(), files.end(), dir.file("fig.svg")) != files.end());
  CHECK(std::find(files.begin(), files.end(), dir.file("fig.json")) != files.end());
  REQUIRE(npys.size() == 2);
  // PNG signature
  std::ifstream png(dir.file("fig.png"), std::ios::binary);
  char sig[8] = {};
  png.read(sig, 8);
  CHECK(std::string(sig + 1, 3) == "PNG");

  const std::string masks[2] = {"causal", "stablemask"};
  for (int k = 0; k < 2; ++k) {
    viz::NpyArray a = viz::read_npy(npys[k]);
    CHECK(a.shape == std::vector<std::int64_t>{2, 2, T, T});
    const auto want = recorded(model, masks[k], text);
    REQUIRE(want.size() == a.values.size());
    double worst = 0, min_row = 2, max_row = 0;
    for (std::size_t x = 0; x < want.size(); ++x) worst = std::max(worst, std::abs(want[x] - a.values[x]));
    for (std::int64_t m = 0; m < 4; ++m)
      for (std::int64_t i = 0; i < T; ++i) {
        double s = 0;
        for (std::int64_t jj = 0; jj < T; ++jj) s += a.values[(m * T + i) * T + jj];
        min_row = std::min(min_row, s), max_row = std::max(max_row, s);
      }
    CHECK(worst < 1e-6);
    if (masks[k] == "causal") {
      CHECK(min_row == doctest::Approx(1.0).epsilon(1e-5));
    } else {
      CHECK(min_row < 0.99);  // StableMask rows hold less than 1 of real mass
    }
    CHECK(max_row == doctest::Approx(1.0).epsilon(1e-5));
  }
  // the statistics: per mask, one entry per (layer, head), and printed as text
  REQUIRE(j["stats"].size() == 2);
  CHECK(j["stats"][0]["heads"].size() == 4);
  CHECK(j["stats"][1]["heads"][0]["mean_real_mass"].get<double>() < 1.0);
  CHECK(j["stats"][0]["heads"][0]["mean_real_mass"].get<double>() == doctest::Approx(1.0));
  auto tokens_json = nlohmann::json::parse(std::ifstream(dir.file("fig.json")));
  CHECK(tokens_json["tokens"].size() == static_cast<std::size_t>(T));
}

TEST_CASE("gradlab attn draws two models side by side and one model as a grid or as one panel") {
  TempDir dir("attn2");
  const std::string a = save_text_model(dir, "causal_run", "causal", 60);
  const std::string b = save_text_model(dir, "stable_run", "stablemask", 70);
  Run two = attn({"--model", a, "--model", b, "--text", "the mat", "--out", dir.file("two.png"), "--range", "1:"});
  INFO(two.err);
  REQUIRE(two.code == 0);
  auto j = last_json_line(two.out);
  CHECK(j["stats"].size() == 2);
  CHECK(j["stats"][0]["mask"] == "causal");
  CHECK(j["stats"][1]["mask"] == "StableMask");
  viz::NpyArray right = viz::read_npy(dir.file("two.stablemask.npy"));
  CHECK(right.shape == std::vector<std::int64_t>{2, 2, 7, 7});

  Run grid = attn({"--model", b, "--example", "--out", dir.file("grid.png")});
  INFO(grid.err);
  REQUIRE(grid.code == 0);
  CHECK(viz::read_npy(dir.file("grid.npy")).shape[0] == 2);
  Run one = attn({"--model", b, "--text", "the cat", "--layers", "1", "--heads", "0", "--out", dir.file("one.png")});
  REQUIRE(one.code == 0);
  CHECK(std::filesystem::exists(dir.file("one.svg")));
}

TEST_CASE("gradlab attn: bad input is one line and exit code 2") {
  TempDir dir("attn3");
  const std::string m = save_text_model(dir, "m", "stablemask", 80);
  const std::string out = dir.file("x.png");
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{"--model", m, "--text", "the Kat", "--out", out}, "'K'"},
      {{"--model", m, "--text", "", "--out", out}, "empty"},
      {{"--model", m, "--text", "the cat", "--range", "3:40", "--out", out}, "3:40"},
      {{"--model", m, "--text", "the cat", "--layers", "2", "--out", out}, "layers"},
      {{"--model", m, "--text", "the cat", "--heads", "x", "--out", out}, "heads"},
      {{"--model", m, "--out", out}, "--text"},
      {{"--model", dir.file("none"), "--text", "the", "--out", out}, "none"},
      {{"--model", m, "--model", m, "--mask", "both", "--text", "the", "--out", out}, "two models"},
      {{"--model", m, "--text", "the", "--out", dir.file("x.jpg")}, ".png"},
  };
  for (const Case& c : cases) {
    Run r = attn(c.args);
    INFO(c.expect << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find(c.expect) != std::string::npos);
  }
  CHECK(!std::filesystem::exists(out));
}

TEST_CASE("gradlab attn on a learned-sink model: its own maps, the compared pair on the shared weights, and a clear refusal") {
  TempDir dir("attn_ls");
  const std::string ls = save_text_model(dir, "ls", "learned-sink", 60);
  const std::string causal = save_text_model(dir, "c", "causal", 61);
  const std::string text = "the cat sat on the mat.";
  const std::int64_t T = static_cast<std::int64_t>(text.size());
  Run own = attn({"--model", ls, "--text", text, "--out", dir.file("own.png")});
  INFO(own.err);
  REQUIRE(own.code == 0);
  // the maps are the library's, and the rows keep less than 1 (the sink key took its share)
  std::vector<std::string> files = last_json_line(own.out)["files"];
  std::string npy;
  for (const auto& f : files)
    if (f.size() > 4 && f.substr(f.size() - 4) == ".npy") npy = f;
  REQUIRE(!npy.empty());
  viz::NpyArray a = viz::read_npy(npy);
  CHECK(a.shape == std::vector<std::int64_t>{2, 2, T, T});
  const auto want = recorded(ls, "learned-sink", text);
  REQUIRE(want.size() == a.values.size());
  double worst = 0, max_row = 0;
  for (std::size_t x = 0; x < want.size(); ++x) worst = std::max(worst, std::abs(want[x] - a.values[x]));
  for (std::int64_t i = 0; i < 4 * T; ++i) {
    double r = 0;
    for (std::int64_t j = 0; j < T; ++j) r += a.values[i * T + j];
    max_row = std::max(max_row, r);
  }
  CHECK(worst < 1e-6);
  CHECK(max_row < 0.999);
  // the massive-activation metric, one value per layer, the top above the median
  const auto ma = last_json_line(own.out)["sinks"][0]["massive_activations"];
  REQUIRE(ma["ratio"].size() == 2);
  for (int l = 0; l < 2; ++l) {
    CHECK(ma["ratio"][l].get<double>() > 1.0);
    CHECK(ma["top"][l].get<double>() > ma["median"][l].get<double>());
  }
  // --mask both drops the sink logits and draws the same weights under causal and StableMask
  Run both = attn({"--model", ls, "--mask", "both", "--text", text, "--out", dir.file("both.png")});
  INFO(both.err);
  CHECK(both.code == 0);
  // a causal model has no trained sink logit to draw learned-sink with
  Run refused = attn({"--model", causal, "--mask", "learned-sink", "--text", text, "--out", dir.file("no.png")});
  CHECK(refused.code == 2);
  CHECK(refused.err.find("--mask learned-sink") != std::string::npos);
  CHECK(refused.err.find("sink_logit") != std::string::npos);
  CHECK(!std::filesystem::exists(dir.file("no.png")));
}

}  // TEST_SUITE
