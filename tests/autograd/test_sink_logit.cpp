// The differentiable sink logit tau (autograd/attention.h, learned-sink): dL/dtau against central differences
// and against the closed form -sum_b P_sink * D (docs/sink_remedies.md#the-gradient-of-tau), and the fused ops'
// dtau against the materialized composite's.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/attention.h"
#include "autograd/ops.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {

Tensor random_tensor(const Shape& shape, Rng& rng, DType dtype, double gain = 1.0) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n *= s;
  std::vector<double> x(static_cast<std::size_t>(n));
  for (double& e : x) e = rng.normal(0.0, gain);
  return Tensor::from_values(shape, x, dtype);
}

Tensor causal_bias(std::int64_t H, std::int64_t T, DType dtype) {
  std::vector<double> b(static_cast<std::size_t>(H * T * T));
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < T; ++i)
      for (std::int64_t j = 0; j < T; ++j) b[(h * T + i) * T + j] = j > i ? -INFINITY : 0.0;
  return Tensor::from_values({H, T, T}, b, dtype);
}

struct Problem {
  std::int64_t B = 2, H = 3, T = 5, D = 4;
  Tensor q, k, v, w, tau;  // w: the weights of the scalar loss sum(out * w)
};

Problem make(DType dtype, std::uint64_t seed) {
  Problem p;
  Rng rng(seed);
  p.q = random_tensor({p.B, p.H, p.T, p.D}, rng, dtype, 1.5);
  p.k = random_tensor({p.B, p.H, p.T, p.D}, rng, dtype);
  p.v = random_tensor({p.B, p.H, p.T, p.D}, rng, dtype);
  p.w = random_tensor({p.B, p.H, p.T, p.D}, rng, dtype);
  p.tau = random_tensor({p.H, p.T}, rng, dtype);
  // one row of head 1 with no sink at all: its gradient must be exactly 0
  Tensor t = p.tau.to(DType::F64);
  std::vector<double> tv = t.to_vector();
  tv[1 * p.T + 2] = -INFINITY;
  p.tau = Tensor::from_values({p.H, p.T}, tv, dtype);
  return p;
}

double loss_materialized(const Problem& p, const Tensor& tau) {
  NoGrad ng;
  Var out = attention_materialized(Var::leaf(p.q), Var::leaf(p.k), Var::leaf(p.v), causal_bias(p.H, p.T, p.q.dtype()),
                                   Var::leaf(tau), 1.0 / std::sqrt(double(p.D)));
  return sum(mul(out, Var::leaf(p.w))).item();
}

}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("sink logit: dL/dtau of the materialized path equals central differences and -sum_b P_sink * D") {
    const Problem p = make(DType::F64, 21);
    Var tau = Var::leaf(p.tau, true);
    Var out = attention_materialized(Var::leaf(p.q), Var::leaf(p.k), Var::leaf(p.v), causal_bias(p.H, p.T, DType::F64),
                                     tau, 1.0 / std::sqrt(double(p.D)));
    sum(mul(out, Var::leaf(p.w))).backward();
    REQUIRE(tau.grad().defined());
    REQUIRE(tau.grad().shape() == Shape{p.H, p.T});
    const std::vector<double> g = tau.grad().to_vector();
    // the closed form: P_sink = e^tau / (sum_j<=i e^a_ij + e^tau), D = dO . O with dO = w
    const std::vector<double> q = p.q.to_vector(), k = p.k.to_vector(), o = out.data().to_vector(),
                              w = p.w.to_vector(), t = p.tau.to_vector();
    const double eps = 1e-6, scale = 1.0 / std::sqrt(double(p.D));
    double worst_fd = 0, worst_formula = 0, largest = 0;
    for (std::int64_t h = 0; h < p.H; ++h)
      for (std::int64_t i = 0; i < p.T; ++i) {
        const std::int64_t hi = h * p.T + i;
        double want = 0;
        for (std::int64_t b = 0; b < p.B; ++b) {
          const std::int64_t row = ((b * p.H + h) * p.T + i) * p.D;
          double z = std::exp(t[hi]), D = 0;
          for (std::int64_t j = 0; j <= i; ++j) {
            double a = 0;
            for (std::int64_t d = 0; d < p.D; ++d) a += q[row + d] * k[((b * p.H + h) * p.T + j) * p.D + d];
            z += std::exp(a * scale);
          }
          for (std::int64_t d = 0; d < p.D; ++d) D += w[row + d] * o[row + d];
          want -= std::exp(t[hi]) / z * D;
        }
        worst_formula = std::max(worst_formula, std::abs(g[hi] - want));
        largest = std::max(largest, std::abs(g[hi]));
        if (std::isinf(t[hi])) {
          CHECK(g[hi] == 0.0);
          continue;
        }
        std::vector<double> up = t, down = t;
        up[hi] += eps;
        down[hi] -= eps;
        const double numeric = (loss_materialized(p, Tensor::from_values({p.H, p.T}, up, DType::F64)) -
                                loss_materialized(p, Tensor::from_values({p.H, p.T}, down, DType::F64))) /
                               (2 * eps);
        worst_fd = std::max(worst_fd, std::abs(g[hi] - numeric) / (1e-8 + 1e-6 * std::abs(numeric)));
      }
    CHECK(largest > 1e-3);        // the gradient is not trivially zero
    CHECK(worst_fd <= 1.0);       // rtol 1e-6, atol 1e-8 (eps 1e-6 in float64: ~1e-10 truncation and rounding)
    CHECK(worst_formula < 1e-12);  // the same quantity computed two ways in float64
  }

  TEST_CASE("sink logit: the fused ops' dtau, dq, dk, dv equal the materialized composite's (float32)") {
    const Problem p = make(DType::F32, 22);
    const double scale = 1.0 / std::sqrt(double(p.D));
    auto run = [&](bool fused, Tensor& d_tau, Tensor& d_q, Tensor& y) {
      Var q = Var::leaf(p.q, true), k = Var::leaf(p.k, true), v = Var::leaf(p.v, true), tau = Var::leaf(p.tau, true);
      Var out = fused ? attention_fused(q, k, v, tau, {}, scale)
                      : attention_materialized(q, k, v, causal_bias(p.H, p.T, DType::F32), tau, scale);
      sum(mul(out, Var::leaf(p.w))).backward();
      d_tau = tau.grad();
      d_q = q.grad();
      y = out.data();
    };
    Tensor ft, fq, fy, mt, mq, my;
    run(true, ft, fq, fy);
    run(false, mt, mq, my);
    REQUIRE(ft.defined());
    CHECK(ops::max_abs_diff(fy, my) < 1e-5);
    CHECK(ops::max_abs_diff(fq, mq) < 1e-5);
    CHECK(ops::max_abs_diff(ft, mt) < 1e-5);
    CHECK(ft.to_vector()[1 * p.T + 2] == 0.0f);  // the row without a sink

    // attention_fused_qkv on the same numbers packed as (B,T,3C): the same dtau bits
    const std::int64_t C = p.H * p.D;
    std::vector<double> packed(static_cast<std::size_t>(p.B * p.T * 3 * C)), wp(static_cast<std::size_t>(p.B * p.T * C));
    const std::vector<double> qv = p.q.to_vector(), kv = p.k.to_vector(), vv = p.v.to_vector(), wv = p.w.to_vector();
    for (std::int64_t b = 0; b < p.B; ++b)
      for (std::int64_t h = 0; h < p.H; ++h)
        for (std::int64_t t = 0; t < p.T; ++t)
          for (std::int64_t d = 0; d < p.D; ++d) {
            const std::int64_t src = ((b * p.H + h) * p.T + t) * p.D + d, row = (b * p.T + t);
            packed[row * 3 * C + h * p.D + d] = qv[src];
            packed[row * 3 * C + C + h * p.D + d] = kv[src];
            packed[row * 3 * C + 2 * C + h * p.D + d] = vv[src];
            wp[row * C + h * p.D + d] = wv[src];
          }
    Var qkv = Var::leaf(Tensor::from_values({p.B, p.T, 3 * C}, packed, DType::F32), true);
    Var tau = Var::leaf(p.tau, true);
    Var y = attention_fused_qkv(qkv, p.H, tau, {}, scale);
    sum(mul(y, Var::leaf(Tensor::from_values({p.B, p.T, C}, wp, DType::F32)))).backward();
    REQUIRE(tau.grad().defined());
    CHECK(ops::max_abs_diff(tau.grad(), ft) < 1e-6);
  }

  TEST_CASE("sink logit: a tau of the wrong shape or dtype is refused, naming the op") {
    const Problem p = make(DType::F32, 23);
    Var q = Var::leaf(p.q), k = Var::leaf(p.k), v = Var::leaf(p.v);
    CHECK_THROWS_WITH_AS(attention_materialized(q, k, v, causal_bias(p.H, p.T, DType::F32),
                                                Var::leaf(Tensor::zeros({p.H, p.T}, DType::F64)), 1.0),
                         "attention: got tau in float64, expected q's float32", Error);
    CHECK_THROWS_WITH_AS(attention_fused(q, k, v, Var::leaf(Tensor::zeros({p.H, p.T + 1})), {}, 1.0),
                         "attention_fused: got tau (3, 6), expected (H, T) = (3, 5)", Error);
  }
}
