// The fused linear op, y = x W^T + b, against central differences (float64) and against the composite it
// replaces, reshape -> matmul(x, transpose(W)) -> add(b) -> reshape (float32).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {
Tensor randn(const Shape& shape, std::uint64_t seed, DType dtype) {
  Rng rng(seed);
  std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) x = rng.normal();
  return Tensor::from_values(shape, v, dtype);
}

void expect_ok(const GradcheckResult& r) {
  INFO(r.report);
  INFO("worst |analytic - numeric| / tolerance = " << r.worst_ratio);
  CHECK(r.ok);
}

// The composite Linear as nn/gpt.cpp wrote it before the fused op: the reference.
Var linear_composite(const Var& x, const Var& w, const Var& b) {
  Shape out_shape = x.shape();
  out_shape.back() = w.size(0);
  Var y = matmul(reshape(x, {-1, w.size(1)}), transpose(w, 0, 1));
  if (b.defined()) y = add(y, b);
  return reshape(y, out_shape);
}

// max |a - b| / (1 + max |b|): float32 results of the two paths differ only by rounding (the GEMMs sum in
// other orders), a few ulps of the largest entry.
double scaled_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> va = a.to_vector(), vb = b.to_vector();
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return diff / (1 + scale);
}

// x_data is (..., in) and may be a non-contiguous view. Runs both paths forward and backward with one random
// upstream gradient (not all ones, so a wrong row/column pairing cannot hide) and compares everything.
void compare_with_composite(const Tensor& x_data, std::int64_t out, bool with_bias, std::uint64_t seed) {
  const std::int64_t in = x_data.size(-1);
  const double tol = 1e-5;  // float32: about 100 ulps of the largest entry, far below any indexing error
  Tensor w_data = randn({out, in}, seed + 1, DType::F32), b_data = randn({out}, seed + 2, DType::F32);
  Var x1 = Var::leaf(x_data, true), w1 = Var::leaf(w_data, true), b1 = with_bias ? Var::leaf(b_data, true) : Var();
  Var x2 = Var::leaf(x_data, true), w2 = Var::leaf(w_data, true), b2 = with_bias ? Var::leaf(b_data, true) : Var();
  Var y1 = linear(x1, w1, b1), y2 = linear_composite(x2, w2, b2);
  CHECK(y1.op() == "linear");
  REQUIRE(y1.shape() == y2.shape());
  CHECK(scaled_diff(y1.data(), y2.data()) < tol);
  Tensor g = randn(y1.shape(), seed + 3, DType::F32);
  y1.backward(g);
  y2.backward(g);
  CHECK(x1.grad().shape() == x_data.shape());
  CHECK(scaled_diff(x1.grad(), x2.grad()) < tol);
  CHECK(scaled_diff(w1.grad(), w2.grad()) < tol);
  if (with_bias) CHECK(scaled_diff(b1.grad(), b2.grad()) < tol);
}
}  // namespace

TEST_SUITE("autograd") {
  // Tolerance: the gradcheck defaults, rtol 1e-5 / atol 1e-8 at eps 1e-6 (see autograd/gradcheck.h); the op is
  // bilinear, so central differences are exact up to rounding.
  TEST_CASE("gradcheck linear: 2-D x, with and without bias") {
    expect_ok(gradcheck([](auto& v) { return linear(v[0], v[1], v[2]); },
                        {randn({7, 5}, 1, DType::F64), randn({3, 5}, 2, DType::F64), randn({3}, 3, DType::F64)}));
    expect_ok(gradcheck([](auto& v) { return linear(v[0], v[1]); },
                        {randn({4, 6}, 4, DType::F64), randn({5, 6}, 5, DType::F64)}));
  }
  TEST_CASE("gradcheck linear: 3-D and 1-D x") {
    expect_ok(gradcheck([](auto& v) { return linear(v[0], v[1], v[2]); },
                        {randn({2, 3, 4}, 6, DType::F64), randn({5, 4}, 7, DType::F64), randn({5}, 8, DType::F64)}));
    expect_ok(gradcheck([](auto& v) { return linear(v[0], v[1]); },
                        {randn({2, 3, 4}, 9, DType::F64), randn({2, 4}, 10, DType::F64)}));
    expect_ok(gradcheck([](auto& v) { return linear(v[0], v[1], v[2]); },
                        {randn({4}, 11, DType::F64), randn({3, 4}, 12, DType::F64), randn({3}, 13, DType::F64)}));
  }
  TEST_CASE("gradcheck linear: non-contiguous x") {
    // x is the transpose of a (5, 7) tensor: (7, 5) with strides (1, 7)
    expect_ok(gradcheck([](auto& v) { return linear(transpose(v[0], 0, 1), v[1], v[2]); },
                        {randn({5, 7}, 14, DType::F64), randn({3, 5}, 15, DType::F64), randn({3}, 16, DType::F64)}));
  }

  TEST_CASE("linear float32 equals the composite (values and the three gradients)") {
    // shapes that are not multiples of the 6x16 micro-tile, and one deeper than a packed panel (K > 256)
    compare_with_composite(randn({7, 5}, 20, DType::F32), 3, true, 21);
    compare_with_composite(randn({7, 5}, 22, DType::F32), 3, false, 23);
    compare_with_composite(randn({2, 13, 37}, 24, DType::F32), 19, true, 25);
    compare_with_composite(randn({50, 300}, 26, DType::F32), 40, true, 27);
    compare_with_composite(randn({64, 48}, 28, DType::F32), 96, true, 29);  // tile multiples too
    compare_with_composite(randn({9}, 30, DType::F32), 4, true, 31);        // 1-D x
  }
  TEST_CASE("linear float32 equals the composite for a non-contiguous x") {
    compare_with_composite(randn({5, 7}, 40, DType::F32).transpose(0, 1), 3, true, 41);
    compare_with_composite(randn({6, 2, 11}, 42, DType::F32).permute({1, 0, 2}), 13, true, 43);
    compare_with_composite(randn({4, 20}, 44, DType::F32).narrow(1, 3, 9), 5, false, 45);  // row stride 20
  }
  TEST_CASE("linear computes only the gradients that are asked for") {
    Var x = Var::leaf(randn({4, 3}, 50, DType::F32), false);
    Var w = Var::leaf(randn({2, 3}, 51, DType::F32), true);
    Var b = Var::leaf(randn({2}, 52, DType::F32), false);
    Var x_ref = Var::leaf(x.data(), false), w_ref = Var::leaf(w.data(), true), b_ref = Var::leaf(b.data(), false);
    Tensor g = randn({4, 2}, 53, DType::F32);
    linear(x, w, b).backward(g);
    linear_composite(x_ref, w_ref, b_ref).backward(g);
    CHECK_FALSE(x.grad().defined());
    CHECK_FALSE(b.grad().defined());
    CHECK(scaled_diff(w.grad(), w_ref.grad()) < 1e-5);
    // nothing requires a gradient: no graph is recorded
    CHECK_FALSE(linear(x, Var::leaf(w.data()), b).requires_grad());
  }
  TEST_CASE("linear bias gradient is the column sum of dy in float64") {
    // db_j = sum_i dy_ij, checked against a plain double loop over a tall dy
    Var x = Var::leaf(randn({300, 2}, 60, DType::F64), false);
    Var w = Var::leaf(randn({3, 2}, 61, DType::F64), false);
    Var b = Var::leaf(randn({3}, 62, DType::F64), true);
    Tensor g = randn({300, 3}, 63, DType::F64);
    linear(x, w, b).backward(g);
    for (std::int64_t j = 0; j < 3; ++j) {
      double s = 0;
      for (std::int64_t i = 0; i < 300; ++i) s += g.at({i, j});
      CHECK(b.grad().at({j}) == doctest::Approx(s).epsilon(1e-12));
    }
  }
  TEST_CASE("linear rejects bad shapes and dtypes, naming itself") {
    Var x = Var::leaf(Tensor::zeros({2, 3})), w = Var::leaf(Tensor::zeros({4, 3})), b = Var::leaf(Tensor::zeros({4}));
    CHECK_THROWS_WITH_AS(linear(x, Var::leaf(Tensor::zeros({4, 5})), b),
                         "linear: got x (2, 3), weight (4, 5), bias (4,), expected the last dimension of x (3) to "
                         "equal weight's in-features (5)",
                         Error);
    CHECK_THROWS_WITH_AS(linear(x, w, Var::leaf(Tensor::zeros({3}))),
                         "linear: got x (2, 3), weight (4, 3), bias (3,), expected bias (4) to match weight's "
                         "out-features",
                         Error);
    CHECK_THROWS_WITH_AS(linear(x, w, Var::leaf(Tensor::zeros({1, 4}))),
                         "linear: got x (2, 3), weight (4, 3), bias (1, 4), expected bias (4) to match weight's "
                         "out-features",
                         Error);
    CHECK_THROWS_WITH_AS(linear(x, Var::leaf(Tensor::zeros({3}))),
                         "linear: got x (2, 3), weight (3,), expected x (..., in) with at least one dimension and "
                         "weight (out, in)",
                         Error);
    CHECK_THROWS_WITH_AS(linear(Var::leaf(Tensor::scalar(1.0)), w),
                         "linear: got x (), weight (4, 3), expected x (..., in) with at least one dimension and "
                         "weight (out, in)",
                         Error);
    CHECK_THROWS_WITH_AS(linear(x, Var::leaf(Tensor::zeros({4, 3}, DType::F64)), b),
                         "linear: got x float32, weight float64, bias float32, expected one dtype for all", Error);
    CHECK_THROWS_WITH_AS(linear(Var(), w), "linear: got an undefined x, expected x (..., in) and weight (out, in)",
                         Error);
  }
}
