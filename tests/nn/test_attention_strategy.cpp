// The attention-strategy interface (nn/attention_strategy.h): the table, the bias and sink logit each
// strategy gives per head, the checkpoint's "mask" metadata, and the one learned-positions rule.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "nn/attention_strategy.h"
#include "nn/gpt.h"
#include "nn/stablemask.h"
#include "tensor/error.h"

using namespace gradlab;

namespace {

GPTConfig small_config(const std::string& mask, PosKind pos = PosKind::Rope) {
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

// A module whose child is registered under "": the child's parameters must sit at the parent's level.
struct Child : Module {
  Child() { register_parameter("sink", Tensor::zeros({2})); }
};
struct Parent : Module {
  Parent() {
    register_module("c_attn", std::make_unique<Child>());
    register_module("", std::make_unique<Child>());
  }
};

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("strategy table: every name resolves to its own row, with a label and a help line") {
    const std::vector<std::string>& names = strategy_names();
    REQUIRE(names.size() >= 2);
    CHECK(names.front() == "causal");
    CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
    const std::string help = strategy_help();
    for (const std::string& n : names) {
      CAPTURE(n);
      const StrategyInfo& info = strategy_info(n);
      CHECK(info.name == n);
      CHECK(std::string(info.label).size() > 0);
      CHECK(std::string(info.help).size() > 10);
      CHECK(help.find(n + " = " + info.help) != std::string::npos);
      CHECK(make_attention_strategy(small_config(n))->name() == n);
    }
    CHECK_FALSE(strategy_info("causal").has_sink);
    CHECK(strategy_info("stablemask").has_sink);
    CHECK_FALSE(strategy_info("stablemask").tau_is_parameter);
    CHECK(std::string(strategy_info("stablemask").label) == "StableMask");
    for (const std::string& n : compared_strategies()) CHECK_NOTHROW(strategy_info(n));
    CHECK_THROWS_WITH_AS(strategy_info("softmax2"), "unknown mask 'softmax2', expected one of: causal, stablemask, softmax1, learned-sink, null-kv, gated",
                         Error);
    GPTConfig bad = small_config("Causal");
    CHECK_THROWS_WITH_AS(bad.validate(), "unknown mask 'Causal', expected one of: causal, stablemask, softmax1, learned-sink, null-kv, gated", Error);
  }

  TEST_CASE("strategy bias: -inf for future keys, 0 or ALiBi's -slope * distance for the rest") {
    for (PosKind pos : {PosKind::Rope, PosKind::Alibi}) {
      CAPTURE(to_string(pos));
      auto s = make_attention_strategy(small_config("causal", pos));
      // 2 queries at positions 5, 6 over 4 keys at positions 3..6 (a KV cache holding 2 earlier keys)
      const Tensor b = s->bias(2, 4, 5, 3, DType::F64);
      REQUIRE(b.shape() == Shape{2, 2, 4});
      const std::vector<double> slopes = alibi_slopes(2);
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t i = 0; i < 2; ++i)
          for (std::int64_t j = 0; j < 4; ++j) {
            const std::int64_t dist = (5 + i) - (3 + j);
            const double got = b.at({h, i, j});
            if (dist < 0) CHECK(got == -std::numeric_limits<double>::infinity());
            else CHECK(got == (pos == PosKind::Alibi ? -slopes[h] * double(dist) : 0.0));
          }
      CHECK(s->alibi_slopes().size() == (pos == PosKind::Alibi ? 2u : 0u));
    }
  }

  TEST_CASE("strategy tau: none for causal, StableMask's log Z(i) at absolute rows in float32 and float64") {
    CHECK_FALSE(make_attention_strategy(small_config("causal"))->tau(3, 0, DType::F32).defined());
    GPTConfig c = small_config("stablemask");
    auto s = make_attention_strategy(c);
    for (DType dtype : {DType::F32, DType::F64}) {
      const Tensor tau = s->tau(4, 3, dtype);  // rows 3..6 of L = 6: rows 5 and 6 have no pseudo columns
      REQUIRE(tau.shape() == Shape{2, 4});
      CHECK(tau.dtype() == dtype);
      for (std::int64_t h = 0; h < 2; ++h)
        for (std::int64_t t = 0; t < 4; ++t) {
          const double want = stablemask_tau(c.gammas()[h], c.block_size, 3 + t, c.tail);
          if (std::isinf(want)) CHECK(tau.at({h, t}) == want);
          else if (dtype == DType::F64) CHECK(tau.at({h, t}) == want);
          else CHECK(tau.at({h, t}) == static_cast<double>(static_cast<float>(want)));
        }
    }
    CHECK(s->parameter_shapes().empty());
  }

  TEST_CASE("strategy tau: softmax1 has 0 in every row and learned-sink's is its parameter tau_h in every row") {
    auto s1 = make_attention_strategy(small_config("softmax1"));
    CHECK(s1->has_sink());
    CHECK_FALSE(s1->info().tau_is_parameter);
    CHECK(s1->parameter_shapes().empty());
    CHECK(s1->named_parameters().empty());
    const Tensor t1 = s1->tau(3, 4, DType::F64);
    REQUIRE(t1.shape() == Shape{2, 3});
    for (double x : t1.to_vector()) CHECK(x == 0.0);

    auto ls = make_attention_strategy(small_config("learned-sink"));
    CHECK(ls->has_sink());
    CHECK(ls->info().tau_is_parameter);
    auto params = ls->named_parameters();
    REQUIRE(params.size() == 1);
    CHECK(params[0].first == "sink_logit");
    CHECK(params[0].second.shape() == Shape{2});
    REQUIRE(ls->parameter_shapes().size() == 1);
    CHECK(ls->parameter_shapes()[0].first == "sink_logit");
    CHECK(ls->parameter_shapes()[0].second == Shape{2});
    for (double x : params[0].second.data().to_vector()) CHECK(x == 0.0);  // starts as softmax1
    float* w = params[0].second.data().data<float>();
    w[0] = 1.25f;
    w[1] = -0.5f;
    for (DType dtype : {DType::F32, DType::F64}) {
      const Tensor t = ls->tau(4, 7, dtype);  // any rows, any offset: the same tau_h
      REQUIRE(t.shape() == Shape{2, 4});
      for (std::int64_t i = 0; i < 4; ++i) {
        CHECK(t.at({0, i}) == 1.25);
        CHECK(t.at({1, i}) == -0.5);
      }
    }
    // the graph form carries the gradient to the parameter, summed over the rows
    Var tv = ls->tau_var(3, 0, DType::F32);
    sum(mul_scalar(tv, 2.0)).backward();
    REQUIRE(params[0].second.grad().defined());
    for (double g : params[0].second.grad().to_vector()) CHECK(g == 6.0);
  }

  TEST_CASE("gated: each head's output times sigmoid(x W_g^T), every gate 1/2 at initialisation, no sink") {
    GPTConfig c = small_config("gated");  // C = 8, H = 2, D = 4
    auto s = make_attention_strategy(c);
    CHECK_FALSE(s->has_sink());
    CHECK_FALSE(s->tau(3, 0, DType::F32).defined());
    REQUIRE(s->parameter_shapes().size() == 1);
    CHECK(s->parameter_shapes()[0].first == "gate.weight");
    CHECK(s->parameter_shapes()[0].second == Shape{2, 8});
    auto params = s->named_parameters();
    REQUIRE(params.size() == 1);
    CHECK(params[0].first == "gate.weight");
    const std::int64_t B = 2, T = 3, C = 8;
    std::vector<double> yv(B * T * C), xv(B * T * C);
    for (std::size_t k = 0; k < yv.size(); ++k) yv[k] = std::sin(0.7 * double(k)), xv[k] = std::cos(0.3 * double(k));
    const Var y = Var::leaf(Tensor::from_values({B, T, C}, yv, DType::F64));
    const Var x = Var::leaf(Tensor::from_values({B, T, C}, xv, DType::F64));
    params[0].second.data() = params[0].second.data().to(DType::F64);
    {
      const std::vector<double> out = s->gate(y, x).data().to_vector();
      for (std::size_t k = 0; k < out.size(); ++k) CHECK(out[k] == 0.5 * yv[k]);
    }
    double* w = params[0].second.data().data<double>();
    for (std::int64_t k = 0; k < 16; ++k) w[k] = 0.1 * double(k % 5) - 0.2;
    const std::vector<double> out = s->gate(y, x).data().to_vector();
    for (std::int64_t bt = 0; bt < B * T; ++bt)
      for (std::int64_t h = 0; h < 2; ++h) {
        double a = 0;
        for (std::int64_t cc = 0; cc < C; ++cc) a += xv[bt * C + cc] * w[h * C + cc];
        const double g = 1 / (1 + std::exp(-a));
        for (std::int64_t d = 0; d < 4; ++d)
          CHECK(out[bt * C + h * 4 + d] == doctest::Approx(yv[bt * C + h * 4 + d] * g).epsilon(1e-12));
      }
  }

  TEST_CASE("the checkpoint's mask metadata: written by name, and old configs still load") {
    for (const std::string& n : strategy_names()) {
      GPTConfig c = small_config(n);
      CHECK(c.to_json().find("\"mask\":\"" + n + "\"") != std::string::npos);
      CHECK(GPTConfig::from_json(c.to_json()).mask == n);
    }
    // a config as the checkpoints before the strategy table wrote it
    const std::string old = R"({"bias":true,"block_size":64,"dropout":0.0,"gamma":"alibi","gamma_value":0.5,)"
                            R"("mask":"stablemask","mlp":"gelu","n_embd":128,"n_head":4,"n_layer":4,"norm":"layernorm",)"
                            R"("pos":"learned","tail":"finite","vocab_size":65})";
    CHECK(GPTConfig::from_json(old).mask == "stablemask");
    CHECK(GPTConfig::from_json(old).to_json() == old);
    CHECK_THROWS_WITH_AS(GPTConfig::from_json(R"({"mask": "alibi"})"),
                         "unknown mask 'alibi', expected one of: causal, stablemask, softmax1, learned-sink, null-kv, gated", Error);
  }

  TEST_CASE("a child module registered under \"\" puts its parameters at its parent's level") {
    Parent p;
    auto named = p.named_parameters();
    REQUIRE(named.size() == 2);
    CHECK(named[0].first == "c_attn.sink");
    CHECK(named[1].first == "sink");
  }

  TEST_CASE("the learned-positions rule: learned positions stop at block_size, every other encoding goes on") {
    for (PosKind pos : {PosKind::Learned, PosKind::Sinusoidal, PosKind::Rope, PosKind::Alibi, PosKind::None}) {
      CAPTURE(to_string(pos));
      GPTConfig c = small_config("causal", pos);
      CHECK(c.positions_extrapolate() == (pos != PosKind::Learned));
      CHECK_NOTHROW(c.check_positions("test", 0, 6));
      CHECK_NOTHROW(c.check_positions("test", 5, 1));
      if (pos == PosKind::Learned) {
        CHECK_THROWS_WITH_AS(c.check_positions("test", 4, 3),
                             "test: positions up to 6 go past the training length L = 6 of a model with learned "
                             "positions; learned position embeddings exist only for positions 0..5 and cannot "
                             "extrapolate (rope, alibi, sinusoidal and none can)",
                             Error);
      } else {
        CHECK_NOTHROW(c.check_positions("test", 4, 300));
      }
    }
  }
}
