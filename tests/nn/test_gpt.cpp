// Chapter 5: the GPT. A whole-model reference test against PyTorch (llm.c style fixture), central-difference
// checks of the full model for both masks and every position encoding, the fused attention path against the
// materialized one, and the SM-I property (a row never depends on the tokens after it).
#include <doctest/doctest.h>

#include "compare.h"
#include "fixture_util.h"
#include "eval_util.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/gpt.h"
#include "train/safetensors.h"
#include "tensor/ops.h"

using namespace gradlab;

namespace {

void check_fixture(const std::string& file, const std::string& mask) {
  SafetensorsFile f = read_safetensors(std::string(GRADLAB_TEST_DATA_DIR) + "/fixtures/" + file);
  GPTConfig c = testing::fixture_config(mask);
  c.gamma = GammaKind::Constant;  // ref_gpt.py's StableMask: one gamma for every head
  c.gamma_value = 0.5;
  GPT model(c, 0);
  model.to_double();
  testing::load_fixture_weights(model, f, file);
  const Tensor& inputs = f.tensors.at("inputs");
  const std::int64_t B = inputs.size(0), T = inputs.size(1);
  Var logits = model.forward(testing::as_ids(inputs), B, T);
  Var loss = model.loss(logits, testing::as_ids(f.tensors.at("targets")));
  CHECK(testing::worst_scaled_error(logits.data(), f.tensors.at("logits")) < 1e-5);
  CHECK(loss.item() == doctest::Approx(f.tensors.at("loss").item()).epsilon(1e-10));
  loss.backward();
  for (auto& named : model.named_parameters()) {
    const auto& name = named.first;  // not a structured binding: clang 14 cannot capture one (INFO)
    auto& p = named.second;
    INFO("gradient of " << name);
    REQUIRE(p.grad().defined());
    CHECK(testing::worst_scaled_error(p.grad(), f.tensors.at("grads/" + name)) < 1e-5);
  }
}

// Central differences on a sample of parameter elements of the whole model, in float64.
void check_model_gradients(const GPTConfig& c, std::int64_t T) {
  GPT model(c, 3);
  model.to_double();
  const std::int64_t B = 2;
  std::vector<std::int32_t> idx, targets;
  Rng rng(11);
  for (std::int64_t i = 0; i < B * T; ++i) {
    idx.push_back(static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(c.vocab_size))));
    targets.push_back(static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(c.vocab_size))));
  }
  auto loss_value = [&]() {
    NoGrad guard;
    return model.loss(model.forward(idx, B, T), targets).item();
  };
  model.loss(model.forward(idx, B, T), targets).backward();
  const double eps = 1e-6;
  double worst = 0;
  std::string where;
  for (auto& [name, p] : model.named_parameters()) {
    Tensor g = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), DType::F64);
    double* w = p.data().data<double>();
    const std::int64_t n = p.data().numel();
    for (std::int64_t s = 0; s < std::min<std::int64_t>(n, 6); ++s) {
      std::int64_t k = static_cast<std::int64_t>(rng.below(static_cast<std::uint32_t>(n)));
      double saved = w[k];
      w[k] = saved + eps;
      double up = loss_value();
      w[k] = saved - eps;
      double down = loss_value();
      w[k] = saved;
      double numeric = (up - down) / (2 * eps);
      double analytic = g.data<double>()[k];
      double err = std::abs(analytic - numeric) / (1e-7 + 1e-5 * std::abs(numeric));
      if (err > worst) {
        worst = err;
        where = name + "[" + std::to_string(k) + "] analytic " + std::to_string(analytic) + " numeric " +
                std::to_string(numeric);
      }
    }
  }
  INFO(where);
  CHECK(worst <= 1.0);  // rtol 1e-5, atol 1e-7 (the loss is O(1); eps 1e-6 gives ~1e-10 error)
}

GPTConfig tiny(const std::string& mask, PosKind pos) {
  GPTConfig c;
  c.vocab_size = 7;
  c.block_size = 6;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 8;
  c.mask = mask;
  c.pos = pos;
  return c;
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("GPT matches the PyTorch fixture / causal (logits / loss / every gradient / float64)") {
    check_fixture("gpt_causal.safetensors", "causal");
  }
  TEST_CASE("GPT matches the PyTorch fixture / StableMask with constant gamma (float64)") {
    check_fixture("gpt_stablemask.safetensors", "stablemask");
  }

  TEST_CASE("gradcheck GPT: both masks x every position encoding / T = L and T < L") {
    for (const std::string& mask : strategy_names())
      for (PosKind pos : {PosKind::Learned, PosKind::Sinusoidal, PosKind::Rope, PosKind::Alibi, PosKind::None})
        for (std::int64_t T : {6, 4}) {
          CAPTURE(mask);
          CAPTURE(to_string(pos));
          CAPTURE(T);
          check_model_gradients(tiny(mask, pos), T);
        }
  }

  TEST_CASE("gradcheck GPT: rmsnorm + swiglu / no bias / infinite tail") {
    GPTConfig c = tiny("stablemask", PosKind::Rope);
    c.norm = NormKind::RMSNorm;
    c.mlp = MlpKind::SwiGLU;
    c.bias = false;
    c.tail = StableMaskTail::Infinite;
    check_model_gradients(c, 5);
  }

  TEST_CASE("gradcheck GPT: mlp = gelu_exact (erf GELU) / both masks") {
    for (const std::string& mask : strategy_names()) {
      CAPTURE(mask);
      GPTConfig c = tiny(mask, PosKind::Learned);
      c.mlp = MlpKind::GeluExact;
      check_model_gradients(c, 6);
    }
  }

  TEST_CASE("fused attention path equals the materialized path inside the GPT (float32)") {
    for (const std::string& mask : strategy_names())
      for (PosKind pos : {PosKind::Learned, PosKind::Sinusoidal, PosKind::Rope, PosKind::Alibi}) {
        CAPTURE(mask);
        CAPTURE(to_string(pos));
        GPTConfig c = tiny(mask, pos);
        GPT a(c, 5), b(c, 5);
        // the same noise on both, so the strategies' own parameters (0 at initialisation) are not trivial
        evaltest::perturb(a, 0.3, 9);
        evaltest::perturb(b, 0.3, 9);
        std::vector<std::int32_t> idx{1, 2, 3, 4, 5, 6, 0, 1, 2, 3};
        std::vector<std::int32_t> tgt{2, 3, 4, 5, 6, 0, 1, 2, 3, 4};
        ForwardOptions fused, materialized;
        materialized.fused_attention = false;
        Var la = a.loss(a.forward(idx, 2, 5, fused), tgt);
        Var lb = b.loss(b.forward(idx, 2, 5, materialized), tgt);
        CHECK(la.item() == doctest::Approx(lb.item()).epsilon(1e-5));
        la.backward();
        lb.backward();
        auto pa = a.named_parameters(), pb = b.named_parameters();
        for (std::size_t i = 0; i < pa.size(); ++i) {
          INFO(pa[i].first);
          CHECK(ops::max_abs_diff(pa[i].second.grad(), pb[i].second.grad()) < 1e-5);
        }
      }
  }

  TEST_CASE("sinusoidal positions: the formula, offsets and no parameters, and the width rules of sinusoidal and rope") {
    const std::int64_t T = 64, C = 16;
    Tensor pe = sinusoidal_positions(0, T, C, DType::F64);
    REQUIRE(pe.shape() == Shape{T, C});
    // position 0: sin 0 = 0 and cos 0 = 1 in every pair; position 5, pair 1: w_1 = 10000^(-2/16)
    for (std::int64_t i = 0; i < C / 2; ++i) {
      CHECK(pe.at({0, 2 * i}) == 0.0);
      CHECK(pe.at({0, 2 * i + 1}) == 1.0);
    }
    CHECK(pe.at({5, 2}) == doctest::Approx(std::sin(5 * std::pow(10000.0, -2.0 / 16))).epsilon(1e-14));
    CHECK(pe.at({5, 3}) == doctest::Approx(std::cos(5 * std::pow(10000.0, -2.0 / 16))).epsilon(1e-14));
    // the slowest pair turns by 10000^(-14/16) = 3.2e-4 radians per position
    CHECK(pe.at({63, 14}) == doctest::Approx(std::sin(63 * std::pow(10000.0, -14.0 / 16))).epsilon(1e-14));
    // an offset table is a slice of the long one (the KV cache and sliding windows rely on it)
    Tensor shifted = sinusoidal_positions(40, 8, C, DType::F64);
    for (std::int64_t t = 0; t < 8; ++t)
      for (std::int64_t c = 0; c < C; ++c) CHECK(shifted.at({t, c}) == pe.at({40 + t, c}));
    CHECK_THROWS_AS(sinusoidal_positions(0, 4, 7), Error);   // odd width
    CHECK_THROWS_AS(sinusoidal_positions(-1, 4, 8), Error);  // negative first position
    CHECK_THROWS_AS(sinusoidal_positions(0, 0, 8), Error);   // no rows
    // the table is fixed: a sinusoidal GPT has no wpe parameter, and its config needs an even width
    GPTConfig c = tiny("causal", PosKind::Sinusoidal);
    for (auto& [name, p] : GPT(c, 1).named_parameters()) CHECK(name.find("wpe") == std::string::npos);
    CHECK(GPTConfig::from_json(c.to_json()).pos == PosKind::Sinusoidal);
    c.n_embd = 6;
    c.n_head = 2;
    CHECK_NOTHROW(c.validate());
    c.n_embd = 9;
    c.n_head = 3;
    CHECK_THROWS_AS(c.validate(), Error);
    // RoPE rotates pairs within a head: a head size of 3 is refused, 4 accepted
    c.pos = PosKind::Rope;
    c.n_embd = 6;
    c.n_head = 2;
    CHECK_THROWS_AS(c.validate(), Error);
    c.n_embd = 8;
    CHECK_NOTHROW(c.validate());
  }

  TEST_CASE("SM-I: a row's logits never depend on the tokens after it") {
    for (const std::string& mask : strategy_names()) {
      GPTConfig c = tiny(mask, PosKind::Rope);
      GPT model(c, 9);
      std::vector<std::int32_t> full{3, 1, 4, 1, 5, 2}, prefix{3, 1, 4};
      NoGrad guard;
      Tensor lf = model.forward(full, 1, 6).data();
      Tensor lp = model.forward(prefix, 1, 3).data();
      CHECK(ops::max_abs_diff(lf.narrow(1, 0, 3), lp) < 1e-6);
    }
  }

  TEST_CASE("attention recorder: (n_layer / n_head / T / T) - rows sum to 1 (causal) or to S/(S+Z) (StableMask)") {
    GPTConfig c = tiny("stablemask", PosKind::Learned);
    GPT model(c, 1);
    AttentionRecorder rec;
    ForwardOptions opt;
    opt.recorder = &rec;
    NoGrad guard;
    model.forward({1, 2, 3, 4, 5, 6}, 1, 6, opt);
    Tensor maps = rec.stacked();
    CHECK(maps.shape() == Shape{2, 2, 6, 6});
    // the last row (i = L - 1) has no pseudo slots: it sums to 1; earlier rows sum to less
    double last = 0, first = 0;
    for (int j = 0; j < 6; ++j) last += maps.at({0, 0, 5, j});
    first = maps.at({0, 0, 0, 0});
    CHECK(last == doctest::Approx(1.0).epsilon(1e-5));
    CHECK(first < 1.0);
    CHECK(maps.at({0, 0, 1, 4}) == 0.0);  // future keys get exactly 0
  }

  TEST_CASE("config validation names the field and the rule") {
    GPTConfig c;
    c.n_head = 3;
    CHECK_THROWS_WITH_AS(c.validate(), "config: n_head = 3 does not divide n_embd = 128; choose n_embd a multiple of n_head", Error);
    CHECK_THROWS_WITH_AS(GPTConfig::from_json(R"({"n_layer": 2, "colour": "red"})"), "config: unknown key 'colour'", Error);
    GPTConfig d;
    d.mask = "stablemask";
    d.pos = PosKind::Rope;
    CHECK(GPTConfig::from_json(d.to_json()).to_json() == d.to_json());
    CHECK_THROWS_WITH_AS(strategy_info("stable"), "unknown mask 'stable', expected one of: causal, stablemask, softmax1, learned-sink, null-kv, gated", Error);
  }

  TEST_CASE("learned positions refuse to extrapolate past block_size") {
    GPT model(tiny("causal", PosKind::Learned), 1);
    CHECK_THROWS_AS(model.forward({1, 2, 3, 4, 5, 6, 1}, 1, 7), Error);
  }
}

TEST_SUITE("model") {
  TEST_CASE("null-kv: with k0 = v0 = 0 it is softmax1, a learned value moves the output, fused equals materialized") {
    GPTConfig c = tiny("null-kv", PosKind::Rope), c1 = tiny("softmax1", PosKind::Rope);
    GPT a(c, 4), b(c1, 4);
    const std::vector<std::int32_t> ids{1, 2, 3, 4, 5, 6};
    NoGrad guard;
    const Tensor la = a.forward(ids, 1, 6).data(), lb = b.forward(ids, 1, 6).data();
    CHECK(ops::max_abs_diff(la, lb) < 1e-6);  // exp(0) in the denominator, value 0: softmax1
    ForwardOptions mat;
    mat.fused_attention = false;
    CHECK(ops::max_abs_diff(a.forward(ids, 1, 6, mat).data(), la) < 1e-6);  // the fused kernel's null key
    int found = 0;
    for (auto& [name, p] : a.named_parameters())
      if (name == "transformer.h.0.attn.null_v") {
        ++found;
        float* w = p.data().data<float>();
        for (std::int64_t k = 0; k < p.data().numel(); ++k) w[k] = 0.5f;
      }
    REQUIRE(found == 1);
    CHECK(ops::max_abs_diff(a.forward(ids, 1, 6).data(), lb) > 1e-3);
    CHECK(ops::max_abs_diff(a.forward(ids, 1, 6).data(), a.forward(ids, 1, 6, mat).data()) < 1e-6);
  }

  TEST_CASE("parameter_shapes (computed without a model) equals the built model's parameters") {
    for (const std::string& mask : strategy_names())
      for (PosKind pos : {PosKind::Learned, PosKind::Rope})
        for (bool bias : {true, false})
          for (MlpKind mlp : {MlpKind::Gelu, MlpKind::SwiGLU})
            for (NormKind norm : {NormKind::LayerNorm, NormKind::RMSNorm}) {
              GPTConfig c = tiny(mask, pos);
              c.bias = bias;
              c.mlp = mlp;
              c.norm = norm;
              GPT model(c, 1);
              auto built = model.named_parameters();
              auto shapes = GPT::parameter_shapes(c);
              REQUIRE(built.size() == shapes.size());
              for (std::size_t i = 0; i < shapes.size(); ++i) {
                CHECK(built[i].first == shapes[i].first);
                CHECK(built[i].second.shape() == shapes[i].second);
              }
            }
  }

  TEST_CASE("a deeply nested config value is rejected without recursing") {
    std::string deep = "{\"n_layer\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
    CHECK_THROWS_WITH_AS(GPTConfig::from_json(deep), "config: n_layer must be an integer, got a JSON array", Error);
  }

  TEST_CASE("check_state_dict rejects a huge config's missing tensors before anything is allocated") {
    GPTConfig c;
    c.n_embd = 65536;
    c.n_head = 64;
    c.n_layer = 64;
    CHECK_THROWS_WITH_AS(GPT::check_state_dict(c, {}, "file.safetensors"),
                         "file.safetensors: missing tensor 'transformer.h.0.attn.c_attn.bias'", Error);
  }
}
