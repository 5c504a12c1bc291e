// gated attention with the full (C, C) gate (GPTConfig::gate = full, `gradlab train --mask gated --gate full`):
// the gate per channel against a plain loop, central differences of the whole model, fused = materialized, the
// config and a saved model round trip, and configs without the key still read as the head-wise gate.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "eval_util.h"
#include "nn/gpt.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "train/checkpoint.h"

using namespace gradlab;

namespace {

GPTConfig full_gate_config(PosKind pos = PosKind::Learned) {
  GPTConfig c = evaltest::tiny_config(pos, "gated");  // C = 16, H = 2, L = 8
  c.gate = GateKind::Full;
  return c;
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("full gate: W_g is (C, C), each channel's output times sigmoid(x . W_g[c])") {
    GPTConfig c = full_gate_config();
    c.n_embd = 8;
    auto s = make_attention_strategy(c);
    REQUIRE(s->parameter_shapes().size() == 1);
    CHECK(s->parameter_shapes()[0].first == "gate.weight");
    CHECK(s->parameter_shapes()[0].second == Shape{8, 8});
    auto params = s->named_parameters();
    REQUIRE(params.size() == 1);
    const std::int64_t B = 2, T = 3, C = 8;
    std::vector<double> yv(B * T * C), xv(B * T * C), wv(C * C);
    for (std::size_t k = 0; k < yv.size(); ++k) yv[k] = std::sin(0.7 * double(k)), xv[k] = std::cos(0.3 * double(k));
    for (std::size_t k = 0; k < wv.size(); ++k) wv[k] = 0.05 * double(k % 7) - 0.15;
    params[0].second.data() = Tensor::from_values({C, C}, wv, DType::F64);
    const Var y = Var::leaf(Tensor::from_values({B, T, C}, yv, DType::F64));
    const Var x = Var::leaf(Tensor::from_values({B, T, C}, xv, DType::F64));
    const std::vector<double> out = s->gate(y, x).data().to_vector();
    for (std::int64_t bt = 0; bt < B * T; ++bt)
      for (std::int64_t ch = 0; ch < C; ++ch) {
        double a = 0;
        for (std::int64_t k = 0; k < C; ++k) a += xv[bt * C + k] * wv[ch * C + k];
        CHECK(out[bt * C + ch] == doctest::Approx(yv[bt * C + ch] / (1 + std::exp(-a))).epsilon(1e-12));
      }
  }

  TEST_CASE("full gate: whole-model gradients equal central differences (float64), fused equals materialized") {
    for (PosKind pos : {PosKind::Learned, PosKind::Rope}) {
      CAPTURE(to_string(pos));
      GPTConfig c = full_gate_config(pos);
      GPT model(c, 3);
      evaltest::perturb(model, 0.3, 4);  // W_g away from 0
      model.to_double();
      const std::int64_t B = 2, T = 6;
      const auto idx = evaltest::random_tokens(B * T, c.vocab_size, 8), tgt = evaltest::random_tokens(B * T, c.vocab_size, 9);
      model.loss(model.forward(idx, B, T), tgt).backward();
      auto loss_value = [&]() {
        NoGrad guard;
        return model.loss(model.forward(idx, B, T), tgt).item();
      };
      // every element of W_g in layer 0 and a few of layer 1
      int checked = 0;
      double worst = 0;
      for (auto& [name, p] : model.named_parameters()) {
        if (name.find("gate.weight") == std::string::npos) continue;
        double* w = p.data().data<double>();
        const std::vector<double> g = p.grad().to_vector();
        const std::int64_t n = name.find(".h.0.") != std::string::npos ? p.data().numel() : 20;
        for (std::int64_t k = 0; k < n; ++k) {
          const double saved = w[k], eps = 1e-6;
          w[k] = saved + eps;
          const double up = loss_value();
          w[k] = saved - eps;
          const double down = loss_value();
          w[k] = saved;
          const double numeric = (up - down) / (2 * eps);
          worst = std::max(worst, std::abs(g[k] - numeric) / (1e-7 + 1e-5 * std::abs(numeric)));
          ++checked;
        }
      }
      CHECK(checked == 16 * 16 + 20);
      CHECK(worst <= 1.0);  // rtol 1e-5, atol 1e-7
      // float32: the fused path against the materialized one, loss and every gradient
      GPT a(c, 5), b(c, 5);
      evaltest::perturb(a, 0.3, 6);
      evaltest::perturb(b, 0.3, 6);
      ForwardOptions mat;
      mat.fused_attention = false;
      Var la = a.loss(a.forward(idx, B, T), tgt), lb = b.loss(b.forward(idx, B, T, mat), tgt);
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

  TEST_CASE("full gate: the config and a saved model round trip, and configs without the key read as head") {
    GPTConfig c = full_gate_config();
    CHECK(c.to_json().find("\"gate\":\"full\"") != std::string::npos);
    CHECK(GPTConfig::from_json(c.to_json()).gate == GateKind::Full);
    GPTConfig h = c;
    h.gate = GateKind::Head;
    CHECK(h.to_json().find("\"gate\"") == std::string::npos);  // absent: written as before the option existed
    CHECK(GPTConfig::from_json(h.to_json()).gate == GateKind::Head);
    CHECK_THROWS_WITH_AS(GPTConfig::from_json(R"({"gate": "channel"})"),
                         "unknown gate 'channel', expected one of: head, full", Error);
    GPT model(c, 2);
    evaltest::perturb(model, 0.2, 3);
    const evaltest::TempDir dir("gate_full");
    const std::string path = dir.file("model.safetensors");
    save_model(path, model, nullptr, "");
    ModelInfo info;
    auto back = load_model(path, &info);
    CHECK(info.config.gate == GateKind::Full);
    CHECK(info.config.mask == "gated");
    auto pa = model.named_parameters(), pb = back->named_parameters();
    REQUIRE(pa.size() == pb.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
      CHECK(pa[i].first == pb[i].first);
      CHECK(pa[i].second.data().to_vector() == pb[i].second.data().to_vector());
    }
    // a head-gate file does not load as a full-gate model: the shapes are checked first
    GPTConfig head = c;
    head.gate = GateKind::Head;
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (auto& [name, p] : GPT(head, 1).named_parameters()) tensors.emplace_back(name, p.data());
    CHECK_THROWS_AS(GPT::check_state_dict(c, tensors, "head-gate weights"), Error);
  }
}
