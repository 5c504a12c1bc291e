// NEON (aarch64 Advanced SIMD) pieces of the packed GEMM (tensor/gemm.cpp): the 6x16 micro-kernel and the
// packing routines that need a transpose, the counterparts of gemm_avx2.cpp. Compiled only for aarch64, where
// NEON is always present; gemm.cpp calls them when gradlab::use_neon().
#include <arm_neon.h>

#include <cstdint>

#include "tensor/gemm.h"

namespace gradlab::gemm::detail {

static_assert(kMR == 6 && kNR == 16, "the NEON micro-kernel is written for 6x16 tiles");

namespace {

// C (6,16) with row stride ldc = alpha * op(A) op(B) + beta * C, over kc steps of k.
// A element (r, k) is at A[r*a_rs + k*a_ks]; B row k (16 floats) starts at B + k*b_ks.
// The tile is 24 q registers (6 rows x 4 vectors of 4 floats) of aarch64's 32; each k step loads four B
// vectors and the six A values (one 4-float and one 2-float load when packed), then issues 24 independent
// by-lane FMAs. Every C element gets one fma per k, in k order, as in the AVX2 and the edge kernels.
template <bool kPacked>
void micro_kernel_6x16(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                       float alpha, float beta, float* C, int64_t ldc) {
  if constexpr (kPacked) a_rs = 1, a_ks = 6, b_ks = 16;
  float32x4_t c[6][4];
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) c[r][v] = vdupq_n_f32(0.0f);
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const float32x4_t b0 = vld1q_f32(B), b1 = vld1q_f32(B + 4), b2 = vld1q_f32(B + 8), b3 = vld1q_f32(B + 12);
    if constexpr (kPacked) {
      const float32x4_t a03 = vld1q_f32(A);  // rows 0..3 of column k
      const float32x2_t a45 = vld1_f32(A + 4);
#define GRADLAB_ROW_Q(r, lane)                        \
  c[r][0] = vfmaq_laneq_f32(c[r][0], b0, a03, lane); \
  c[r][1] = vfmaq_laneq_f32(c[r][1], b1, a03, lane); \
  c[r][2] = vfmaq_laneq_f32(c[r][2], b2, a03, lane); \
  c[r][3] = vfmaq_laneq_f32(c[r][3], b3, a03, lane);
#define GRADLAB_ROW_D(r, lane)                       \
  c[r][0] = vfmaq_lane_f32(c[r][0], b0, a45, lane); \
  c[r][1] = vfmaq_lane_f32(c[r][1], b1, a45, lane); \
  c[r][2] = vfmaq_lane_f32(c[r][2], b2, a45, lane); \
  c[r][3] = vfmaq_lane_f32(c[r][3], b3, a45, lane);
      GRADLAB_ROW_Q(0, 0)
      GRADLAB_ROW_Q(1, 1)
      GRADLAB_ROW_Q(2, 2)
      GRADLAB_ROW_Q(3, 3)
      GRADLAB_ROW_D(4, 0)
      GRADLAB_ROW_D(5, 1)
#undef GRADLAB_ROW_Q
#undef GRADLAB_ROW_D
    } else {
#pragma GCC unroll 6
      for (int r = 0; r < 6; ++r) {
        const float a = A[r * a_rs];
        c[r][0] = vfmaq_n_f32(c[r][0], b0, a);
        c[r][1] = vfmaq_n_f32(c[r][1], b1, a);
        c[r][2] = vfmaq_n_f32(c[r][2], b2, a);
        c[r][3] = vfmaq_n_f32(c[r][3], b3, a);
      }
    }
    A += a_ks;
    B += b_ks;
  }
  // C = alpha*acc (beta == 0: old C unread), or fma(alpha, acc, beta*C), as the AVX2 kernel rounds it.
  const float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(beta);
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    float* crow = C + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      if (beta == 0.0f)
        vst1q_f32(crow + 4 * v, vmulq_f32(va, c[r][v]));
      else
        vst1q_f32(crow + 4 * v, vfmaq_f32(vmulq_f32(vb, vld1q_f32(crow + 4 * v)), va, c[r][v]));
    }
  }
}

// The bottom edge: only the first R < 6 rows (nothing past them is read or written), with the same
// operations per element as the full kernel, so edges change no result bits.
template <int R>
void micro_kernel_rows(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                       float alpha, float beta, float* C, int64_t ldc) {
  float32x4_t c[R][4];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) c[r][v] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < kc; ++k) {
    const float32x4_t b0 = vld1q_f32(B), b1 = vld1q_f32(B + 4), b2 = vld1q_f32(B + 8), b3 = vld1q_f32(B + 12);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const float a = A[r * a_rs];
      c[r][0] = vfmaq_n_f32(c[r][0], b0, a);
      c[r][1] = vfmaq_n_f32(c[r][1], b1, a);
      c[r][2] = vfmaq_n_f32(c[r][2], b2, a);
      c[r][3] = vfmaq_n_f32(c[r][3], b3, a);
    }
    A += a_ks;
    B += b_ks;
  }
  const float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(beta);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    float* crow = C + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      if (beta == 0.0f)
        vst1q_f32(crow + 4 * v, vmulq_f32(va, c[r][v]));
      else
        vst1q_f32(crow + 4 * v, vfmaq_f32(vmulq_f32(vb, vld1q_f32(crow + 4 * v)), va, c[r][v]));
    }
  }
}

// In-register transpose of a 4x4 block: r[i] holds row i on entry, column i on exit.
inline void transpose4x4(float32x4_t r[4]) {
  const float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);  // (r0[0] r1[0] r0[2] r1[2]), ...
  const float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
  auto lo = [](float32x4_t a, float32x4_t b) {  // the low halves of a and b
    return vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(a), vreinterpretq_f64_f32(b)));
  };
  auto hi = [](float32x4_t a, float32x4_t b) {
    return vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(a), vreinterpretq_f64_f32(b)));
  };
  r[0] = lo(t0, t2);
  r[1] = lo(t1, t3);
  r[2] = hi(t0, t2);
  r[3] = hi(t1, t3);
}

}  // namespace

// B stored (N,K) (the x*W^T form): Bp (kc,16) gets Bp[k*16 + c] = B[(j0+c)*ldb + p0 + k], zero past nr.
// Four 4x4 blocks per 4 steps of k: 4 stored rows x 4 floats loaded, transposed in registers, stored.
void pack_b_trans_neon(const float* B, int64_t ldb, int64_t j0, int64_t nr, int64_t p0, int64_t kc, float* Bp) {
  const float* base = B + j0 * ldb + p0;
  int64_t k0 = 0;
  if (nr == kNR) {
    for (; k0 + 4 <= kc; k0 += 4) {
      for (int64_t q = 0; q < 4; ++q) {
        float32x4_t r[4];
        for (int i = 0; i < 4; ++i) r[i] = vld1q_f32(base + (q * 4 + i) * ldb + k0);
        transpose4x4(r);
        for (int t = 0; t < 4; ++t) vst1q_f32(Bp + (k0 + t) * kNR + q * 4, r[t]);
      }
    }
  }
  for (int64_t k = k0; k < kc; ++k)
    for (int64_t c = 0; c < kNR; ++c) Bp[k * kNR + c] = c < nr ? base[c * ldb + k] : 0.0f;
}

// A stored (K,M) (the TN form): Ap (kc,6) gets Ap[k*6 + r] = A[(p0+k)*lda + i0 + r], zero past mr.
// Six contiguous floats per k: one 4-float and one 2-float move (never reading past the row).
void pack_a_trans_neon(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap) {
  const float* base = A + p0 * lda + i0;
  if (mr == kMR) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = base + k * lda;
      float* dst = Ap + k * kMR;
      vst1q_f32(dst, vld1q_f32(src));
      vst1_f32(dst + 4, vld1_f32(src + 4));
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t r = 0; r < kMR; ++r) Ap[k * kMR + r] = r < mr ? base[k * lda + r] : 0.0f;
}

// A stored (M,K) (the NN and NT forms): Ap (kc,6) gets Ap[k*6 + r] = A[(i0+r)*lda + p0 + k], zero past mr.
// Per 4 steps of k: rows 0..3 as a 4x4 transpose, rows 4 and 5 interleaved in pairs (zip).
void pack_a_notrans_neon(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap) {
  const float* base = A + i0 * lda + p0;
  int64_t k0 = 0;
  if (mr == kMR) {
    for (; k0 + 4 <= kc; k0 += 4) {
      float32x4_t r[4];
      for (int i = 0; i < 4; ++i) r[i] = vld1q_f32(base + i * lda + k0);
      transpose4x4(r);
      const float32x4_t r4 = vld1q_f32(base + 4 * lda + k0), r5 = vld1q_f32(base + 5 * lda + k0);
      const float32x4_t z01 = vzip1q_f32(r4, r5), z23 = vzip2q_f32(r4, r5);  // (r4[k] r5[k]) pairs
      float* dst = Ap + k0 * kMR;
      vst1q_f32(dst + 0 * kMR, r[0]);
      vst1_f32(dst + 0 * kMR + 4, vget_low_f32(z01));
      vst1q_f32(dst + 1 * kMR, r[1]);
      vst1_f32(dst + 1 * kMR + 4, vget_high_f32(z01));
      vst1q_f32(dst + 2 * kMR, r[2]);
      vst1_f32(dst + 2 * kMR + 4, vget_low_f32(z23));
      vst1q_f32(dst + 3 * kMR, r[3]);
      vst1_f32(dst + 3 * kMR + 4, vget_high_f32(z23));
    }
  }
  for (int64_t k = k0; k < kc; ++k)
    for (int64_t r = 0; r < kMR; ++r) Ap[k * kMR + r] = r < mr ? base[r * lda + k] : 0.0f;
}

// The entry point: mr (1..6) rows of the tile are computed and written.
void micro_kernel_neon(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                       float alpha, float beta, float* C, int64_t ldc, int64_t mr) {
  if (mr == 6) {
    if (a_rs == 1 && a_ks == 6 && b_ks == 16)
      micro_kernel_6x16<true>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
    else
      micro_kernel_6x16<false>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
    return;
  }
  switch (mr) {
    case 5: micro_kernel_rows<5>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc); break;
    case 4: micro_kernel_rows<4>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc); break;
    case 3: micro_kernel_rows<3>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc); break;
    case 2: micro_kernel_rows<2>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc); break;
    default: micro_kernel_rows<1>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc); break;
  }
}

}  // namespace gradlab::gemm::detail
