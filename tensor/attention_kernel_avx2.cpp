// AVX2+FMA inner loops of the attention kernels. Compiled with -mavx2 -mfma; reached only through
// gradlab::use_avx2() (tensor/attention_kernel.cpp), so the portable build still runs everywhere.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "tensor/attention_kernel.h"

namespace gradlab::attention::detail {

namespace {

// Lane mask with the first n (0..8) lanes on, for the ragged end of a row.
__m256i first_lanes(std::int64_t n) {
  alignas(32) static const int table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}

// Element (r, k) of the left operand: A is (R, K) row-major, or stored transposed as (K, R) when TA.
template <bool TA>
inline const float* a_at(const float* A, std::int64_t lda, int r, std::int64_t k) {
  return TA ? A + k * lda + r : A + r * lda + k;
}

// R rows of C, NV full vectors of 8 columns starting at column j: the accumulators stay in registers while
// k runs over the shared dimension. Each C element is updated by one fma per k, in k order.
template <bool TA, int R, int NV>
inline void gemm_block(std::int64_t K, const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float* C,
                       std::int64_t ldc) {
  __m256 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_loadu_ps(C + r * ldc + 8 * v);
  for (std::int64_t k = 0; k < K; ++k) {
    __m256 b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(B + k * ldb + 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(a_at<TA>(A, lda, r, k));
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(C + r * ldc + 8 * v, acc[r][v]);
}

// Same, for the last n < 8 columns (masked loads and stores never touch memory past the row).
template <bool TA, int R>
inline void gemm_block_ragged(std::int64_t K, std::int64_t n, const float* A, std::int64_t lda, const float* B,
                              std::int64_t ldb, float* C, std::int64_t ldc) {
  const __m256i mask = first_lanes(n);
  __m256 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm256_maskload_ps(C + r * ldc, mask);
  for (std::int64_t k = 0; k < K; ++k) {
    const __m256 b = _mm256_maskload_ps(B + k * ldb, mask);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a_at<TA>(A, lda, r, k)), b, acc[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) _mm256_maskstore_ps(C + r * ldc, mask, acc[r]);
}

template <bool TA, int R>
inline void gemm_rows(std::int64_t N, std::int64_t K, const float* A, std::int64_t lda, const float* B,
                      std::int64_t ldb, float* C, std::int64_t ldc) {
  std::int64_t j = 0;
  for (; j + 16 <= N; j += 16) gemm_block<TA, R, 2>(K, A, lda, B + j, ldb, C + j, ldc);
  for (; j + 8 <= N; j += 8) gemm_block<TA, R, 1>(K, A, lda, B + j, ldb, C + j, ldc);
  if (j < N) gemm_block_ragged<TA, R>(K, N - j, A, lda, B + j, ldb, C + j, ldc);
}

// Rows in blocks of 6 (12 accumulators of 8 floats: enough independent fma chains to hide the latency),
// then 4, then one at a time. Which block a row falls in does not change its result.
template <bool TA>
void gemm_any(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda, const float* B,
              std::int64_t ldb, float* C, std::int64_t ldc) {
  // row r of the left operand starts at A + r * (TA ? 1 : lda)
  const std::int64_t row_step = TA ? 1 : lda;
  std::int64_t i = 0;
  for (; i + 6 <= M; i += 6) gemm_rows<TA, 6>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
  for (; i + 4 <= M; i += 4) gemm_rows<TA, 4>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
  for (; i < M; ++i) gemm_rows<TA, 1>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
}

float horizontal_sum(__m256 x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x for 8 lanes: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 Taylor-like polynomial (the
// classic Cephes expf coefficients), times 2^n built in the exponent bits. Below log(FLT_MIN) the result
// is flushed to 0 (so -inf -> 0), above 88.376 (~ 2^127.5) it is +inf, NaN stays NaN. The kernels only
// take e^x of x <= 0 (logits minus their running max).
__m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365447504f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2, with ln2 split in two so that n*ln2_hi is exact
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

}  // namespace

void gemm_acc_avx2(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                   const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  // C (M,N) += A (M,K) @ B (K,N)
  gemm_any<false>(M, N, K, A, lda, B, ldb, C, ldc);
}

void gemm_tn_acc_avx2(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                      const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  // C (M,N) += A^T @ B, A stored (K,M), B (K,N)
  gemm_any<true>(M, N, K, A, lda, B, ldb, C, ldc);
}

float dot_avx2(const float* a, const float* b, std::int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  if (i < n) {
    const std::int64_t m = n - i;
    const __m256i lo = first_lanes(m < 8 ? m : 8);
    s0 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, lo), _mm256_maskload_ps(b + i, lo), s0);
    if (m > 8) {
      const __m256i hi = first_lanes(m - 8);
      s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i + 8, hi), _mm256_maskload_ps(b + i + 8, hi), s1);
    }
  }
  return horizontal_sum(_mm256_add_ps(s0, s1));
}

void axpy_avx2(float alpha, const float* x, float* y, std::int64_t n) {
  const __m256 a = _mm256_set1_ps(alpha);
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  if (i < n) {
    const __m256i mask = first_lanes(n - i);
    _mm256_maskstore_ps(y + i, mask,
                        _mm256_fmadd_ps(a, _mm256_maskload_ps(x + i, mask), _mm256_maskload_ps(y + i, mask)));
  }
}

void transpose_avx2(const float* src, std::int64_t lds, std::int64_t n, std::int64_t D, float* dst,
                    std::int64_t ldd) {
  // src (n,D) -> dst (D,n) in 8 x 8 blocks: 8 row loads, 24 shuffles, 8 row stores; the ragged edges by element
  std::int64_t c0 = 0;
  for (; c0 + 8 <= n; c0 += 8) {
    std::int64_t d0 = 0;
    for (; d0 + 8 <= D; d0 += 8) {
      const float* s = src + c0 * lds + d0;
      __m256 r[8], t[8], u[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * lds);
#pragma GCC unroll 4
      for (int i = 0; i < 8; i += 2) {  // t[i] = (r_i0 r_(i+1)0 r_i1 r_(i+1)1 | same for columns 4, 5), t[i+1]: 2, 3 | 6, 7
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
#pragma GCC unroll 2
      for (int i = 0; i < 8; i += 4) {  // u[i + j] = column j | column j + 4 of rows i..i+3
        u[i + 0] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      float* o = dst + d0 * ldd + c0;
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        _mm256_storeu_ps(o + j * ldd, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
        _mm256_storeu_ps(o + (j + 4) * ldd, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
      }
    }
    for (std::int64_t d = d0; d < D; ++d)
      for (std::int64_t c = c0; c < c0 + 8; ++c) dst[d * ldd + c] = src[c * lds + d];
  }
  for (std::int64_t d = 0; d < D; ++d)
    for (std::int64_t c = c0; c < n; ++c) dst[d * ldd + c] = src[c * lds + d];
}

void exp_avx2(float* x, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i)));
  if (i < n) {
    // the ragged end goes through the same polynomial, so a value's e^x never depends on where it sits
    const __m256i mask = first_lanes(n - i);
    _mm256_maskstore_ps(x + i, mask, exp8(_mm256_maskload_ps(x + i, mask)));
  }
}

}  // namespace gradlab::attention::detail
