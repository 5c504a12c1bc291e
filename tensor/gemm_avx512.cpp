// AVX-512 micro-kernel of the packed GEMM (tensor/gemm.cpp): a 6x32 tile of C that consumes two adjacent
// 16-column B micro-panels at once, in 12 zmm accumulators. Same packed formats as the AVX2 kernel (the packing
// stays in gemm_avx2.cpp). Compiled with -mavx512f -mavx512vl -mfma; gemm.cpp calls it only when
// gradlab::use_avx512().
//
// Same bits as the AVX2 kernel (tensor/gemm_avx2.cpp): every C element gets acc = 0, one fma per k in k order,
// then alpha*acc (beta == 0: old C unread) or fma(alpha, acc, beta*C). Only the vector width differs, so results
// do not depend on which of the two kernels ran, nor on the thread count.
//
// Nothing from the standard library is used here: an inline function instantiated in this file would be
// compiled with AVX-512 and the linker could pick that copy for callers on machines without it.
#include <immintrin.h>

#include <cstdint>

#include "tensor/gemm.h"

namespace gradlab::gemm::detail {

static_assert(kMR == 6 && kNR == 16, "the AVX-512 micro-kernel is written for 6-row, 16-column panels");

namespace {

// The first n lanes of a 16-float vector (n may be <= 0 or >= 16).
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1u);
}

// C (R, nr) with row stride ldc = alpha * op(A) op(B) + beta * C over kc steps of k; R <= 6 rows, P panels of
// B (1 or 2), nr <= 16 P columns (C is read and written only there).
// A element (r, k) is at A[r*a_rs + k*a_ks]; row k of panel 0 starts at B0 + k*b_ks, of panel 1 at B1 + k*b_ks,
// each with 16 readable floats (packed panels are zero-padded past the edge; B1 is unread when P == 1).
// kPacked: the packed strides a_rs = 1, a_ks = 6, b_ks = 16 as constants.
// Per k: P loads of B, R broadcasts of A, R*P independent FMAs (12 for the full tile: enough to cover the FMA
// latency on two 512-bit ports).
template <int R, int P, bool kPacked>
void tile(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B0, const float* B1, int64_t b_ks,
          float alpha, float beta, float* C, int64_t ldc, int64_t nr) {
  if constexpr (kPacked) a_rs = 1, a_ks = kMR, b_ks = kNR;
  __m512 acc[R][P];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) acc[r][p] = _mm512_setzero_ps();
  // Ask for the C tile now, so it is in L1 when the k loop ends (a row of 32 floats spans up to 3 lines).
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    const char* crow = reinterpret_cast<const char*>(C + r * ldc);
    _mm_prefetch(crow, _MM_HINT_T0);
    if constexpr (P == 2) _mm_prefetch(crow + 16 * sizeof(float), _MM_HINT_T0);
    _mm_prefetch(crow + (16 * P - 1) * sizeof(float), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(B0);
    __m512 b1 = b0;
    if constexpr (P == 2) b1 = _mm512_loadu_ps(B1);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * a_rs]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      if constexpr (P == 2) acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
    A += a_ks;
    B0 += b_ks;
    if constexpr (P == 2) B1 += b_ks;
  }

  // The AVX2 kernel's epilogue, lane for lane; masked loads and stores keep to the nr valid columns.
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __mmask16 mask[2] = {first_lanes(nr), first_lanes(nr - 16)};
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int p = 0; p < P; ++p) {
      float* c = C + r * ldc + 16 * p;
      const bool full = mask[p] == __mmask16(0xFFFF);
      __m512 v;
      if (beta == 0.0f) {
        v = _mm512_mul_ps(va, acc[r][p]);
      } else {
        const __m512 old = full ? _mm512_loadu_ps(c) : _mm512_maskz_loadu_ps(mask[p], c);
        v = _mm512_fmadd_ps(va, acc[r][p], _mm512_mul_ps(vb, old));
      }
      if (full)
        _mm512_storeu_ps(c, v);
      else
        _mm512_mask_storeu_ps(c, mask[p], v);
    }
  }
}

template <int P>
void tile_rows(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B0, const float* B1,
               int64_t b_ks, float alpha, float beta, float* C, int64_t ldc, int64_t mr, int64_t nr) {
  switch (mr) {
    case 6:
      if (a_rs == 1 && a_ks == kMR && b_ks == kNR)
        tile<6, P, true>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, nr);
      else
        tile<6, P, false>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, nr);
      break;
    case 5: tile<5, P, false>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, nr); break;
    case 4: tile<4, P, false>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, nr); break;
    case 3: tile<3, P, false>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, nr); break;
    case 2: tile<2, P, false>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, nr); break;
    default: tile<1, P, false>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, nr); break;
  }
}

}  // namespace

// The entry point: mr (1..6) rows by nr (1..32) columns of C; nr > 16 reads both panels (the 6x32 tile),
// otherwise only B0 (a 6x16 tile: the odd panel at the right, or a lone one).
void micro_kernel_avx512(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B0, const float* B1,
                         int64_t b_ks, float alpha, float beta, float* C, int64_t ldc, int64_t mr, int64_t nr) {
  if (nr > kNR)
    tile_rows<2>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, mr, nr);
  else
    tile_rows<1>(kc, A, a_rs, a_ks, B0, B1, b_ks, alpha, beta, C, ldc, mr, nr);
}

}  // namespace gradlab::gemm::detail
