// AVX2+FMA pieces of the packed GEMM (tensor/gemm.cpp): the 6x16 micro-kernel and the packing routines that
// need a transpose. Compiled with -mavx2 -mfma; gemm.cpp calls them only when gradlab::use_avx2().
#include <immintrin.h>

#include <cstdint>

#include "tensor/gemm.h"

namespace gradlab::gemm::detail {

static_assert(kMR == 6 && kNR == 16, "the AVX2 micro-kernel is written for 6x16 tiles");

namespace {

// C (6,16) with row stride ldc = alpha * op(A) op(B) + beta * C, over kc steps of k.
// A element (r, k) is at A[r*a_rs + k*a_ks]; B row k (16 floats) starts at B + k*b_ks.
// Packed operands have a_rs = 1, a_ks = 6, b_ks = 16 (kPacked: the strides are constants); small problems
// read A and B where they are (no packing), with their own strides.
// The 6x16 tile lives in 12 ymm registers for the whole k loop; each k step loads two vectors of B,
// broadcasts six scalars of A and issues 12 independent FMAs (enough to hide the FMA latency on 2 ports).
template <bool kPacked>
void micro_kernel_6x16(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                       float alpha, float beta, float* C, int64_t ldc) {
  if constexpr (kPacked) a_rs = 1, a_ks = 6, b_ks = 16;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  // Ask for the C tile now, so it is in L1 when the k loop ends (each row may straddle two cache lines).
  for (int r = 0; r < 6; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 15), _MM_HINT_T0);
  }
  const float* A0 = A;             // rows 0..2
  const float* A3 = A + 3 * a_rs;  // rows 3..5

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(B);
    const __m256 b1 = _mm256_loadu_ps(B + 8);
    __m256 a;
    a = _mm256_broadcast_ss(A0);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(A0 + a_rs);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(A0 + 2 * a_rs);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(A3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(A3 + a_rs);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(A3 + 2 * a_rs);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    c51 = _mm256_fmadd_ps(a, b1, c51);
    A0 += a_ks;
    A3 += a_ks;
    B += b_ks;
  }

  // C = alpha*acc (beta == 0: old C unread), or fma(alpha, acc, beta*C). beta == 1 gives the same bits
  // as fma(alpha, acc, C), which is how later K blocks accumulate.
  const __m256 va = _mm256_set1_ps(alpha);
  auto store_row = [&](float* crow, __m256 lo, __m256 hi) {
    if (beta == 0.0f) {
      _mm256_storeu_ps(crow, _mm256_mul_ps(va, lo));
      _mm256_storeu_ps(crow + 8, _mm256_mul_ps(va, hi));
    } else {
      const __m256 vb = _mm256_set1_ps(beta);
      _mm256_storeu_ps(crow, _mm256_fmadd_ps(va, lo, _mm256_mul_ps(vb, _mm256_loadu_ps(crow))));
      _mm256_storeu_ps(crow + 8, _mm256_fmadd_ps(va, hi, _mm256_mul_ps(vb, _mm256_loadu_ps(crow + 8))));
    }
  };
  store_row(C + 0 * ldc, c00, c01);
  store_row(C + 1 * ldc, c10, c11);
  store_row(C + 2 * ldc, c20, c21);
  store_row(C + 3 * ldc, c30, c31);
  store_row(C + 4 * ldc, c40, c41);
  store_row(C + 5 * ldc, c50, c51);
}

// The same computation for the bottom edge: only the first R < 6 rows (nothing past them is read).
// Each element sees exactly the operations of the full kernel, so edges change no result bits.
template <int R>
void micro_kernel_rows(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                       float alpha, float beta, float* C, int64_t ldc) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(B), b1 = _mm256_loadu_ps(B + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * a_rs);
      lo[r] = _mm256_fmadd_ps(a, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(a, b1, hi[r]);
    }
    A += a_ks;
    B += b_ks;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    float* crow = C + r * ldc;
    if (beta == 0.0f) {
      _mm256_storeu_ps(crow, _mm256_mul_ps(va, lo[r]));
      _mm256_storeu_ps(crow + 8, _mm256_mul_ps(va, hi[r]));
    } else {
      _mm256_storeu_ps(crow, _mm256_fmadd_ps(va, lo[r], _mm256_mul_ps(vb, _mm256_loadu_ps(crow))));
      _mm256_storeu_ps(crow + 8, _mm256_fmadd_ps(va, hi[r], _mm256_mul_ps(vb, _mm256_loadu_ps(crow + 8))));
    }
  }
}

// In-register transpose of an 8x8 block: r[i] holds row i on entry, column i on exit.
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
}  // namespace

// B stored (N,K) (the x*W^T form): Bp (kc,16) gets Bp[k*16 + c] = B[(j0+c)*ldb + p0 + k], zero past nr.
// Reads 8 stored rows x 8 floats at a time and transposes them in registers.
void pack_b_trans_avx2(const float* B, int64_t ldb, int64_t j0, int64_t nr, int64_t p0, int64_t kc, float* Bp) {
  const float* base = B + j0 * ldb + p0;
  int64_t k0 = 0;
  if (nr == kNR) {
    for (; k0 + 8 <= kc; k0 += 8) {
      for (int64_t half = 0; half < 2; ++half) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(base + (half * 8 + i) * ldb + k0);
        transpose8x8(r);
        for (int t = 0; t < 8; ++t) _mm256_store_ps(Bp + (k0 + t) * kNR + half * 8, r[t]);
      }
    }
  }
  for (int64_t k = k0; k < kc; ++k)
    for (int64_t c = 0; c < kNR; ++c) Bp[k * kNR + c] = c < nr ? base[c * ldb + k] : 0.0f;
}

// A stored (K,M) (the TN form): Ap (kc,6) gets Ap[k*6 + r] = A[(p0+k)*lda + i0 + r], zero past mr.
// Six contiguous floats per k: one 4-float and one 2-float move (never reading past the row).
void pack_a_trans_avx2(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap) {
  const float* base = A + p0 * lda + i0;
  if (mr == kMR) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = base + k * lda;
      float* dst = Ap + k * kMR;
      _mm_storeu_ps(dst, _mm_loadu_ps(src));
      _mm_storel_pi(reinterpret_cast<__m64*>(dst + 4),
                    _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(src + 4)));
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t r = 0; r < kMR; ++r) Ap[k * kMR + r] = r < mr ? base[k * lda + r] : 0.0f;
}

// A stored (M,K) (the NN and NT forms): Ap (kc,6) gets Ap[k*6 + r] = A[(i0+r)*lda + p0 + k], zero past mr.
// Reads 6 rows x 8 floats, transposes as 8x8 with two zero rows, and stores 6 floats per k.
void pack_a_notrans_avx2(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap) {
  const float* base = A + i0 * lda + p0;
  int64_t k0 = 0;
  if (mr == kMR) {
    for (; k0 + 8 <= kc; k0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(base + i * lda + k0);
      r[6] = r[7] = _mm256_setzero_ps();
      transpose8x8(r);
      for (int t = 0; t < 8; ++t) {
        float* dst = Ap + (k0 + t) * kMR;
        _mm_storeu_ps(dst, _mm256_castps256_ps128(r[t]));
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + 4), _mm256_extractf128_ps(r[t], 1));
      }
    }
  }
  for (int64_t k = k0; k < kc; ++k)
    for (int64_t r = 0; r < kMR; ++r) Ap[k * kMR + r] = r < mr ? base[r * lda + k] : 0.0f;
}

// The entry point: mr (1..6) rows of the tile are computed and written.
void micro_kernel_avx2(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
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
