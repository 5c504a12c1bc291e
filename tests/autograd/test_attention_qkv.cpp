// attention_fused_qkv (autograd/attention.h): the fused attention that reads q, k, v straight out of c_attn's
// (B,T,3C) output and writes (B,T,C), against the split/permute path through attention_fused (same bits) and
// against the materialized kernel (same values), forward and d(qkv); and the strided kernel views under it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/attention.h"
#include "autograd/ops.h"
#include "nn/stablemask.h"
#include "tensor/attention_kernel.h"
#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/rng.h"
#include "simd_check.h"

using namespace gradlab;

namespace {

enum class Mask { Causal, StableConstant, StableAlibiGamma };

std::string mask_name(Mask m) {
  return m == Mask::Causal ? "causal" : m == Mask::StableConstant ? "stablemask gamma 0.5" : "stablemask alibi gammas";
}

Tensor random_tensor(const Shape& shape, Rng& rng, double gain = 1.0) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n *= s;
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& e : x) e = float(rng.normal(0.0, gain));
  return Tensor::from_floats(shape, x);
}

// One problem: qkv (B,T,3C), the upstream gradient (B,T,C), the sink table and the ALiBi slopes.
struct Problem {
  std::int64_t B, T, H, C;
  Tensor qkv, d_y, tau;
  std::vector<float> slopes;
  double scale;
};

Problem make_problem(std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t D, Mask mask, bool alibi,
                     std::int64_t block_size, std::uint64_t seed) {
  Problem p{B, T, H, H * D, {}, {}, {}, {}, 1.0 / std::sqrt(double(D))};
  Rng rng(seed);
  // q gets a larger gain (first C columns): sharper attention exercises the online softmax's rescaling
  Tensor qkv = random_tensor({B, T, 3 * p.C}, rng);
  float* x = qkv.data<float>();
  for (std::int64_t row = 0; row < B * T; ++row)
    for (std::int64_t c = 0; c < p.C; ++c) x[row * 3 * p.C + c] *= 1.5f;
  p.qkv = qkv;
  p.d_y = random_tensor({B, T, p.C}, rng);
  if (alibi)
    for (double s : alibi_slopes(H)) p.slopes.push_back(float(s));
  if (mask != Mask::Causal) {
    const std::vector<double> gammas =
        mask == Mask::StableConstant ? std::vector<double>(static_cast<std::size_t>(H), 0.5) : alibi_slopes(H);
    p.tau = Tensor::empty({H, T});
    stablemask_tau_table(gammas, block_size, T, 0, StableMaskTail::Finite, p.tau.data<float>());
  }
  return p;
}

struct Result {
  Tensor y, d_qkv;  // both contiguous
};

// The op under test.
Result run_qkv(const Problem& p) {
  Var qkv = Var::leaf(p.qkv.clone(), true);
  Var y = attention_fused_qkv(qkv, p.H, p.tau, p.slopes, p.scale);
  y.backward(p.d_y);
  return {y.data().contiguous(), qkv.grad().contiguous()};
}

// Today's path without the fused qkv op: split, (B,T,H,D) -> (B,H,T,D), an attention, and back to (B,T,C).
// fused: attention_fused; otherwise attention_materialized with the explicit causal / ALiBi bias table.
Result run_split(const Problem& p, bool fused) {
  const std::int64_t B = p.B, T = p.T, H = p.H, C = p.C, D = C / H;
  Var qkv = Var::leaf(p.qkv.clone(), true);
  auto parts = split(qkv, {C, C, C}, -1);
  auto heads = [&](const Var& t) { return permute(reshape(t, {B, T, H, D}), {0, 2, 1, 3}); };
  Var att;
  if (fused) {
    att = attention_fused(heads(parts[0]), heads(parts[1]), heads(parts[2]), p.tau, p.slopes, p.scale);
  } else {
    std::vector<double> bias(static_cast<std::size_t>(H * T * T));
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < T; ++i)
        for (std::int64_t j = 0; j < T; ++j)
          bias[(h * T + i) * T + j] = j > i ? -std::numeric_limits<double>::infinity()
                                            : (p.slopes.empty() ? 0.0 : -double(p.slopes[h]) * double(i - j));
    att = attention_materialized(heads(parts[0]), heads(parts[1]), heads(parts[2]),
                                 Tensor::from_values({H, T, T}, bias), p.tau, p.scale);
  }
  Var y = reshape(permute(att, {0, 2, 1, 3}), {B, T, C});
  y.backward(p.d_y);
  return {y.data().contiguous(), qkv.grad().contiguous()};
}

// Number of elements whose bits (as floats, so -0 == +0) differ, and the largest |a - b| / (1 + |b|).
struct Diff {
  std::int64_t n_different = 0;
  double max_rel = 0.0;
};
Diff compare(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  Diff d;
  const float *x = a.data<float>(), *y = b.data<float>();
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    if (!(x[i] == y[i])) ++d.n_different;  // a NaN counts as different
    const double rel = std::abs(double(x[i]) - double(y[i])) / (1.0 + std::abs(double(y[i])));
    d.max_rel = std::max(d.max_rel, std::isnan(rel) ? std::numeric_limits<double>::infinity() : rel);
  }
  return d;
}

}  // namespace

TEST_SUITE("attention") {

TEST_CASE("attention_fused_qkv equals split/permute + attention_fused (bits) and the materialized path (values)") {
  struct Shape4 {
    std::int64_t B, T, H, D;
  };
  // T < block_size, T = 1, T not a multiple of the 64 tile, more than one tile; one and four heads; B > 1
  const Shape4 shapes[] = {{2, 1, 4, 8}, {3, 7, 4, 8}, {2, 65, 1, 16}, {2, 130, 4, 8}, {1, 64, 4, 16}};
  const std::int64_t block_size = 130;
  std::uint64_t seed = 100;
  for (const Shape4& s : shapes)
    for (Mask mask : {Mask::Causal, Mask::StableConstant, Mask::StableAlibiGamma})
      for (bool alibi : {false, true}) {
        CAPTURE(s.B);
        CAPTURE(s.T);
        CAPTURE(s.H);
        CAPTURE(s.D);
        CAPTURE(mask_name(mask));
        CAPTURE(alibi);
        const Problem p = make_problem(s.B, s.T, s.H, s.D, mask, alibi, block_size, ++seed);
        const Result got = run_qkv(p);
        const Result split_fused = run_split(p, true);
        const Result materialized = run_split(p, false);
        CHECK(got.y.shape() == Shape{s.B, s.T, s.H * s.D});
        CHECK(got.d_qkv.shape() == p.qkv.shape());
        // the same kernel arithmetic on other addresses: identical bits, output and every gradient element
        CHECK(compare(got.y, split_fused.y).n_different == 0);
        CHECK(compare(got.d_qkv, split_fused.d_qkv).n_different == 0);
        // the materialized kernel rounds differently
        CHECK(compare(got.y, materialized.y).max_rel < 2e-5);
        CHECK(compare(got.d_qkv, materialized.d_qkv).max_rel < 2e-5);
      }
}

TEST_CASE("attention_fused_qkv is bit-identical on 1 and 2 threads, per-head and per-tile backward") {
  const int saved = max_threads();
  struct Case {
    std::int64_t B, T, H, D;
  };
  // big enough for the kernels to use both threads; B*H = 8 splits the backward by head, B*H = 1 and 3 by tile
  const Case cases[] = {{2, 130, 4, 32}, {1, 260, 1, 64}, {3, 200, 1, 32}};
  for (const Case& c : cases) {
    CAPTURE(c.B);
    CAPTURE(c.T);
    CAPTURE(c.H);
    const Problem p = make_problem(c.B, c.T, c.H, c.D, Mask::StableAlibiGamma, true, 256, 7 + c.T);
    set_num_threads(1);
    const Result one = run_qkv(p);
    set_num_threads(2);
    const Result two = run_qkv(p);
    const Result split_two = run_split(p, true);
    set_num_threads(saved);
    CHECK(compare(one.y, two.y).n_different == 0);
    CHECK(compare(one.d_qkv, two.d_qkv).n_different == 0);
    CHECK(compare(two.y, split_two.y).n_different == 0);
    CHECK(compare(two.d_qkv, split_two.d_qkv).n_different == 0);
  }
}

TEST_CASE("strided flash backward writes every element of a packed (B,T,3C) gradient exactly as the contiguous one") {
  // The op needs no zero-fill because the three packed views cover all 3C columns: fill the buffer with NaN
  // first, and every element must come out equal to the contiguous kernel's gradient. On two threads the
  // second geometry takes the two-pass backward (dK, dV by key tile, then dQ by query tile).
  using namespace gradlab::attention;
  const int saved = max_threads();
  set_num_threads(2);
  for (const Geometry& g : {Geometry{2, 3, 70, 8}, Geometry{1, 3, 200, 32}}) {
    CAPTURE(g.B);
    CAPTURE(g.T);
    const std::int64_t C = g.H * g.D, rows = g.B * g.T;
    Rng rng(5);
    Tensor qkv = random_tensor({g.B, g.T, 3 * C}, rng), d_y = random_tensor({g.B, g.T, C}, rng);
    std::vector<float> tau(static_cast<std::size_t>(g.H * g.T));
    stablemask_tau_table(alibi_slopes(g.H), 64, g.T, 0, StableMaskTail::Finite, tau.data());
    const Bias bias{float(1.0 / std::sqrt(double(g.D))), tau.data(), nullptr};
    const attention::Strides packed3 = packed_strides(g, 3 * C), packed1 = packed_strides(g, C);
    const float* base = qkv.data<float>();
    std::vector<float> y(static_cast<std::size_t>(rows * C)), lse(static_cast<std::size_t>(g.B * g.H * g.T));
    std::vector<float> d_qkv(static_cast<std::size_t>(rows * 3 * C), std::numeric_limits<float>::quiet_NaN());
    flash_forward(g, bias, {base, packed3}, {base + C, packed3}, {base + 2 * C, packed3}, {y.data(), packed1},
                  lse.data());
    flash_backward(g, bias, {base, packed3}, {base + C, packed3}, {base + 2 * C, packed3}, {y.data(), packed1},
                   lse.data(), {d_y.data<float>(), packed1}, {d_qkv.data(), packed3}, {d_qkv.data() + C, packed3},
                   {d_qkv.data() + 2 * C, packed3});
    // the same problem in contiguous (B,H,T,D) arrays through the pointer API
    const std::int64_t n = g.B * g.H * g.T * g.D;
    std::vector<float> q(n), k(n), v(n), d_o(n), o(n), lse2(lse.size()), dq(n), dk(n), dv(n);
    auto gather = [&](const float* src, std::int64_t width, std::int64_t column0, std::vector<float>& dst) {
      for (std::int64_t b = 0; b < g.B; ++b)
        for (std::int64_t h = 0; h < g.H; ++h)
          for (std::int64_t t = 0; t < g.T; ++t)
            for (std::int64_t d = 0; d < g.D; ++d)
              dst[((b * g.H + h) * g.T + t) * g.D + d] = src[(b * g.T + t) * width + column0 + h * g.D + d];
    };
    gather(base, 3 * C, 0, q);
    gather(base, 3 * C, C, k);
    gather(base, 3 * C, 2 * C, v);
    gather(d_y.data<float>(), C, 0, d_o);
    flash_forward(g, bias, q.data(), k.data(), v.data(), o.data(), lse2.data());
    flash_backward(g, bias, q.data(), k.data(), v.data(), o.data(), lse2.data(), d_o.data(), dq.data(), dk.data(),
                   dv.data());
    CHECK(lse == lse2);
    std::vector<float> y_back(n), dq_back(n), dk_back(n), dv_back(n);
    gather(y.data(), C, 0, y_back);
    gather(d_qkv.data(), 3 * C, 0, dq_back);
    gather(d_qkv.data(), 3 * C, C, dk_back);
    gather(d_qkv.data(), 3 * C, 2 * C, dv_back);
    CHECK(y_back == o);
    CHECK(dq_back == dq);
    CHECK(dk_back == dk);
    CHECK(dv_back == dv);
    CHECK(std::none_of(d_qkv.begin(), d_qkv.end(), [](float e) { return std::isnan(e); }));
  }
  set_num_threads(saved);
}

TEST_CASE("attention_fused_qkv and the strided kernel reject bad input") {
  Rng rng(3);
  const Tensor none;
  Var qkv = Var::leaf(random_tensor({2, 5, 24}, rng), true);  // C = 8
  CHECK_NOTHROW(attention_fused_qkv(qkv, 4, none, {}, 0.5));
  // not (B,T,3C)
  CHECK_THROWS_AS(attention_fused_qkv(Var::leaf(random_tensor({10, 24}, rng)), 4, none, {}, 0.5), Error);
  CHECK_THROWS_AS(attention_fused_qkv(Var::leaf(random_tensor({2, 5, 25}, rng)), 1, none, {}, 0.5), Error);
  // C = 8 is not divisible by 3 heads; no heads at all
  CHECK_THROWS_AS(attention_fused_qkv(qkv, 3, none, {}, 0.5), Error);
  CHECK_THROWS_AS(attention_fused_qkv(qkv, 0, none, {}, 0.5), Error);
  // tau must be (H, T) = (4, 5); four slopes
  CHECK_THROWS_AS(attention_fused_qkv(qkv, 4, Tensor::zeros({4, 6}), {}, 0.5), Error);
  CHECK_THROWS_AS(attention_fused_qkv(qkv, 4, Tensor::zeros({5}), {}, 0.5), Error);
  CHECK_THROWS_AS(attention_fused_qkv(qkv, 4, none, {0.5f, 0.25f}, 0.5), Error);
  // float32 only
  CHECK_THROWS_AS(attention_fused_qkv(Var::leaf(Tensor::zeros({2, 5, 24}, DType::F64)), 4, none, {}, 0.5), Error);
  // the message names the op and the shapes
  try {
    attention_fused_qkv(qkv, 3, none, {}, 0.5);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("attention_fused_qkv") != std::string::npos);
    CHECK(what.find("(2, 5, 24)") != std::string::npos);
  }

  // kernel level: overlapping rows, negative strides, null data
  using namespace gradlab::attention;
  const Geometry g{1, 2, 4, 4};
  std::vector<float> buf(1000, 0.0f), lse(8);
  const Bias bias{0.5f};
  const attention::Strides good = contiguous_strides(g);
  const attention::Strides overlapping{32, 4, 4};  // head h row t and head h+1 row t-1 share memory
  const attention::Strides negative{32, -16, 4};
  const ConstView in{buf.data(), good};
  CHECK_NOTHROW(flash_forward(g, bias, in, in, in, {buf.data() + 100, good}, lse.data()));
  CHECK_THROWS_AS(flash_forward(g, bias, in, in, in, {buf.data() + 100, overlapping}, lse.data()), Error);
  CHECK_THROWS_AS(flash_forward(g, bias, {buf.data(), negative}, in, in, {buf.data() + 100, good}, lse.data()), Error);
  CHECK_THROWS_AS(flash_forward(g, bias, {nullptr, good}, in, in, {buf.data() + 100, good}, lse.data()), Error);
  CHECK_THROWS_AS(flash_backward(g, bias, in, in, in, in, lse.data(), in, {buf.data() + 100, good},
                                 {buf.data() + 200, overlapping}, {buf.data() + 300, good}),
                  Error);
}

TEST_CASE("attention tile transpose: SIMD blocks (AVX2 8x8 or NEON 4x4) and portable loops equal the definition (ragged edges)") {
  using namespace gradlab::attention;
  Rng rng(11);
  for (std::int64_t n : {1, 5, 8, 13, 64, 70})
    for (std::int64_t D : {1, 7, 8, 16, 33, 64}) {
      CAPTURE(n);
      CAPTURE(D);
      const std::int64_t lds = 3 * D + 5, ldd = 64 + 8;  // strided source rows, padded destination rows
      std::vector<float> src(static_cast<std::size_t>(n * lds));
      for (float& e : src) e = float(rng.normal(0.0, 1.0));
      std::vector<float> expected(static_cast<std::size_t>(D * ldd), -7.0f);
      for (std::int64_t d = 0; d < D; ++d)
        for (std::int64_t c = 0; c < n; ++c) expected[d * ldd + c] = src[c * lds + d];
      std::vector<float> got(expected.size(), -7.0f);  // untouched padding must stay -7
      detail::transpose_portable(src.data(), lds, n, D, got.data(), ldd);
      CHECK(got == expected);
#ifdef GRADLAB_HAVE_SIMD_KERNELS
      if (use_simd()) {
        std::vector<float> got_simd(expected.size(), -7.0f);
        detail::GRADLAB_SIMD(transpose)(src.data(), lds, n, D, got_simd.data(), ldd);
        CHECK(got_simd == expected);
      }
#endif
    }
  if (simd_in_use()) report_simd_validated("attention tile transpose");
}

}  // TEST_SUITE
