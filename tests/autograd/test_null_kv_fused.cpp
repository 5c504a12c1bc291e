// null-kv in the fused kernel (autograd/attention.h): attention_fused_qkv with a null key k0 and value v0 per
// head against the composite of elementary ops (the null key concatenated in front of the real keys, bias 0),
// computed in float64 from the same float32 numbers. Forward, d(qkv), dk0, dv0, with and without a sink logit
// and ALiBi, on one tile, across tile edges and in the kernel's two-pass backward.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/attention.h"
#include "autograd/ops.h"
#include "tensor/attention_kernel.h"
#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {

Tensor random_f32(const Shape& shape, Rng& rng, double gain) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n *= s;
  std::vector<double> x(static_cast<std::size_t>(n));
  for (double& e : x) e = static_cast<float>(rng.normal(0.0, gain));  // float32 values, exact in float64
  return Tensor::from_values(shape, x, DType::F32);
}

// Largest |a - b| / max(1e-3, max |b|): error relative to the reference's scale.
double error_to_scale(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double diff = 0, scale = 1e-3;
  for (std::size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return diff / scale;
}

struct Case {
  std::int64_t B, H, T, D;
  bool tau, alibi;
};

struct Result {
  Tensor y, d_qkv, d_k0, d_v0, d_tau;
};

// The composite: split the heads, put k0 and v0 in front (always visible, bias 0), softmax with the sink column.
Result composite(const Case& c, const Tensor& qkv0, const Tensor& k00, const Tensor& v00, const Tensor& tau0,
                 const std::vector<float>& slopes, const Tensor& w) {
  const std::int64_t B = c.B, H = c.H, T = c.T, D = c.D, C = H * D;
  Var qkv = Var::leaf(qkv0.to(DType::F64), true), k0 = Var::leaf(k00.to(DType::F64), true),
      v0 = Var::leaf(v00.to(DType::F64), true);
  Var tau = c.tau ? Var::leaf(tau0.to(DType::F64), true) : Var();
  auto heads = [&](std::int64_t part) {
    return permute(reshape(slice(qkv, 2, part * C, (part + 1) * C), {B, T, H, D}), {0, 2, 1, 3});
  };
  auto expand = [&](const Var& p) {
    return add(Var::leaf(Tensor::zeros({B, H, 1, D}, DType::F64)), reshape(p, {1, H, 1, D}));
  };
  std::vector<double> bias(static_cast<std::size_t>(H * T * (T + 1)), 0.0);  // column 0: the null key
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < T; ++i)
      for (std::int64_t j = 0; j < T; ++j)
        bias[(h * T + i) * (T + 1) + 1 + j] =
            j > i ? -INFINITY : (slopes.empty() ? 0.0 : -double(slopes[h]) * double(i - j));
  Var y = attention_materialized(heads(0), concat({expand(k0), heads(1)}, 2), concat({expand(v0), heads(2)}, 2),
                                 Tensor::from_values({H, T, T + 1}, bias, DType::F64), tau,
                                 1.0 / std::sqrt(double(D)));
  y = reshape(permute(y, {0, 2, 1, 3}), {B, T, C});
  sum(mul(y, Var::leaf(w.to(DType::F64)))).backward();
  return {y.data(), qkv.grad(), k0.grad(), v0.grad(), c.tau ? tau.grad() : Tensor()};
}

Result fused(const Case& c, const Tensor& qkv0, const Tensor& k00, const Tensor& v00, const Tensor& tau0,
             const std::vector<float>& slopes, const Tensor& w) {
  Var qkv = Var::leaf(qkv0, true), k0 = Var::leaf(k00, true), v0 = Var::leaf(v00, true);
  Var tau = c.tau ? Var::leaf(tau0, true) : Var();
  Var y = attention_fused_qkv(qkv, c.H, tau, slopes, 1.0 / std::sqrt(double(c.D)), k0, v0);
  sum(mul(y, Var::leaf(w))).backward();
  return {y.data(), qkv.grad(), k0.grad(), v0.grad(), c.tau ? tau.grad() : Tensor()};
}

}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("null-kv fused: output, d(qkv), dk0, dv0 equal the composite with the null key in front") {
    const Case cases[] = {
        {2, 3, 5, 4, false, false},    // one tile
        {2, 2, 70, 8, false, false},   // a partial second tile
        {1, 2, 130, 8, true, true},    // three tiles, with a sink logit and ALiBi beside the null key
        {1, 1, 300, 32, false, true},  // one head, enough work for threads: the two-pass backward
    };
    const int saved_threads = max_threads();
    set_num_threads(2);
    for (const Case& c : cases) {
      CAPTURE(c.T);
      Rng rng(static_cast<std::uint64_t>(31 + c.T));
      const std::int64_t C = c.H * c.D;
      const Tensor qkv = random_f32({c.B, c.T, 3 * C}, rng, 1.0), w = random_f32({c.B, c.T, C}, rng, 1.0);
      // a null key large enough to take a real share of each row, a value unlike the others
      const Tensor k0 = random_f32({c.H, c.D}, rng, 2.0), v0 = random_f32({c.H, c.D}, rng, 1.0);
      const Tensor tau = random_f32({c.H, c.T}, rng, 1.0);
      std::vector<float> slopes;
      if (c.alibi)
        for (std::int64_t h = 0; h < c.H; ++h) slopes.push_back(0.05f * float(h + 1));
      const Result f = fused(c, qkv, k0, v0, tau, slopes, w), m = composite(c, qkv, k0, v0, tau, slopes, w);
      REQUIRE(f.d_k0.defined());
      REQUIRE(f.d_v0.defined());
      // float32 against float64 with sums over up to 300 rows: 2e-5 of each tensor's scale
      CHECK(error_to_scale(f.y, m.y) < 2e-5);
      CHECK(error_to_scale(f.d_qkv, m.d_qkv) < 2e-5);
      CHECK(error_to_scale(f.d_k0, m.d_k0) < 2e-5);
      CHECK(error_to_scale(f.d_v0, m.d_v0) < 2e-5);
      if (c.tau) CHECK(error_to_scale(f.d_tau, m.d_tau) < 2e-5);
    }
    set_num_threads(saved_threads);
  }

  TEST_CASE("null-kv fused: a zero null key and value is softmax1, and the thread count does not change a bit") {
    const std::int64_t B = 2, H = 2, T = 200, D = 16, C = H * D;
    Rng rng(5);
    const Tensor qkv = random_f32({B, T, 3 * C}, rng, 1.0), w = random_f32({B, T, C}, rng, 1.0);
    const Tensor zero = Tensor::zeros({H, D});
    const Case c{B, H, T, D, false, false};
    const Result with_null = fused(c, qkv, zero, zero, Tensor(), {}, w);
    // softmax1: a sink logit 0 and value 0 in every row, which is what k0 = v0 = 0 gives
    Var q2 = Var::leaf(qkv, true);
    Var y2 = attention_fused_qkv(q2, H, Var::leaf(Tensor::zeros({H, T})), {}, 1.0 / std::sqrt(double(D)));
    sum(mul(y2, Var::leaf(w))).backward();
    CHECK(error_to_scale(with_null.y, y2.data()) < 1e-6);
    CHECK(error_to_scale(with_null.d_qkv, q2.grad()) < 1e-6);
    const int saved_threads = max_threads();
    Rng rng2(6);
    const Tensor k0 = random_f32({H, D}, rng2, 1.0), v0 = random_f32({H, D}, rng2, 1.0);
    set_num_threads(1);
    const Result one = fused(c, qkv, k0, v0, Tensor(), {}, w);
    set_num_threads(2);
    const Result two = fused(c, qkv, k0, v0, Tensor(), {}, w);
    set_num_threads(saved_threads);
    CHECK(one.y.to_vector() == two.y.to_vector());
    CHECK(one.d_qkv.to_vector() == two.d_qkv.to_vector());
    CHECK(one.d_k0.to_vector() == two.d_k0.to_vector());
    CHECK(one.d_v0.to_vector() == two.d_v0.to_vector());
  }

  TEST_CASE("null-kv fused: a missing, misshapen or non-float32 null key is refused, naming the op") {
    const std::int64_t B = 1, H = 2, T = 4, D = 4, C = H * D;
    Var qkv = Var::leaf(Tensor::zeros({B, T, 3 * C}));
    Var k0 = Var::leaf(Tensor::zeros({H, D})), bad = Var::leaf(Tensor::zeros({H, D + 1}));
    CHECK_THROWS_WITH_AS(attention_fused_qkv(qkv, H, Var(), {}, 1.0, k0, Var()),
                         "attention_fused_qkv: got null_v undefined, expected both null_k and null_v (H, D) = (2, 4) "
                         "float32",
                         Error);
    CHECK_THROWS_WITH_AS(attention_fused_qkv(qkv, H, Var(), {}, 1.0, bad, k0),
                         "attention_fused_qkv: got null_k (2, 5) float32, expected both null_k and null_v (H, D) = "
                         "(2, 4) float32",
                         Error);
    CHECK_THROWS_AS(attention_fused_qkv(qkv, H, Var(), {}, 1.0, Var::leaf(Tensor::zeros({H, D}, DType::F64)), k0),
                    Error);
    // the raw kernels: the materialized ones keep to the tau family, the fused backward needs the gradient arrays
    std::vector<float> z(static_cast<std::size_t>(B * H * T * D)), probs(static_cast<std::size_t>(B * H * T * T)),
        lse(static_cast<std::size_t>(B * H * T)), nk(static_cast<std::size_t>(H * D));
    const attention::Geometry g{B, H, T, D};
    attention::Bias bias{1.0f};
    bias.null_k = nk.data();
    bias.null_v = nk.data();
    CHECK_THROWS_WITH_AS(attention::materialized_forward(g, bias, z.data(), z.data(), z.data(), probs.data(), z.data()),
                         "attention materialized_forward: got a null key and value, expected none (null-kv runs in "
                         "the fused kernel or the autograd composite)",
                         Error);
    std::vector<float> o(z.size()), dq(z.size()), dk(z.size()), dv(z.size());
    CHECK_THROWS_WITH_AS(attention::flash_backward(g, bias, z.data(), z.data(), z.data(), o.data(), lse.data(),
                                                   z.data(), dq.data(), dk.data(), dv.data()),
                         "attention flash_backward: got a null key but no arrays for its gradients, expected d_k and "
                         "d_v (H, D)",
                         Error);
    bias.null_v = nullptr;
    CHECK_THROWS_AS(attention::flash_forward(g, bias, z.data(), z.data(), z.data(), o.data(), lse.data()), Error);
  }
}
