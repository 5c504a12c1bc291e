// NEON activation kernels (aarch64): four floats at a time, the algorithms of activations_avx2.cpp with the
// same constants and the same order of operations (vfmaq_f32 where the AVX2 code has an fma), so the two
// SIMD paths agree with the references within the same bounds.
#include <arm_neon.h>

#include "tensor/activations.h"

namespace gradlab::kernels {

namespace {

// e^x for 4 lanes: n = round(x / ln2) (to nearest, ties to even, as _mm256_round_ps), r = x - n ln2 in two
// steps, degree-6 polynomial, times 2^n built in the exponent bits. The argument is clamped to
// [-87.3, 88.7] first, so 2^n stays a normal float.
inline float32x4_t exp4(float32x4_t x) {
  const float32x4_t c = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.7f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(c, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(c, n, vdupq_n_f32(0.693145751953125f));  // c - n ln2_hi, rounded once
  r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187045e-06f));
  float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(bits));
}

// Lanes of `a` where mask is set, else of `b`.
inline float32x4_t select(uint32x4_t mask, float32x4_t a, float32x4_t b) { return vbslq_f32(mask, a, b); }

// The sign bit of x on top of the non-negative y.
inline float32x4_t with_sign_of(float32x4_t y, float32x4_t x) {
  const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
  return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(y), sign));
}

// tanh for 4 lanes: 1 - 2/(e^{2|x|} + 1) with the sign restored; the odd series below |x| < 0.02.
inline float32x4_t tanh4(float32x4_t x) {
  const float32x4_t ax = vabsq_f32(x), one = vdupq_n_f32(1.0f);
  const float32x4_t e = exp4(vaddq_f32(ax, ax));
  const float32x4_t big = with_sign_of(vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, one))), x);
  const float32x4_t x2 = vmulq_f32(x, x);
  float32x4_t series = vfmsq_f32(vdupq_n_f32(1.0f / 3.0f), x2, vdupq_n_f32(2.0f / 15.0f));
  series = vmulq_f32(x, vfmsq_f32(one, x2, series));
  return select(vcltq_f32(ax, vdupq_n_f32(0.02f)), series, big);
}

// erf for 4 lanes, and e^{-z^2} as a by-product: erf8 of activations_avx2.cpp (the two fitted pieces, their
// coefficients and the error budget are described there), lane for lane.
inline float32x4_t erf4(float32x4_t z, float32x4_t* gauss) {
  const float32x4_t az = vabsq_f32(z), z2 = vmulq_f32(z, z);
  // small piece: az + az (P(z^2) - 1)
  float32x4_t p = vdupq_n_f32(7.8538577031041551e-5f);
  p = vfmaq_f32(vdupq_n_f32(-8.0101925198704981e-4f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(5.1883275599296844e-3f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(-2.6853811869089372e-2f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(1.1283585147031536e-1f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(-3.761262582409362e-1f), p, z2);
  p = vfmaq_f32(vdupq_n_f32(1.283791657266903e-1f), p, z2);
  const float32x4_t small = vfmaq_f32(az, az, p);
  // large piece: 1 - e^{-z^2} Q(v), v = min(|z|, 4) - 2.5 (vminq_f32 keeps a NaN lane NaN)
  const float32x4_t v = vsubq_f32(vminq_f32(vdupq_n_f32(4.0f), az), vdupq_n_f32(2.5f));
  float32x4_t q = vdupq_n_f32(1.0684321429387194e-4f);
  q = vfmaq_f32(vdupq_n_f32(2.2506283416838555e-4f), q, v);
  q = vfmaq_f32(vdupq_n_f32(5.4332004621190177e-4f), q, v);
  q = vfmaq_f32(vdupq_n_f32(-6.611205443239209e-4f), q, v);
  q = vfmaq_f32(vdupq_n_f32(2.3025031200668662e-3f), q, v);
  q = vfmaq_f32(vdupq_n_f32(-8.1322517735636514e-3f), q, v);
  q = vfmaq_f32(vdupq_n_f32(2.4914625740715879e-2f), q, v);
  q = vfmaq_f32(vdupq_n_f32(-7.4342186752907787e-2f), q, v);
  q = vfmaq_f32(vdupq_n_f32(2.1080760553366885e-1f), q, v);
  // e^{-z^2}, 0 where it underflows (exp4 clamps at -87.3; the backward's x e^{-x^2/2} must not regrow)
  const uint32x4_t finite_g = vcltq_f32(z2, vdupq_n_f32(87.0f));
  const float32x4_t g =
      vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(exp4(vnegq_f32(z2))), finite_g));
  const float32x4_t large = vfmsq_f32(vdupq_n_f32(1.0f), g, q);
  *gauss = g;
  return with_sign_of(select(vcltq_f32(az, vdupq_n_f32(1.0f)), small, large), z);
}

}  // namespace

void gelu_forward_neon(const float* x, float* y, std::int64_t n) {
  // x, y are (n)
  const float32x4_t kK = vdupq_n_f32(0.7978845608028654f), kC = vdupq_n_f32(0.044715f);
  const float32x4_t half = vdupq_n_f32(0.5f), one = vdupq_n_f32(1.0f);
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float32x4_t u = vmulq_f32(kK, vfmaq_f32(v, vmulq_f32(kC, v), vmulq_f32(v, v)));
    vst1q_f32(y + i, vmulq_f32(vmulq_f32(half, v), vaddq_f32(one, tanh4(u))));
  }
  gelu_forward_portable(x + i, y + i, n - i);
}

void gelu_backward_neon(const float* x, const float* g, float* dx, std::int64_t n) {
  // x, g, dx are (n)
  const float32x4_t kK = vdupq_n_f32(0.7978845608028654f), kC = vdupq_n_f32(0.044715f);
  const float32x4_t half = vdupq_n_f32(0.5f), one = vdupq_n_f32(1.0f), three_c = vdupq_n_f32(3.0f * 0.044715f);
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i), v2 = vmulq_f32(v, v);
    const float32x4_t t = tanh4(vmulq_f32(kK, vfmaq_f32(v, vmulq_f32(kC, v), v2)));
    const float32x4_t du = vmulq_f32(kK, vfmaq_f32(one, three_c, v2));
    const float32x4_t left = vmulq_f32(half, vaddq_f32(one, t));
    const float32x4_t right = vmulq_f32(vmulq_f32(half, v), vmulq_f32(vfmsq_f32(one, t, t), du));
    vst1q_f32(dx + i, vmulq_f32(vld1q_f32(g + i), vaddq_f32(left, right)));
  }
  gelu_backward_portable(x + i, g + i, dx + i, n - i);
}

// ---- exact (erf) GELU: the last n % 4 elements run the same vector body on a zero-padded block ----------

namespace {
template <typename Body>
void map_blocks4(const float* x, float* y, std::int64_t n, Body body) {
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) body(x + i, y + i);
  if (i < n) {
    float xb[4] = {}, yb[4];
    for (std::int64_t j = i; j < n; ++j) xb[j - i] = x[j];
    body(xb, yb);
    for (std::int64_t j = i; j < n; ++j) y[j] = yb[j - i];
  }
}
}  // namespace

void erf_neon(const float* x, float* y, std::int64_t n) {
  // x, y are (n)
  map_blocks4(x, y, n, [](const float* xi, float* yi) {
    float32x4_t gauss;
    vst1q_f32(yi, erf4(vld1q_f32(xi), &gauss));
  });
}

void gelu_exact_forward_neon(const float* x, float* y, std::int64_t n) {
  // x, y are (n):  y = x Phi(x),  Phi(x) = 0.5 + 0.5 erf(x / sqrt 2)
  map_blocks4(x, y, n, [](const float* xi, float* yi) {
    const float32x4_t half = vdupq_n_f32(0.5f), v = vld1q_f32(xi);
    float32x4_t gauss;
    const float32x4_t cdf = vfmaq_f32(half, half, erf4(vmulq_f32(v, vdupq_n_f32(0.70710678118654752f)), &gauss));
    vst1q_f32(yi, vmulq_f32(v, cdf));
  });
}

void gelu_exact_backward_neon(const float* x, const float* g, float* dx, std::int64_t n) {
  // x, g, dx are (n):  dx = g (Phi(x) + x phi(x)),  phi(x) = e^{-x^2/2} / sqrt(2 pi)
  auto body = [](const float* xi, const float* gi, float* dxi) {
    const float32x4_t half = vdupq_n_f32(0.5f), v = vld1q_f32(xi);
    float32x4_t gauss;  // e^{-z^2} with z = x / sqrt 2, that is e^{-x^2/2}
    const float32x4_t cdf = vfmaq_f32(half, half, erf4(vmulq_f32(v, vdupq_n_f32(0.70710678118654752f)), &gauss));
    const float32x4_t pdf = vmulq_f32(vdupq_n_f32(0.39894228040143268f), gauss);
    vst1q_f32(dxi, vmulq_f32(vld1q_f32(gi), vfmaq_f32(cdf, v, pdf)));
  };
  std::int64_t i = 0;
  for (; i + 4 <= n; i += 4) body(x + i, g + i, dx + i);
  if (i < n) {
    float xb[4] = {}, gb[4] = {}, db[4];
    for (std::int64_t j = i; j < n; ++j) xb[j - i] = x[j], gb[j - i] = g[j];
    body(xb, gb, db);
    for (std::int64_t j = i; j < n; ++j) dx[j] = db[j - i];
  }
}

}  // namespace gradlab::kernels
