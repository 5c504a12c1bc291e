// Chapter 2: every differentiable op checked against central differences in float64.
// Tolerance: rtol 1e-5 (atol 1e-8) unless a case says why not. Inputs are moved off kinks (relu at 0,
// max ties, sqrt/log near 0).
#include <doctest/doctest.h>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {
Tensor randn64(const Shape& shape, std::uint64_t seed, double lo_abs = 0.0) {
  Rng rng(seed);
  std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) {
    x = rng.normal();
    if (lo_abs > 0 && std::abs(x) < lo_abs) x = x < 0 ? -lo_abs - 0.1 : lo_abs + 0.1;  // off the kink
  }
  return Tensor::from_values(shape, v, DType::F64);
}
Tensor positive64(const Shape& shape, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) x = rng.uniform(0.5, 2.0);
  return Tensor::from_values(shape, v, DType::F64);
}
void expect_ok(const GradcheckResult& r) {
  INFO(r.report);
  INFO("worst |analytic - numeric| / tolerance = " << r.worst_ratio);
  CHECK(r.ok);
}
using Fn = std::function<Var(const std::vector<Var>&)>;
}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("gradcheck add (broadcast)") {
    expect_ok(gradcheck([](auto& v) { return add(v[0], v[1]); }, {randn64({2, 3}, 1), randn64({3}, 2)}));
  }
  TEST_CASE("gradcheck sub (broadcast)") {
    expect_ok(gradcheck([](auto& v) { return sub(v[0], v[1]); }, {randn64({2, 1, 3}, 3), randn64({4, 1}, 4)}));
  }
  TEST_CASE("gradcheck mul (broadcast)") {
    expect_ok(gradcheck([](auto& v) { return mul(v[0], v[1]); }, {randn64({2, 3}, 5), randn64({2, 1}, 6)}));
  }
  TEST_CASE("gradcheck div (broadcast)") {
    expect_ok(gradcheck([](auto& v) { return div(v[0], v[1]); }, {randn64({2, 3}, 7), positive64({3}, 8)}));
  }
  TEST_CASE("gradcheck neg and scalar forms") {
    expect_ok(gradcheck([](auto& v) { return neg(v[0]) * 3.0 + 2.0; }, {randn64({4}, 9)}));
  }
  TEST_CASE("gradcheck exp") { expect_ok(gradcheck([](auto& v) { return exp(v[0]); }, {randn64({3, 2}, 10)})); }
  TEST_CASE("gradcheck log") { expect_ok(gradcheck([](auto& v) { return log(v[0]); }, {positive64({3, 2}, 11)})); }
  TEST_CASE("gradcheck pow") {
    expect_ok(gradcheck([](auto& v) { return pow(v[0], 3.0); }, {randn64({5}, 12)}));
    expect_ok(gradcheck([](auto& v) { return pow(v[0], -0.5); }, {positive64({5}, 13)}));
  }
  TEST_CASE("gradcheck sqrt") { expect_ok(gradcheck([](auto& v) { return sqrt(v[0]); }, {positive64({4}, 14)})); }
  TEST_CASE("gradcheck tanh") { expect_ok(gradcheck([](auto& v) { return tanh(v[0]); }, {randn64({2, 4}, 15)})); }
  TEST_CASE("gradcheck sigmoid") {
    expect_ok(gradcheck([](auto& v) { return sigmoid(v[0]); }, {randn64({2, 4}, 16)}));
  }
  TEST_CASE("gradcheck relu (inputs kept 0.1 away from the kink)") {
    expect_ok(gradcheck([](auto& v) { return relu(v[0]); }, {randn64({3, 3}, 17, 0.1)}));
  }
  TEST_CASE("gradcheck gelu") { expect_ok(gradcheck([](auto& v) { return gelu(v[0]); }, {randn64({3, 3}, 18)})); }
  TEST_CASE("gradcheck sum over axes") {
    expect_ok(gradcheck([](auto& v) { return sum(v[0], {0, 2}); }, {randn64({2, 3, 4}, 19)}));
    expect_ok(gradcheck([](auto& v) { return sum(v[0], {1}, true); }, {randn64({2, 3}, 20)}));
    expect_ok(gradcheck([](auto& v) { return sum(v[0]); }, {randn64({2, 3}, 21)}));
  }
  TEST_CASE("gradcheck mean") {
    expect_ok(gradcheck([](auto& v) { return mean(v[0], {-1}); }, {randn64({3, 4}, 22)}));
  }
  TEST_CASE("gradcheck max (no ties)") {
    expect_ok(gradcheck([](auto& v) { return max(v[0], 1); }, {randn64({3, 5}, 23)}));
    expect_ok(gradcheck([](auto& v) { return max(v[0], 0, true); }, {randn64({3, 5}, 24)}));
  }
  TEST_CASE("gradcheck matmul (2-d / batched / broadcast batch)") {
    expect_ok(gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {randn64({3, 4}, 25), randn64({4, 2}, 26)}));
    expect_ok(gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {randn64({2, 3, 4}, 27), randn64({2, 4, 5}, 28)}));
    expect_ok(gradcheck([](auto& v) { return matmul(v[0], v[1]); }, {randn64({2, 3, 4}, 29), randn64({4, 2}, 30)}));
    expect_ok(gradcheck([](auto& v) { return matmul(v[0], transpose(v[1], 0, 1)); },
                        {randn64({3, 4}, 31), randn64({5, 4}, 32)}));
  }
  TEST_CASE("gradcheck reshape") {
    expect_ok(gradcheck([](auto& v) { return reshape(v[0], {3, -1}) * 2.0; }, {randn64({2, 3, 2}, 33)}));
  }
  TEST_CASE("gradcheck transpose") {
    expect_ok(gradcheck([](auto& v) { return transpose(v[0], 0, 2); }, {randn64({2, 3, 4}, 34)}));
  }
  TEST_CASE("gradcheck permute") {
    expect_ok(gradcheck([](auto& v) { return permute(v[0], {1, 2, 0}); }, {randn64({2, 3, 4}, 35)}));
  }
  TEST_CASE("gradcheck slice") {
    expect_ok(gradcheck([](auto& v) { return slice(v[0], 1, 1, 3); }, {randn64({2, 4}, 36)}));
  }
  TEST_CASE("gradcheck concat") {
    expect_ok(gradcheck([](auto& v) { return concat({v[0], v[1]}, -1); }, {randn64({2, 2}, 37), randn64({2, 3}, 38)}));
  }
  TEST_CASE("gradcheck split") {
    expect_ok(gradcheck(
        [](auto& v) {
          auto parts = split(v[0], {1, 3}, 1);
          return mul(parts[0], sum(parts[1], {1}, true));
        },
        {randn64({2, 4}, 39)}));
  }
  TEST_CASE("gradcheck embedding (a repeated id accumulates)") {
    expect_ok(gradcheck([](auto& v) { return embedding(v[0], {1, 0, 1, 3}, 2, 2); }, {randn64({4, 3}, 40)}));
  }
  TEST_CASE("gradcheck softmax") {
    expect_ok(gradcheck([](auto& v) { return softmax(v[0]); }, {randn64({3, 5}, 41)}));
  }
  TEST_CASE("gradcheck log_softmax") {
    expect_ok(gradcheck([](auto& v) { return log_softmax(v[0]); }, {randn64({3, 5}, 42)}));
  }
  TEST_CASE("gradcheck cross_entropy (with an ignored row)") {
    expect_ok(gradcheck([](auto& v) { return cross_entropy(v[0], {2, -1, 0, 4}); }, {randn64({4, 5}, 43)}));
    expect_ok(gradcheck([](auto& v) { return cross_entropy(v[0], {1, 2, 0, 0, 3, 1}); }, {randn64({2, 3, 4}, 44)}));
  }
  TEST_CASE("gradcheck layernorm") {
    expect_ok(gradcheck([](auto& v) { return layernorm(v[0], v[1], v[2]); },
                        {randn64({2, 3, 6}, 45), randn64({6}, 46), randn64({6}, 47)}));
    expect_ok(gradcheck([](auto& v) { return layernorm(v[0], v[1], Var()); }, {randn64({4, 5}, 48), randn64({5}, 49)}));
  }
  TEST_CASE("gradcheck rmsnorm") {
    expect_ok(gradcheck([](auto& v) { return rmsnorm(v[0], v[1]); }, {randn64({3, 6}, 50), randn64({6}, 51)}));
  }
  TEST_CASE("gradcheck dropout (fixed mask from a fixed seed)") {
    expect_ok(gradcheck(
        [](auto& v) {
          Rng rng(5);  // same mask on every evaluation
          return dropout(v[0], 0.3, rng, true);
        },
        {randn64({4, 4}, 52)}));
  }
  TEST_CASE("gradcheck detects a wrong gradient") {
    // y = x^2 with a deliberately wrong backward (g instead of 2 x g): the checker must fail, or the checks
    // above prove nothing.
    Fn wrong = [](const std::vector<Var>& v) {
      return make_result(ops::mul(v[0].data(), v[0].data()), "square_wrong", {v[0]},
                         [](std::vector<Var>& in, const Tensor& g) { in[0].add_grad(g); });
    };
    GradcheckResult r = gradcheck(wrong, {randn64({3}, 53)});
    CHECK_FALSE(r.ok);
    CHECK(r.worst_ratio > 100);
  }
}
