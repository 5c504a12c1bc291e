// Rotary position embedding as one op on c_attn's packed (B,T,3C) output: q and k rotated per head, v copied.
// It replaces split, permute, slice, concat, neg, mul and add (the composite that tests/autograd/test_rope_qkv.cpp
// keeps as its oracle) and keeps the heads where attention_fused_qkv reads them. Every attention path (fused,
// KV-cached, materialized, float64) rotates with this op.
//
// Per head, with x = [x1, x2] (two halves of D/2) and the angle of frequency i at position p
//   angle(p, i) = p * 10000^(-2i/D)                      (computed in double, then rounded to the dtype)
//   out1 = x1 * cos - x2 * sin
//   out2 = x2 * cos + x1 * sin                            i.e. out = x * cos + rotate_half(x) * sin
// The map is a rotation of each (x1_i, x2_i) pair, so the backward is the inverse rotation (angle -> -angle).
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "autograd/attention.h"
#include "tensor/threads.h"

namespace gradlab {

namespace {

// cos and sin of angle(first + t, i) for t < T, i < D/2: (T, D/2) each, row-major. Built once per call and
// shared by every batch row, head, and q and k; the backward keeps it.
template <typename S>
struct RopeTable {
  std::vector<S> cos, sin;
};

template <typename S>
std::shared_ptr<const RopeTable<S>> rope_table(std::int64_t T, std::int64_t D, std::int64_t first) {
  // exercise 10.1 begin: RoPE's cos/sin table, angle(p, i) = p * 10000^(-2i/D)
  // cos, sin are (T, D/2); the same double expressions as the composite oracle, so float32 rounds to the same values
  const std::int64_t half = D / 2;
  auto table = std::make_shared<RopeTable<S>>();
  table->cos.resize(static_cast<std::size_t>(T * half));
  table->sin.resize(static_cast<std::size_t>(T * half));
  for (std::int64_t i = 0; i < half; ++i) {
    const double theta = std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(D));
    for (std::int64_t t = 0; t < T; ++t) {
      const double angle = static_cast<double>(first + t) * theta;
      table->cos[static_cast<std::size_t>(t * half + i)] = static_cast<S>(std::cos(angle));
      table->sin[static_cast<std::size_t>(t * half + i)] = static_cast<S>(std::sin(angle));
    }
  }
  return table;
  // exercise 10.1 end
}

// The geometry of one call: B*T rows of 3C values, H heads of D in each of q, k, v.
struct RopeGeometry {
  std::int64_t B, T, H, D;
  std::int64_t C() const { return H * D; }
};

// Rows [r0, r1) of the (B*T, 3C) arrays, forward (inverse = false) or backward (inverse = true). Each output
// element is written by exactly one row, so any split of the rows over threads gives the same bits.
//   forward:   out1 = x1 * cos - x2 * sin        out2 = x2 * cos + x1 * sin        out_v = x_v
//   backward:  dx1  = g1 * cos + g2 * sin        dx2  = g2 * cos - g1 * sin        dx_v  = g_v
// The backward of a rotation is the rotation by -angle, i.e. the same loop with sin negated (exact in floating
// point, so both directions keep the bits of the lines above).
template <typename S>
void rotate_rows(const RopeGeometry& geo, const RopeTable<S>& table, bool inverse, const S* in, S* out,
                 std::int64_t r0, std::int64_t r1) {
  // in, out are (B*T, 3C): q at columns [0, C), k at [C, 2C), v at [2C, 3C)
  const std::int64_t C = geo.C(), D = geo.D, half = D / 2, row_size = 3 * C;
  const S sign = inverse ? S(-1) : S(1);
  for (std::int64_t r = r0; r < r1; ++r) {
    const std::int64_t t = r % geo.T;
    const S* cos_t = table.cos.data() + t * half;
    const S* sin_t = table.sin.data() + t * half;
    const S* in_row = in + r * row_size;
    S* out_row = out + r * row_size;
    // q and k: 2H heads of D side by side in columns [0, 2C)
    for (std::int64_t head = 0; head < 2 * geo.H; ++head) {
      const S* x1 = in_row + head * D;
      const S* x2 = x1 + half;
      S* out1 = out_row + head * D;
      S* out2 = out1 + half;
      for (std::int64_t i = 0; i < half; ++i) {
        const S sin_i = sign * sin_t[i];
        out1[i] = x1[i] * cos_t[i] - x2[i] * sin_i;
        out2[i] = x2[i] * cos_t[i] + x1[i] * sin_i;
      }
    }
    // v: passed through unchanged
    std::copy(in_row + 2 * C, in_row + 3 * C, out_row + 2 * C);
  }
}

// in, out are (B,T,3C) contiguous of dtype S; rows split over the worker pool
template <typename S, bool backward>
void rope_apply(const RopeGeometry& geo, const RopeTable<S>& table, const Tensor& in, Tensor& out) {
  const S* pin = in.data<S>();
  S* pout = out.data<S>();
  parallel_ranges(geo.B * geo.T, 3 * geo.C(), [&](std::int64_t r0, std::int64_t r1) {
    rotate_rows<S>(geo, table, backward, pin, pout, r0, r1);
  });
}

template <typename S>
Var rope_qkv_typed(const Var& qkv_in, const RopeGeometry& geo, std::int64_t first_position) {
  // qkv is (B,T,3C) -> out (B,T,3C), q and k rotated, v copied
  auto table = rope_table<S>(geo.T, geo.D, first_position);
  Tensor qkv = qkv_in.data().contiguous();
  Tensor out = Tensor::empty(qkv.shape(), qkv.dtype());
  rope_apply<S, false>(geo, *table, qkv, out);
  return make_result(out, "rope_qkv", {qkv_in}, [geo, table](std::vector<Var>& in, const Tensor& g_in) {
    // d_qkv is (B,T,3C): the inverse rotation of g on q and k, g itself on v
    if (!in[0].requires_grad()) return;
    Tensor g = g_in.contiguous();
    Tensor d_qkv = Tensor::empty(g.shape(), g.dtype());
    rope_apply<S, true>(geo, *table, g, d_qkv);
    in[0].add_grad(d_qkv);
  });
}

}  // namespace

Var rope_qkv(const Var& qkv, std::int64_t n_head, std::int64_t first_position) {
  // qkv is (B,T,3C) -> (B,T,3C)
  if (qkv.dim() != 3 || qkv.size(2) % 3 != 0)
    throw_error("rope_qkv: got qkv ", shape_str(qkv.shape()), ", expected (B,T,3C) (q, k, v side by side)");
  const std::int64_t C = qkv.size(2) / 3;
  if (n_head < 1 || C % n_head != 0)
    throw_error("rope_qkv: got n_head = ", n_head, " for qkv ", shape_str(qkv.shape()), " (C = ", C,
                "), expected n_head >= 1 dividing C");
  const std::int64_t D = C / n_head;
  if (D < 2 || D % 2 != 0)
    throw_error("rope_qkv: got head size D = C / n_head = ", C, " / ", n_head, " = ", D,
                ", expected an even head size >= 2 (the rotation pairs column i with i + D/2)");
  if (first_position < 0)
    throw_error("rope_qkv: got first_position ", first_position, ", expected >= 0");
  const RopeGeometry geo{qkv.size(0), qkv.size(1), n_head, D};
  if (qkv.dtype() == DType::F32) return rope_qkv_typed<float>(qkv, geo, first_position);
  return rope_qkv_typed<double>(qkv, geo, first_position);
}

}  // namespace gradlab
