// NEON inner loops of the attention kernels (aarch64 only), the counterparts of attention_kernel_avx2.cpp with
// the same contracts: reached through gradlab::use_neon() in tensor/attention_kernel.cpp.
#include <arm_neon.h>

#include <cmath>

#include "tensor/attention_kernel.h"

namespace gradlab::attention::detail {

namespace {

// Element (r, k) of the left operand: A is (R, K) row-major, or stored transposed as (K, R) when TA.
template <bool TA>
inline float a_at(const float* A, std::int64_t lda, int r, std::int64_t k) {
  return TA ? A[k * lda + r] : A[r * lda + k];
}

// R rows of C, NV vectors of 4 columns from column 0 of C and B: the accumulators stay in registers while k
// runs over the shared dimension. Each C element gets one fma per k, in k order.
template <bool TA, int R, int NV>
inline void gemm_block(std::int64_t K, const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float* C,
                       std::int64_t ldc) {
  float32x4_t acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = vld1q_f32(C + r * ldc + 4 * v);
  for (std::int64_t k = 0; k < K; ++k) {
    float32x4_t b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = vld1q_f32(B + k * ldb + 4 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float a = a_at<TA>(A, lda, r, k);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = vfmaq_n_f32(acc[r][v], b[v], a);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) vst1q_f32(C + r * ldc + 4 * v, acc[r][v]);
}

// The last n < 4 columns, one element at a time with the same fma per k (so the same bits as a vector lane);
// nothing past column n is read or written.
template <bool TA, int R>
inline void gemm_block_ragged(std::int64_t K, std::int64_t n, const float* A, std::int64_t lda, const float* B,
                              std::int64_t ldb, float* C, std::int64_t ldc) {
  for (int r = 0; r < R; ++r)
    for (std::int64_t j = 0; j < n; ++j) {
      float acc = C[r * ldc + j];
      for (std::int64_t k = 0; k < K; ++k) acc = std::fma(a_at<TA>(A, lda, r, k), B[k * ldb + j], acc);
      C[r * ldc + j] = acc;
    }
}

template <bool TA, int R>
inline void gemm_rows(std::int64_t N, std::int64_t K, const float* A, std::int64_t lda, const float* B,
                      std::int64_t ldb, float* C, std::int64_t ldc) {
  std::int64_t j = 0;
  for (; j + 16 <= N; j += 16) gemm_block<TA, R, 4>(K, A, lda, B + j, ldb, C + j, ldc);
  for (; j + 4 <= N; j += 4) gemm_block<TA, R, 1>(K, A, lda, B + j, ldb, C + j, ldc);
  if (j < N) gemm_block_ragged<TA, R>(K, N - j, A, lda, B + j, ldb, C + j, ldc);
}

// Rows in blocks of 6 (24 accumulators of 4 floats, of aarch64's 32 vector registers), then 4, then one at a
// time. Which block a row falls in does not change its result.
template <bool TA>
void gemm_any(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda, const float* B,
              std::int64_t ldb, float* C, std::int64_t ldc) {
  const std::int64_t row_step = TA ? 1 : lda;  // row r of the left operand starts at A + r * row_step
  std::int64_t i = 0;
  for (; i + 6 <= M; i += 6) gemm_rows<TA, 6>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
  for (; i + 4 <= M; i += 4) gemm_rows<TA, 4>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
  for (; i < M; ++i) gemm_rows<TA, 1>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
}

// e^x for 4 lanes: exp8 of attention_kernel_avx2.cpp (the Cephes expf polynomial after x = n ln2 + r,
// |r| <= ln2/2) with the same limits: below log(FLT_MIN) 0 (so -inf -> 0), above 88.376 +inf, NaN stays NaN.
float32x4_t exp4(float32x4_t x) {
  const float32x4_t hi = vdupq_n_f32(88.3762626647949f), lo = vdupq_n_f32(-87.3365447504f);
  const float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), hi);
  const float32x4_t n = vrndnq_f32(vmulq_f32(xc, vdupq_n_f32(1.44269504088896341f)));
  // r = x - n ln2, with ln2 split in two so that n*ln2_hi is exact
  float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
  y = vbslq_f32(vcltq_f32(x, lo), vdupq_n_f32(0.0f), y);
  y = vbslq_f32(vcgtq_f32(x, hi), vdupq_n_f32(INFINITY), y);
  return vbslq_f32(vceqq_f32(x, x), y, x);  // x != x only for NaN
}

// In-register transpose of a 4x4 block: r[i] holds row i on entry, column i on exit.
inline void transpose4x4(float32x4_t r[4]) {
  const float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
  const float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
  auto lo = [](float32x4_t a, float32x4_t b) {  // low halves of a and b
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

void gemm_acc_neon(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                   const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  // C (M,N) += A (M,K) @ B (K,N)
  gemm_any<false>(M, N, K, A, lda, B, ldb, C, ldc);
}

void gemm_tn_acc_neon(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                      const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  // C (M,N) += A^T @ B, A stored (K,M), B (K,N)
  gemm_any<true>(M, N, K, A, lda, B, ldb, C, ldc);
}

float dot_neon(const float* a, const float* b, std::int64_t n) {
  // a, b are (n): four independent chains of 4 lanes, summed in a fixed order at the end
  float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
  float tail = 0.0f;
  for (; i < n; ++i) tail = std::fma(a[i], b[i], tail);
  return vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3))) + tail;
}

void axpy_neon(float alpha, const float* x, float* y, std::int64_t n) {
  // x, y are (n): y += alpha x, one fma per element (the tail too)
  const float32x4_t a = vdupq_n_f32(alpha);
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), a, vld1q_f32(x + i)));
  for (; i < n; ++i) y[i] = std::fma(alpha, x[i], y[i]);
}

void transpose_neon(const float* src, std::int64_t lds, std::int64_t n, std::int64_t D, float* dst,
                    std::int64_t ldd) {
  // src (n,D) -> dst (D,n) in 4 x 4 register blocks; the ragged edges by element
  std::int64_t c0 = 0;
  for (; c0 + 4 <= n; c0 += 4) {
    std::int64_t d0 = 0;
    for (; d0 + 4 <= D; d0 += 4) {
      float32x4_t r[4];
      for (int i = 0; i < 4; ++i) r[i] = vld1q_f32(src + (c0 + i) * lds + d0);
      transpose4x4(r);
      for (int j = 0; j < 4; ++j) vst1q_f32(dst + (d0 + j) * ldd + c0, r[j]);
    }
    for (std::int64_t d = d0; d < D; ++d)
      for (std::int64_t c = c0; c < c0 + 4; ++c) dst[d * ldd + c] = src[c * lds + d];
  }
  for (std::int64_t d = 0; d < D; ++d)
    for (std::int64_t c = c0; c < n; ++c) dst[d * ldd + c] = src[c * lds + d];
}

void exp_neon(float* x, std::int64_t n) {
  // x is (n), e^x in place
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(x + i, exp4(vld1q_f32(x + i)));
  if (i < n) {
    // the ragged end goes through the same polynomial on a padded copy: a value's e^x never depends on where
    // it sits
    float block[4] = {};
    for (std::int64_t j = i; j < n; ++j) block[j - i] = x[j];
    vst1q_f32(block, exp4(vld1q_f32(block)));
    for (std::int64_t j = i; j < n; ++j) x[j] = block[j - i];
  }
}

}  // namespace gradlab::attention::detail
