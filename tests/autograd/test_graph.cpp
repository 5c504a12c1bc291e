// Chapter 3: the graph. The classic pitfalls, on purpose: a reused value, accumulation across backward calls,
// zero_grad, deep graphs (backward and destruction without recursion), no_grad, fused ops vs composites.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {
Tensor randn64(const Shape& shape, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) x = rng.normal();
  return Tensor::from_values(shape, v, DType::F64);
}
}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("README worked example: y = tanh(w*x + b)") {
    // The numbers printed in README.md. x = 0.5, w = -1.5, b = 0.25: z = -0.5, y = tanh(-0.5)
    Var x = Var::leaf(Tensor::scalar(0.5, DType::F64), true);
    Var w = Var::leaf(Tensor::scalar(-1.5, DType::F64), true);
    Var b = Var::leaf(Tensor::scalar(0.25, DType::F64), true);
    Var y = tanh(w * x + b);
    y.backward();
    CHECK(y.item() == doctest::Approx(-0.46211715726).epsilon(1e-10));
    // dy/dz = 1 - tanh(z)^2 = 0.78644773296
    CHECK(w.grad().item() == doctest::Approx(0.39322386648).epsilon(1e-10));   // dz/dw = x
    CHECK(x.grad().item() == doctest::Approx(-1.17967159944).epsilon(1e-10));  // dz/dx = w
    CHECK(b.grad().item() == doctest::Approx(0.78644773296).epsilon(1e-10));   // dz/db = 1
  }

  TEST_CASE("a value used twice receives both gradients: a = 1 / b = a + a / c = b + b") {
    Var a = Var::leaf(Tensor::scalar(1.0), true);
    Var b = a + a;
    Var c = b + b;
    c.backward();
    CHECK(c.item() == 4.0);
    CHECK(a.grad().item() == 4.0);  // not 1 or 2: every path counts
  }

  TEST_CASE("gradients accumulate across backward() calls until zero_grad") {
    Var w = Var::leaf(Tensor::scalar(3.0), true);
    for (int i = 0; i < 2; ++i) (w * w).backward();
    CHECK(w.grad().item() == 12.0);  // 2 * (2w)
    w.zero_grad();
    (w * w).backward();
    CHECK(w.grad().item() == 6.0);
  }

  TEST_CASE("backward through a 100000-node chain does not overflow the stack") {
    Var x = Var::leaf(Tensor::scalar(1.0), true);
    Var y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0;
    y.backward();
    CHECK(x.grad().item() == 1.0);
  }

  TEST_CASE("destroying a 100000-node graph without backward does not overflow the stack") {
    std::int64_t before = live_node_count();
    {
      Var x = Var::leaf(Tensor::scalar(1.0), true);
      Var y = x;
      for (int i = 0; i < 100000; ++i) y = add_scalar(y, 1.0);
      CHECK(live_node_count() - before >= 100000);
    }
    CHECK(live_node_count() == before);
  }

  TEST_CASE("backward frees the graph unless retained") {
    Var x = Var::leaf(Tensor::scalar(2.0), true);
    Var y = exp(x * x);
    CHECK(y.node()->inputs.size() == 1);
    y.backward(/*retain_graph=*/true);
    CHECK(y.node()->inputs.size() == 1);
    y.backward();
    CHECK(y.node()->inputs.empty());
    // d/dx e^{x^2} = 2x e^{x^2} = 4 e^4 per call; the two calls accumulate on the leaf only
    CHECK(x.grad().item() == doctest::Approx(2 * 4 * std::exp(4.0)));
  }

  TEST_CASE("no_grad records nothing") {
    Var x = Var::leaf(Tensor::scalar(2.0), true);
    Var y;
    {
      NoGrad guard;
      y = x * x;
    }
    CHECK_FALSE(y.requires_grad());
    CHECK(y.node()->inputs.empty());
    CHECK_THROWS_AS(y.backward(), Error);
    CHECK(grad_enabled());
  }

  TEST_CASE("add_grad names the likely cause of a shape mismatch") {
    Var x = Var::leaf(Tensor::zeros({2, 3}), true);
    CHECK_THROWS_WITH_AS(x.add_grad(Tensor::zeros({3})),
                         "add_grad: the gradient for 'leaf' has shape (3,) but its value has shape (2, 3); the backward "
                         "function of the op that consumed it probably forgot to reduce a broadcast dimension",
                         Error);
  }

  TEST_CASE("shape mismatches name the op and both shapes") {
    Var a = Var::leaf(Tensor::zeros({2, 3})), b = Var::leaf(Tensor::zeros({4}));
    CHECK_THROWS_WITH_AS(add(a, b), "add: shapes (2, 3) and (4,) do not broadcast (sizes must match or be 1, aligned from the right)", Error);
    CHECK_THROWS_WITH_AS(mul(a, b), "mul: shapes (2, 3) and (4,) do not broadcast (sizes must match or be 1, aligned from the right)", Error);
    CHECK_THROWS_WITH_AS(matmul(a, a), "matmul: got shapes (2, 3) and (2, 3), expected a's last dimension (3) to equal b's second-to-last (2)", Error);
    CHECK_THROWS_WITH_AS(layernorm(a, Var::leaf(Tensor::ones({4})), Var()), "layernorm: got x (2, 3), weight (4,), expected x (..., C) with weight (C)", Error);
    CHECK_THROWS_WITH_AS(concat({a, b}, 0), "concat: got shapes (2, 3) and (4,) (float32, float32), expected equal shapes and dtypes except along dimension 0", Error);
    CHECK_THROWS_WITH_AS(cross_entropy(a, {0, 1, 2}), "cross_entropy: got 3 targets for logits of shape (2, 3), expected 2 (one per row)", Error);
    CHECK_THROWS_WITH_AS(embedding(a, {0, 5}, 1, 2), "embedding: id 5 at position 1 is outside the vocabulary [0, 2)", Error);
  }

  TEST_CASE("fused softmax equals its composite exp(x - max) / sum") {
    Tensor t = randn64({3, 6}, 1);
    Var x1 = Var::leaf(t, true), x2 = Var::leaf(t.clone(), true);
    Tensor r = randn64({3, 6}, 2);
    Var fused = softmax(x1);
    Var shifted = sub(x2, Var::leaf(ops::max(t, 1, true)));
    Var e = exp(shifted);
    Var composite = div(e, sum(e, {1}, true));
    CHECK(ops::allclose(fused.data(), composite.data(), 1e-12, 1e-14));
    sum(mul(fused, Var::leaf(r))).backward();
    sum(mul(composite, Var::leaf(r))).backward();
    CHECK(ops::allclose(x1.grad(), x2.grad(), 1e-10, 1e-12));
  }

  TEST_CASE("fused cross_entropy equals its composite -mean(log_softmax[target])") {
    Tensor t = randn64({4, 5}, 3);
    std::vector<std::int32_t> targets{1, 4, -1, 0};
    Var x1 = Var::leaf(t, true), x2 = Var::leaf(t.clone(), true);
    Var fused = cross_entropy(x1, targets);
    // composite: one-hot selection of log_softmax, skipping the ignored row
    std::vector<double> onehot(20, 0.0);
    for (int r = 0; r < 4; ++r)
      if (targets[r] >= 0) onehot[r * 5 + targets[r]] = -1.0 / 3.0;
    Var composite = sum(mul(log_softmax(x2), Var::leaf(Tensor::from_values({4, 5}, onehot, DType::F64))));
    CHECK(fused.item() == doctest::Approx(composite.item()).epsilon(1e-12));
    fused.backward();
    composite.backward();
    CHECK(ops::allclose(x1.grad(), x2.grad(), 1e-10, 1e-12));
  }

  TEST_CASE("fused layernorm equals its composite (x - mean) / sqrt(var + eps) * w + b") {
    Tensor t = randn64({3, 8}, 4), wt = randn64({8}, 5), bt = randn64({8}, 6);
    Var x1 = Var::leaf(t, true), w1 = Var::leaf(wt, true), b1 = Var::leaf(bt, true);
    Var x2 = Var::leaf(t.clone(), true), w2 = Var::leaf(wt.clone(), true), b2 = Var::leaf(bt.clone(), true);
    Var fused = layernorm(x1, w1, b1);
    Var mu = mean(x2, {-1}, true);
    Var centered = sub(x2, mu);
    Var var = mean(mul(centered, centered), {-1}, true);
    Var composite = add(mul(div(centered, sqrt(add_scalar(var, 1e-5))), w2), b2);
    CHECK(ops::allclose(fused.data(), composite.data(), 1e-10, 1e-12));
    Tensor r = randn64({3, 8}, 7);
    sum(mul(fused, Var::leaf(r))).backward();
    sum(mul(composite, Var::leaf(r))).backward();
    CHECK(ops::allclose(x1.grad(), x2.grad(), 1e-9, 1e-12));
    CHECK(ops::allclose(w1.grad(), w2.grad(), 1e-9, 1e-12));
    CHECK(ops::allclose(b1.grad(), b2.grad(), 1e-9, 1e-12));
  }

  TEST_CASE("fused rmsnorm equals its composite x / sqrt(mean(x^2) + eps) * w") {
    Tensor t = randn64({3, 8}, 8), wt = randn64({8}, 9);
    Var x1 = Var::leaf(t, true), w1 = Var::leaf(wt, true);
    Var x2 = Var::leaf(t.clone(), true), w2 = Var::leaf(wt.clone(), true);
    Var fused = rmsnorm(x1, w1);
    Var composite = mul(div(x2, sqrt(add_scalar(mean(mul(x2, x2), {-1}, true), 1e-5))), w2);
    CHECK(ops::allclose(fused.data(), composite.data(), 1e-10, 1e-12));
    Tensor r = randn64({3, 8}, 10);
    sum(mul(fused, Var::leaf(r))).backward();
    sum(mul(composite, Var::leaf(r))).backward();
    CHECK(ops::allclose(x1.grad(), x2.grad(), 1e-9, 1e-12));
    CHECK(ops::allclose(w1.grad(), w2.grad(), 1e-9, 1e-12));
  }
}
