// rope_qkv (autograd/attention.h): rotary position embedding applied in place of the packed (B,T,3C) qkv, so a
// RoPE model keeps the fused attention path. Checked against central differences (float64), against the
// composite reference built from elementary ops (split, permute, slice, concat, neg, mul, add: the oracle;
// every attention path of the GPT rotates with rope_qkv itself), across thread counts, by RoPE's defining property (scores depend only on
// relative position), inside the GPT (fused path against the materialized one), and on bad input.
#include <doctest/doctest.h>

#include "compare.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/attention.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "nn/gpt.h"
#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype) {
  Rng rng(seed);
  std::vector<double> x(static_cast<std::size_t>(shape_numel(shape)));
  for (double& e : x) e = rng.normal(0.0, 1.0);
  return Tensor::from_values(shape, x, dtype);
}

// The naive reference: rotate-half RoPE on (B,H,T,D) heads, from elementary ops, at positions first..first+T-1.
Var rope_heads_reference(const Var& x, std::int64_t first) {
  // x is (B,H,T,D) -> (B,H,T,D):  x * cos + [-x2, x1] * sin
  const std::int64_t T = x.size(2), D = x.size(3), half = D / 2;
  std::vector<double> c(static_cast<std::size_t>(T * D)), s(static_cast<std::size_t>(T * D));
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t i = 0; i < half; ++i) {
      const double angle =
          static_cast<double>(first + t) * std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(D));
      c[t * D + i] = c[t * D + i + half] = std::cos(angle);
      s[t * D + i] = s[t * D + i + half] = std::sin(angle);
    }
  Var cos_t = Var::leaf(Tensor::from_values({T, D}, c, x.dtype()));
  Var sin_t = Var::leaf(Tensor::from_values({T, D}, s, x.dtype()));
  Var rotated = concat({neg(slice(x, -1, half, D)), slice(x, -1, 0, half)}, -1);
  return add(mul(x, cos_t), mul(rotated, sin_t));
}

// The reference on packed qkv: split, (B,T,H,D) -> (B,H,T,D), rotate q and k, and back to (B,T,3C).
Var rope_qkv_reference(const Var& qkv, std::int64_t H, std::int64_t first) {
  // qkv is (B,T,3C) -> (B,T,3C)
  const std::int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, D = C / H;
  auto parts = split(qkv, {C, C, C}, -1);
  auto heads = [&](const Var& t) { return permute(reshape(t, {B, T, H, D}), {0, 2, 1, 3}); };
  auto packed = [&](const Var& t) { return reshape(permute(t, {0, 2, 1, 3}), {B, T, C}); };
  Var q = packed(rope_heads_reference(heads(parts[0]), first));
  Var k = packed(rope_heads_reference(heads(parts[1]), first));
  return concat({q, k, parts[2]}, -1);
}

struct Result {
  Tensor out, d_qkv;
};

Result run(bool fused, const Tensor& qkv_data, std::int64_t H, std::int64_t first, const Tensor& g) {
  Var qkv = Var::leaf(qkv_data.clone(), true);
  Var out = fused ? rope_qkv(qkv, H, first) : rope_qkv_reference(qkv, H, first);
  out.backward(g);
  return {out.data().contiguous(), qkv.grad().contiguous()};
}

// The message of the Error that f throws ("" when it throws nothing).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

GPTConfig rope_config(const std::string& mask) {
  GPTConfig c;
  c.vocab_size = 11;
  c.block_size = 16;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.mask = mask;
  c.pos = PosKind::Rope;
  return c;
}

}  // namespace

TEST_SUITE("attention") {
  // Tolerance: the gradcheck defaults, rtol 1e-5 / atol 1e-8 at eps 1e-6 (autograd/gradcheck.h). The op is
  // linear in qkv, so central differences are exact up to rounding (~1e-10 here).
  TEST_CASE("gradcheck rope_qkv (float64): several shapes and first positions, non-contiguous input") {
    struct Case {
      Shape shape;
      std::int64_t H, first;
    };
    for (const Case& c : {Case{{2, 3, 6}, 1, 0}, Case{{2, 5, 24}, 2, 0}, Case{{1, 4, 36}, 3, 9},
                          Case{{3, 2, 48}, 2, 1000}}) {
      CAPTURE(shape_str(c.shape));
      CAPTURE(c.first);
      GradcheckResult r = gradcheck([&](auto& v) { return rope_qkv(v[0], c.H, c.first); },
                                    {random_tensor(c.shape, 1 + c.first, DType::F64)});
      INFO(r.report);
      CHECK(r.ok);
    }
    // qkv as the transpose of a (B, 3C, T) tensor: strides (3C*T, 1, T)
    GradcheckResult r = gradcheck([](auto& v) { return rope_qkv(transpose(v[0], 1, 2), 2, 3); },
                                  {random_tensor({2, 24, 5}, 7, DType::F64)});
    INFO(r.report);
    CHECK(r.ok);
  }

  TEST_CASE("rope_qkv equals the composite reference bit for bit (float32 and float64, forward and d(qkv))") {
    // Both compute out1 = x1*cos - x2*sin and out2 = x2*cos + x1*sin from the same rounded cos and sin, one
    // rounding per product and per sum, so the bits agree exactly (the backward likewise).
    struct Case {
      Shape shape;
      std::int64_t H, first;
    };
    for (DType dtype : {DType::F32, DType::F64})
      for (const Case& c : {Case{{2, 7, 24}, 2, 0}, Case{{1, 5, 12}, 1, 3}, Case{{3, 9, 48}, 4, 57},
                            Case{{2, 4, 96}, 2, 100000}}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(shape_str(c.shape));
        CAPTURE(c.first);
        Tensor qkv = random_tensor(c.shape, 11 + c.first, dtype);
        Tensor g = random_tensor(c.shape, 12 + c.first, dtype);
        Result fused = run(true, qkv, c.H, c.first, g), reference = run(false, qkv, c.H, c.first, g);
        CHECK(fused.out.dtype() == dtype);
        CHECK(fused.out.shape() == c.shape);
        CHECK_MESSAGE(ops::max_abs_diff(fused.out, reference.out) == 0.0, "rope_qkv's output differs from the composite ",
                      "apply_rope by up to ", ops::max_abs_diff(fused.out, reference.out),
                      ", expected 0 (both use one cos/sin table of angle p * 10000^(-2i/D))");
        CHECK_MESSAGE(ops::max_abs_diff(fused.d_qkv, reference.d_qkv) == 0.0, "rope_qkv's d(qkv) differs from the ",
                      "composite's by up to ", ops::max_abs_diff(fused.d_qkv, reference.d_qkv), ", expected 0");
      }
  }

  TEST_CASE("rope_qkv: v is copied, position 0 leaves q and k alone, and the rotation keeps each pair's norm") {
    const std::int64_t B = 2, T = 6, H = 2, D = 8, C = H * D;
    Tensor qkv = random_tensor({B, T, 3 * C}, 21, DType::F64);
    NoGrad guard;
    Tensor out = rope_qkv(Var::leaf(qkv), H, 0).data();
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < T; ++t)
        for (std::int64_t col = 0; col < 3 * C; ++col) {
          if (col >= 2 * C || t == 0) {
            CHECK(out.at({b, t, col}) == qkv.at({b, t, col}));  // v, and the angle-0 row, unchanged
            continue;
          }
          if (col % D >= D / 2) continue;
          // (x1_i, x2_i) -> rotated pair: the same length
          const double x1 = qkv.at({b, t, col}), x2 = qkv.at({b, t, col + D / 2});
          const double o1 = out.at({b, t, col}), o2 = out.at({b, t, col + D / 2});
          CHECK(o1 * o1 + o2 * o2 == doctest::Approx(x1 * x1 + x2 * x2).epsilon(1e-12));
        }
  }

  TEST_CASE("rope_qkv: q . k depends only on the distance between the positions (RoPE's defining property)") {
    // Shifting every position by 37 changes each rotated q and k but none of their dot products.
    const std::int64_t T = 8, H = 2, D = 6, C = H * D;
    Tensor qkv = random_tensor({1, T, 3 * C}, 31, DType::F64);
    NoGrad guard;
    Tensor a = rope_qkv(Var::leaf(qkv), H, 0).data(), b = rope_qkv(Var::leaf(qkv), H, 37).data();
    double worst = 0, moved = 0;
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < T; ++i)
        for (std::int64_t j = 0; j < T; ++j) {
          double dot_a = 0, dot_b = 0;
          for (std::int64_t d = 0; d < D; ++d) {
            dot_a += a.at({0, i, h * D + d}) * a.at({0, j, C + h * D + d});
            dot_b += b.at({0, i, h * D + d}) * b.at({0, j, C + h * D + d});
            moved = std::max(moved, std::abs(a.at({0, i, h * D + d}) - b.at({0, i, h * D + d})));
          }
          worst = std::max(worst, std::abs(dot_a - dot_b));
        }
    CHECK(moved > 0.1);     // the shift did rotate the vectors
    CHECK(worst < 1e-12);  // float64 rounding of O(1) dot products
  }

  TEST_CASE("rope_qkv: the same bits on 1 and 2 threads") {
    // 4 * 64 * 192 = 49152 elements: above kParallelMinElements, so the rows are split when 2 threads exist
    const int saved = max_threads();
    Tensor qkv = random_tensor({4, 64, 192}, 41, DType::F32), g = random_tensor({4, 64, 192}, 42, DType::F32);
    set_num_threads(1);
    Result one = run(true, qkv, 4, 5, g);
    set_num_threads(2);
    Result two = run(true, qkv, 4, 5, g);
    set_num_threads(saved);
    CHECK(ops::max_abs_diff(one.out, two.out) == 0.0);
    CHECK(ops::max_abs_diff(one.d_qkv, two.d_qkv) == 0.0);
  }

  TEST_CASE("rope_qkv + attention_fused_qkv equals the old RoPE path (split, permute, rope, attention_fused) bit for bit") {
    // What the GPT's fused branch computed for RoPE before rope_qkv existed, against what it computes now.
    const std::int64_t B = 2, T = 11, H = 2, D = 8, C = H * D, first = 6;
    const double scale = 1.0 / std::sqrt(double(D));
    Tensor qkv_data = random_tensor({B, T, 3 * C}, 51, DType::F32), g = random_tensor({B, T, C}, 52, DType::F32);
    Var qkv_new = Var::leaf(qkv_data.clone(), true), qkv_old = Var::leaf(qkv_data.clone(), true);
    Var y_new = attention_fused_qkv(rope_qkv(qkv_new, H, first), H, Tensor(), {}, scale);
    auto parts = split(qkv_old, {C, C, C}, -1);
    auto heads = [&](const Var& t) { return permute(reshape(t, {B, T, H, D}), {0, 2, 1, 3}); };
    Var y_heads = attention_fused(rope_heads_reference(heads(parts[0]), first),
                                  rope_heads_reference(heads(parts[1]), first), heads(parts[2]), Tensor(), {}, scale);
    Var y_old = reshape(permute(y_heads, {0, 2, 1, 3}), {B, T, C});
    y_new.backward(g);
    y_old.backward(g);
    CHECK(ops::max_abs_diff(y_new.data(), y_old.data()) == 0.0);
    CHECK(ops::max_abs_diff(qkv_new.grad(), qkv_old.grad()) == 0.0);
  }

  TEST_CASE("RoPE GPT: the fused attention path equals the materialized one (float32, both masks, shifted positions)") {
    // fused: rope_qkv + the flash kernel on qkv; materialized: rope_qkv, split/permute, the T x T softmax.
    // Measured worst difference over logits and all gradients (|a - b| / max(1, |b|)): 8.9e-8 (float32
    // summation order in the attention); bound 1e-6, about 10x that.
    const std::int64_t B = 2, T = 9;
    std::vector<std::int32_t> idx, tgt;
    Rng rng(5);
    for (std::int64_t i = 0; i < B * T; ++i) {
      idx.push_back(static_cast<std::int32_t>(rng.below(11)));
      tgt.push_back(static_cast<std::int32_t>(rng.below(11)));
    }
    double worst = 0;
    for (const std::string& mask : strategy_names())
      for (std::int64_t first : {0, 4, 30}) {  // 30 puts every row past block_size 16
        CAPTURE(mask);
        CAPTURE(first);
        GPT a(rope_config(mask), 5), b(rope_config(mask), 5);
        ForwardOptions fused, materialized;
        fused.first_position = materialized.first_position = first;
        materialized.fused_attention = false;
        Var logits_a = a.forward(idx, B, T, fused), logits_b = b.forward(idx, B, T, materialized);
        const double d_logits = testing::worst_scaled_error(logits_a.data(), logits_b.data());
        CHECK(d_logits < 1e-6);
        worst = std::max(worst, d_logits);
        a.loss(logits_a, tgt).backward();
        b.loss(logits_b, tgt).backward();
        auto pa = a.named_parameters(), pb = b.named_parameters();
        REQUIRE(pa.size() == pb.size());
        for (std::size_t i = 0; i < pa.size(); ++i) {
          INFO(pa[i].first);
          REQUIRE(pa[i].second.grad().defined());
          const double d = testing::worst_scaled_error(pa[i].second.grad(), pb[i].second.grad());
          CHECK(d < 1e-6);
          worst = std::max(worst, d);
        }
      }
    MESSAGE("worst fused vs materialized difference (RoPE GPT): " << worst);
  }

  TEST_CASE("rope_qkv rejects bad input with an Error that names the op") {
    Var ok = Var::leaf(Tensor::zeros({2, 3, 24}));
    CHECK_NOTHROW(rope_qkv(ok, 2, 0));
    const std::string rank = error_of([] { rope_qkv(Var::leaf(Tensor::zeros({3, 24})), 2, 0); });
    CHECK(rank.find("rope_qkv") != std::string::npos);
    CHECK(rank.find("(3, 24)") != std::string::npos);
    const std::string not3 = error_of([] { rope_qkv(Var::leaf(Tensor::zeros({2, 3, 25})), 1, 0); });
    CHECK(not3.find("rope_qkv") != std::string::npos);
    CHECK(not3.find("(2, 3, 25)") != std::string::npos);
    const std::string heads = error_of([&] { rope_qkv(ok, 3, 0); });  // C = 8 is not a multiple of 3
    CHECK(heads.find("rope_qkv") != std::string::npos);
    CHECK(heads.find("n_head = 3") != std::string::npos);
    CHECK(error_of([&] { rope_qkv(ok, 0, 0); }).find("rope_qkv") != std::string::npos);
    const std::string odd = error_of([] { rope_qkv(Var::leaf(Tensor::zeros({1, 2, 18})), 2, 0); });  // D = 3
    CHECK(odd.find("rope_qkv") != std::string::npos);
    CHECK(odd.find("even") != std::string::npos);
    const std::string negative = error_of([&] { rope_qkv(ok, 2, -1); });
    CHECK(negative.find("rope_qkv") != std::string::npos);
    CHECK(negative.find("-1") != std::string::npos);
  }
}
