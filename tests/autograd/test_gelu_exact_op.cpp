// Chapter 2: the exact (erf) GELU op. Central differences in float64 (gradcheck's rtol 1e-5, atol 1e-8), over
// standard normals and over inputs out in the tails (|x| up to 6, where Phi and phi are tiny); the float32 op
// (the kernels) against the float64 op (std::erf); a non-contiguous input.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {
Tensor values64(const Shape& shape, std::uint64_t seed, double spread) {
  Rng rng(seed);
  std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) x = spread * rng.normal();
  return Tensor::from_values(shape, v, DType::F64);
}
void expect_ok(const GradcheckResult& r) {
  INFO(r.report);
  INFO("worst |analytic - numeric| / tolerance = " << r.worst_ratio);
  CHECK(r.ok);
}
}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("gradcheck gelu_exact (float64, rtol 1e-5): standard normals and the tails") {
    expect_ok(gradcheck([](auto& v) { return gelu_exact(v[0]); }, {values64({3, 4}, 21, 1.0)}));
    expect_ok(gradcheck([](auto& v) { return gelu_exact(v[0]); }, {values64({4, 5}, 22, 3.0)}));
    // composed with itself, so the backward sees an output gradient that is not the projection r
    expect_ok(gradcheck([](auto& v) { return gelu_exact(gelu_exact(v[0]) * 2.0); }, {values64({6}, 23, 1.5)}));
  }

  TEST_CASE("gelu_exact: float32 op equals the float64 op within float rounding, forward and backward") {
    Tensor x64 = values64({16, 37}, 24, 2.0), g64 = values64({16, 37}, 25, 1.0);
    Tensor x32 = x64.to(DType::F32), g32 = g64.to(DType::F32);
    Var a64 = Var::leaf(x64.to(DType::F32).to(DType::F64), true), a32 = Var::leaf(x32, true);
    Var y64 = gelu_exact(a64), y32 = gelu_exact(a32);
    sum(mul(y64, Var::leaf(g32.to(DType::F64)))).backward();
    sum(mul(y32, Var::leaf(g32))).backward();
    auto yv = y32.data().to_vector(), yr = y64.data().to_vector(), xv = x32.to_vector();
    auto dv = a32.grad().to_vector(), dr = a64.grad().to_vector(), gv = g32.to_vector();
    for (std::size_t i = 0; i < yv.size(); ++i) {
      const double scale = std::max(1.0, std::abs(xv[i]));
      CHECK(std::abs(yv[i] - yr[i]) <= 2e-7 * scale);
      CHECK(std::abs(dv[i] - dr[i]) <= 4e-7 * scale * std::abs(gv[i]) + 1e-12);
    }
    // and the op is not the tanh GELU: the two differ by up to ~4.7e-4
    CHECK(ops::max_abs_diff(gelu(Var::leaf(x32)).data(), y32.data()) > 1e-4);
  }

  TEST_CASE("gelu_exact on a transposed (non-contiguous) input equals the op on a contiguous copy") {
    Tensor x = values64({5, 7}, 26, 2.0).to(DType::F32);
    Tensor xt = x.transpose(0, 1);
    REQUIRE_FALSE(xt.is_contiguous());
    Var a = Var::leaf(xt, true), b = Var::leaf(xt.contiguous(), true);
    Var ya = gelu_exact(a), yb = gelu_exact(b);
    CHECK(ops::max_abs_diff(ya.data(), yb.data()) == 0.0);
    sum(ya).backward();
    sum(yb).backward();
    CHECK(ops::max_abs_diff(a.grad(), b.grad()) == 0.0);
  }
}
