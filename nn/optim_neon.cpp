// The AdamW update, 4 floats at a time (NEON, aarch64 only; called behind use_neon()). The operations are the
// portable loop's (nn/optim.cpp), in the same order, with separate multiply and add (no FMA: aarch64 builds
// use -ffp-contract=off, cmake/features.cmake), and vsqrtq_f32 / vdivq_f32 are correctly rounded like the
// scalar sqrt and division: the results agree bit for bit.
#include <arm_neon.h>

#include <cmath>

#include "nn/optim.h"

namespace gradlab {

bool adamw_update_f32_neon(float* p, float* m, float* v, const float* g, std::int64_t n, const AdamWConstants& c) {
  // p, m, v, g are (n)
  const float32x4_t keep = vdupq_n_f32(c.keep);
  const float32x4_t b1 = vdupq_n_f32(c.beta1), one_b1 = vdupq_n_f32(c.one_minus_beta1);
  const float32x4_t b2 = vdupq_n_f32(c.beta2), one_b2 = vdupq_n_f32(c.one_minus_beta2);
  const float32x4_t step = vdupq_n_f32(c.step_size), isb2 = vdupq_n_f32(c.inv_sqrt_bias2);
  const float32x4_t eps = vdupq_n_f32(c.eps), zero = vdupq_n_f32(0.0f);
  uint32x4_t ok = vdupq_n_u32(0xFFFFFFFFu);  // all lanes finite so far
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t gi = vld1q_f32(g + i);
    // m = b1 m + (1-b1) g;  v = b2 v + ((1-b2) g) g   (the portable loop's association)
    const float32x4_t mi = vaddq_f32(vmulq_f32(b1, vld1q_f32(m + i)), vmulq_f32(one_b1, gi));
    const float32x4_t vi = vaddq_f32(vmulq_f32(b2, vld1q_f32(v + i)), vmulq_f32(vmulq_f32(one_b2, gi), gi));
    vst1q_f32(m + i, mi);
    vst1q_f32(v + i, vi);
    const float32x4_t denom = vaddq_f32(vmulq_f32(vsqrtq_f32(vi), isb2), eps);
    // p = p keep - (step m) / denom
    const float32x4_t pi = vsubq_f32(vmulq_f32(vld1q_f32(p + i), keep), vdivq_f32(vmulq_f32(step, mi), denom));
    vst1q_f32(p + i, pi);
    ok = vandq_u32(ok, vceqq_f32(vsubq_f32(pi, pi), zero));  // x - x is 0 exactly when x is finite
  }
  bool finite = vminvq_u32(ok) == 0xFFFFFFFFu;
  // the tail: the portable loop's arithmetic, one element at a time
  for (; i < n; ++i) {
    const float gi = g[i];
    const float mi = c.beta1 * m[i] + c.one_minus_beta1 * gi;
    const float vi = c.beta2 * v[i] + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * c.inv_sqrt_bias2 + c.eps;
    const float pi = p[i] * c.keep - c.step_size * mi / denom;
    p[i] = pi;
    finite = finite && (pi - pi == 0.0f);
  }
  return finite;
}

}  // namespace gradlab
