// AVX2+FMA LayerNorm/RMSNorm rows: eight floats at a time with float accumulators (tensor/norm.h has the math;
// the portable loops in norm.cpp are the reference). A row of the tiny GPT is 128 floats, so each row stays
// in L1 across the short loops below. Column tails (C not a multiple of 8) run scalar.
#include <immintrin.h>

#include <cmath>

#include "tensor/norm.h"

namespace gradlab::kernels {

namespace {
// Sum of the 8 lanes, always in the same order.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}
}  // namespace

void norm_forward_avx2(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                       std::int64_t rows, std::int64_t C, float eps, bool rms) {
  // x, out are (rows, C); mean, rstd are (rows)
  const std::int64_t C8 = C - C % 8;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* orow = out + r * C;
    float mu = 0.0f;
    if (!rms) {
      __m256 s = _mm256_setzero_ps();
      for (std::int64_t c = 0; c < C8; c += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(xr + c));
      float sum = hsum(s);
      for (std::int64_t c = C8; c < C; ++c) sum += xr[c];
      mu = sum / static_cast<float>(C);
    }
    // variance of the deviations (stable when |mean| >> std)
    const __m256 vmu = _mm256_set1_ps(mu);
    __m256 v = _mm256_setzero_ps();
    for (std::int64_t c = 0; c < C8; c += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + c), vmu);
      v = _mm256_fmadd_ps(d, d, v);
    }
    float var = hsum(v);
    for (std::int64_t c = C8; c < C; ++c) var = std::fma(xr[c] - mu, xr[c] - mu, var);
    const float rs = 1.0f / std::sqrt(var / static_cast<float>(C) + eps);
    mean[r] = mu;
    rstd[r] = rs;
    const __m256 vrs = _mm256_set1_ps(rs);
    for (std::int64_t c = 0; c < C8; c += 8) {
      const __m256 h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), vmu), vrs);
      const __m256 bias = b ? _mm256_loadu_ps(b + c) : _mm256_setzero_ps();
      _mm256_storeu_ps(orow + c, _mm256_fmadd_ps(h, _mm256_loadu_ps(w + c), bias));
    }
    for (std::int64_t c = C8; c < C; ++c) orow[c] = std::fma((xr[c] - mu) * rs, w[c], b ? b[c] : 0.0f);
  }
}

void norm_backward_avx2(const float* g, const float* x, const float* w, const float* mean, const float* rstd,
                        float* dx, float* dw, float* db, std::int64_t rows, std::int64_t C, bool rms) {
  // g, x, dx are (rows, C); dw, db (C) get the sums over these rows, accumulated row by row in float
  const std::int64_t C8 = C - C % 8;
  for (std::int64_t c = 0; c < C; ++c) {
    dw[c] = 0.0f;
    if (db) db[c] = 0.0f;
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * C;
    const float* xr = x + r * C;
    float* dxr = dx + r * C;
    const __m256 vmu = _mm256_set1_ps(mean[r]), vrs = _mm256_set1_ps(rstd[r]);
    // first loop: the two row means, and this row's share of dw and db
    __m256 sd = _mm256_setzero_ps(), sdh = _mm256_setzero_ps();
    for (std::int64_t c = 0; c < C8; c += 8) {
      const __m256 gv = _mm256_loadu_ps(gr + c);
      const __m256 h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), vmu), vrs);
      const __m256 d = _mm256_mul_ps(gv, _mm256_loadu_ps(w + c));
      sd = _mm256_add_ps(sd, d);
      sdh = _mm256_fmadd_ps(d, h, sdh);
      _mm256_storeu_ps(dw + c, _mm256_fmadd_ps(gv, h, _mm256_loadu_ps(dw + c)));
      if (db) _mm256_storeu_ps(db + c, _mm256_add_ps(_mm256_loadu_ps(db + c), gv));
    }
    float sum_d = hsum(sd), sum_dh = hsum(sdh);
    for (std::int64_t c = C8; c < C; ++c) {
      const float h = (xr[c] - mean[r]) * rstd[r], d = gr[c] * w[c];
      sum_d += d;
      sum_dh = std::fma(d, h, sum_dh);
      dw[c] = std::fma(gr[c], h, dw[c]);
      if (db) db[c] += gr[c];
    }
    const float mean_d = rms ? 0.0f : sum_d / static_cast<float>(C), mean_dh = sum_dh / static_cast<float>(C);
    // second loop: dx = rstd * (d - mean_d - xhat * mean_dh)
    const __m256 vmd = _mm256_set1_ps(mean_d), vmdh = _mm256_set1_ps(mean_dh);
    for (std::int64_t c = 0; c < C8; c += 8) {
      const __m256 h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), vmu), vrs);
      const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(gr + c), _mm256_loadu_ps(w + c));
      _mm256_storeu_ps(dxr + c, _mm256_mul_ps(vrs, _mm256_fnmadd_ps(h, vmdh, _mm256_sub_ps(d, vmd))));
    }
    for (std::int64_t c = C8; c < C; ++c) {
      const float h = (xr[c] - mean[r]) * rstd[r], d = gr[c] * w[c];
      dxr[c] = rstd[r] * std::fma(-h, mean_dh, d - mean_d);
    }
  }
}

}  // namespace gradlab::kernels
