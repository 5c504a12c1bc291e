// The sink remedies against PyTorch: for softmax1, learned-sink, null-kv and gated, a float64 fixture written by
// tests/data/fixtures/make_strategy_fixtures.py (the attention coded there from docs/sink_remedies.md, not from
// gradlab) holds the weights of the tiny model of gpt_causal.safetensors plus the strategy's own parameters, a
// batch, the logits, the loss and every parameter's gradient. gradlab loads the weights and must reproduce them,
// each tensor to within a fraction of its largest entry: 1e-12 in float64 (the materialized path; measured worst
// 1.3e-15) and 1e-5 in float32 (the training path, fused attention for every strategy; measured worst 4.2e-7).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "nn/gpt.h"
#include "nn/sink_metrics.h"
#include "train/safetensors.h"
#include "viz/attention.h"
#include "fixture_util.h"

using namespace gradlab;
using gradlab::testing::as_ids;
using gradlab::testing::fixture_config;
using gradlab::testing::load_fixture_weights;

namespace {

// max |a - b| / max |b|: the error relative to the tensor's scale (gradients here are 1e-4 .. 1e-1, so an
// absolute tolerance would pass a wrong small one)
double error_to_scale(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  REQUIRE(scale > 0);  // a gradient that is zero everywhere would test nothing
  return diff / scale;
}

std::string fixture_path(const std::string& mask) {
  return std::string(GRADLAB_TEST_DATA_DIR) + "/fixtures/gpt_" + mask + ".safetensors";
}

void check_strategy_fixture(const std::string& mask, bool float64, double tol) {
  const std::string file = fixture_path(mask);
  SafetensorsFile f = read_safetensors(file);
  REQUIRE(f.metadata.count("config"));
  CHECK(f.metadata.at("config").find("\"mask\": \"" + mask + "\"") != std::string::npos);
  GPT model(fixture_config(mask), 0);
  if (float64) model.to_double();
  load_fixture_weights(model, f, file);
  const Tensor& inputs = f.tensors.at("inputs");
  const std::int64_t B = inputs.size(0), T = inputs.size(1);
  Var logits = model.forward(as_ids(inputs), B, T);  // default options: fused attention in float32 when supported
  Var loss = model.loss(logits, as_ids(f.tensors.at("targets")));
  CHECK(error_to_scale(logits.data(), f.tensors.at("logits")) < tol);
  const double ref_loss = f.tensors.at("loss").item();
  CHECK(std::abs(loss.item() - ref_loss) / ref_loss < tol);
  loss.backward();
  int strategy_params = 0;
  for (auto& named : model.named_parameters()) {
    const auto& name = named.first;  // not a structured binding: clang 14 cannot capture one (INFO)
    auto& p = named.second;
    INFO("gradient of " << name << (float64 ? " (float64)" : " (float32)"));
    REQUIRE(p.grad().defined());
    CHECK(error_to_scale(p.grad(), f.tensors.at("grads/" + name)) < tol);
    for (const char* own : {".sink_logit", ".null_k", ".null_v", ".gate.weight"})
      if (name.find(own) != std::string::npos) ++strategy_params;
  }
  // every layer's own parameters were compared, with the random values the fixture gave them
  const int expected = mask == "null-kv" ? 4 : mask == "softmax1" ? 0 : 2;
  CHECK(strategy_params == expected);
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("sink remedies match PyTorch: logits / loss / every gradient in float64 (materialized path)") {
    for (const char* mask : {"softmax1", "learned-sink", "null-kv", "gated"}) {
      CAPTURE(mask);
      check_strategy_fixture(mask, true, 1e-12);
    }
  }
  TEST_CASE("null-kv: the recorder's diverted-mass column is PyTorch's attention on the null key") {
    // the figures draw 1 - R_i (viz::AttentionMaps::row_mass) as the sink column; under null-kv that is the null
    // key's probability, which the fixture stores per layer, row of the batch, head and query
    const std::string file = fixture_path("null-kv");
    SafetensorsFile f = read_safetensors(file);
    GPT model(fixture_config("null-kv"), 0);
    model.to_double();
    std::vector<std::pair<std::string, Tensor>> weights;
    for (auto& [name, t] : f.tensors)
      if (name.rfind("weights/", 0) == 0) weights.emplace_back(name.substr(8), t);
    model.load_state_dict(weights, file);
    const Tensor& inputs = f.tensors.at("inputs");
    const Tensor& null_mass = f.tensors.at("null_mass");  // (n_layer, B, H, T)
    const std::int64_t B = inputs.size(0), T = inputs.size(1), H = 2, n_layer = 2;
    REQUIRE(null_mass.shape() == Shape{n_layer, B, H, T});
    const std::vector<double> ids_all = inputs.to_vector(), ref = null_mass.to_vector();
    double worst = 0, smallest = 1;
    for (std::int64_t b = 0; b < B; ++b) {
      std::vector<std::int32_t> ids;
      for (std::int64_t t = 0; t < T; ++t) ids.push_back(static_cast<std::int32_t>(ids_all[b * T + t]));
      const viz::AttentionMaps maps =
          viz::AttentionMaps::from_tensor(record_attention(model, ids), "null-kv", strategy_info("null-kv").has_sink);
      REQUIRE(maps.stablemask);  // the sink column is drawn
      for (std::int64_t l = 0; l < n_layer; ++l)
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t i = 0; i < T; ++i) {
            const double expected = ref[((l * B + b) * H + h) * T + i];
            worst = std::max(worst, std::abs((1.0 - maps.row_mass(l, h, i)) - expected));
            smallest = std::min(smallest, expected);
          }
    }
    CHECK(smallest > 1e-3);  // every row gives the null key a visible share
    CHECK(worst < 1e-6);     // the maps are float32
  }

  TEST_CASE("sink remedies match PyTorch in float32 (the training path, fused attention where supported)") {
    for (const char* mask : {"softmax1", "learned-sink", "null-kv", "gated"}) {
      CAPTURE(mask);
      check_strategy_fixture(mask, false, 1e-5);
    }
  }
}
