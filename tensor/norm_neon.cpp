// NEON LayerNorm/RMSNorm rows (aarch64): four floats at a time with float accumulators, the loops of
// norm_avx2.cpp on 4 lanes (tensor/norm.h has the math; the portable loops in norm.cpp are the reference).
// Column tails (C not a multiple of 4) run scalar.
#include <arm_neon.h>

#include <cmath>

#include "tensor/norm.h"

namespace gradlab::kernels {

void norm_forward_neon(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                       std::int64_t rows, std::int64_t C, float eps, bool rms) {
  // x, out are (rows, C); mean, rstd are (rows)
  const std::int64_t C4 = C - C % 4;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* orow = out + r * C;
    float mu = 0.0f;
    if (!rms) {
      float32x4_t s = vdupq_n_f32(0.0f);
      for (std::int64_t c = 0; c < C4; c += 4) s = vaddq_f32(s, vld1q_f32(xr + c));
      float sum = vaddvq_f32(s);  // the lanes in a fixed order
      for (std::int64_t c = C4; c < C; ++c) sum += xr[c];
      mu = sum / static_cast<float>(C);
    }
    // variance of the deviations (stable when |mean| >> std)
    const float32x4_t vmu = vdupq_n_f32(mu);
    float32x4_t v = vdupq_n_f32(0.0f);
    for (std::int64_t c = 0; c < C4; c += 4) {
      const float32x4_t d = vsubq_f32(vld1q_f32(xr + c), vmu);
      v = vfmaq_f32(v, d, d);
    }
    float var = vaddvq_f32(v);
    for (std::int64_t c = C4; c < C; ++c) var = std::fma(xr[c] - mu, xr[c] - mu, var);
    const float rs = 1.0f / std::sqrt(var / static_cast<float>(C) + eps);
    mean[r] = mu;
    rstd[r] = rs;
    const float32x4_t vrs = vdupq_n_f32(rs);
    for (std::int64_t c = 0; c < C4; c += 4) {
      const float32x4_t h = vmulq_f32(vsubq_f32(vld1q_f32(xr + c), vmu), vrs);
      const float32x4_t bias = b ? vld1q_f32(b + c) : vdupq_n_f32(0.0f);
      vst1q_f32(orow + c, vfmaq_f32(bias, h, vld1q_f32(w + c)));
    }
    for (std::int64_t c = C4; c < C; ++c) orow[c] = std::fma((xr[c] - mu) * rs, w[c], b ? b[c] : 0.0f);
  }
}

void norm_backward_neon(const float* g, const float* x, const float* w, const float* mean, const float* rstd,
                        float* dx, float* dw, float* db, std::int64_t rows, std::int64_t C, bool rms) {
  // g, x, dx are (rows, C); dw, db (C) get the sums over these rows, accumulated row by row in float
  const std::int64_t C4 = C - C % 4;
  for (std::int64_t c = 0; c < C; ++c) {
    dw[c] = 0.0f;
    if (db) db[c] = 0.0f;
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * C;
    const float* xr = x + r * C;
    float* dxr = dx + r * C;
    const float32x4_t vmu = vdupq_n_f32(mean[r]), vrs = vdupq_n_f32(rstd[r]);
    // first loop: the two row means, and this row's share of dw and db
    float32x4_t sd = vdupq_n_f32(0.0f), sdh = vdupq_n_f32(0.0f);
    for (std::int64_t c = 0; c < C4; c += 4) {
      const float32x4_t gv = vld1q_f32(gr + c);
      const float32x4_t h = vmulq_f32(vsubq_f32(vld1q_f32(xr + c), vmu), vrs);
      const float32x4_t d = vmulq_f32(gv, vld1q_f32(w + c));
      sd = vaddq_f32(sd, d);
      sdh = vfmaq_f32(sdh, d, h);
      vst1q_f32(dw + c, vfmaq_f32(vld1q_f32(dw + c), gv, h));
      if (db) vst1q_f32(db + c, vaddq_f32(vld1q_f32(db + c), gv));
    }
    float sum_d = vaddvq_f32(sd), sum_dh = vaddvq_f32(sdh);
    for (std::int64_t c = C4; c < C; ++c) {
      const float h = (xr[c] - mean[r]) * rstd[r], d = gr[c] * w[c];
      sum_d += d;
      sum_dh = std::fma(d, h, sum_dh);
      dw[c] = std::fma(gr[c], h, dw[c]);
      if (db) db[c] += gr[c];
    }
    const float mean_d = rms ? 0.0f : sum_d / static_cast<float>(C), mean_dh = sum_dh / static_cast<float>(C);
    // second loop: dx = rstd * (d - mean_d - xhat * mean_dh)
    const float32x4_t vmd = vdupq_n_f32(mean_d), vmdh = vdupq_n_f32(mean_dh);
    for (std::int64_t c = 0; c < C4; c += 4) {
      const float32x4_t h = vmulq_f32(vsubq_f32(vld1q_f32(xr + c), vmu), vrs);
      const float32x4_t d = vmulq_f32(vld1q_f32(gr + c), vld1q_f32(w + c));
      vst1q_f32(dxr + c, vmulq_f32(vrs, vfmsq_f32(vsubq_f32(d, vmd), h, vmdh)));
    }
    for (std::int64_t c = C4; c < C; ++c) {
      const float h = (xr[c] - mean[r]) * rstd[r], d = gr[c] * w[c];
      dxr[c] = rstd[r] * std::fma(-h, mean_dh, d - mean_d);
    }
  }
}

}  // namespace gradlab::kernels
