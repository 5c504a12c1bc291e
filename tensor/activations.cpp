#include "tensor/activations.h"

#include <cmath>

#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/fastmath.h"
#include "tensor/threads.h"

namespace gradlab::kernels {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
}  // namespace

// The portable loops are plain float code that vectorizes (SSE2 on baseline x86-64): every element runs the
// same operations, with no call, branch or early exit. They use the logistic form of the same function,
// 0.5 (1 + tanh u) = s(2u) with s(z) = 1 / (1 + e^{-z}): one exp and one division per element, where the
// tanh form needs those plus a select and a sign fix. Within 2e-6 (forward) and 4e-6 (backward) of the
// float64 formula (tests/tensor/test_fastmath.cpp). fast_exp_estrin: its short dependency chain is what makes
// these loops fast without FMA.

void gelu_forward_portable(const float* x, float* y, std::int64_t n) {
  // x, y are (n):  y = x s(2u),  2u = 2k (x + c x^3)
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float z = v * (2.0f * kSqrt2OverPi + (2.0f * kSqrt2OverPi * kCubic) * (v * v));
    // e^{-z} = +inf for z < -88.4 gives v / inf = -0: the limit, with no NaN
    y[i] = v / (1.0f + fast_exp_estrin(-z));
  }
}

void gelu_backward_portable(const float* x, const float* g, float* dx, std::int64_t n) {
  // x, g, dx are (n):  d/dx [x s(2u)] = s + 2 x s (1 - s) u',  u' = k (1 + 3 c x^2)
  // With a = e^{-|z|} <= 1 (never overflows) and d = 1 / (1 + a): s(|z|) = d, s(-|z|) = a d, and
  // s (1 - s) = a d^2 for either sign, so no cancellation in 1 - s and no inf * 0.
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i], v2 = v * v;
    const float z = v * (2.0f * kSqrt2OverPi + (2.0f * kSqrt2OverPi * kCubic) * v2);
    const float a = fast_exp_estrin(-std::fabs(z));
    const float d = 1.0f / (1.0f + a);
    const float s = z >= 0.0f ? d : a * d;
    const float du = kSqrt2OverPi + (3.0f * kSqrt2OverPi * kCubic) * v2;
    dx[i] = g[i] * (s + (2.0f * v) * ((a * d * d) * du));  // a d^2 = 0 first, so no inf * 0 for |x| up to 1e19
  }
}

void gelu_forward(const float* x, float* y, std::int64_t n) {
  if (n < 0 || (n > 0 && (!x || !y))) throw_error("gelu_forward: got n = ", n, ", expected n >= 0 and non-null x, y");
  parallel_ranges(n, 1, [&](std::int64_t i0, std::int64_t i1) {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
    if (use_avx2()) return gelu_forward_avx2(x + i0, y + i0, i1 - i0);
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
    if (use_neon()) return gelu_forward_neon(x + i0, y + i0, i1 - i0);
#endif
    gelu_forward_portable(x + i0, y + i0, i1 - i0);
  });
}

void gelu_backward(const float* x, const float* g, float* dx, std::int64_t n) {
  if (n < 0 || (n > 0 && (!x || !g || !dx)))
    throw_error("gelu_backward: got n = ", n, ", expected n >= 0 and non-null x, g, dx");
  parallel_ranges(n, 1, [&](std::int64_t i0, std::int64_t i1) {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
    if (use_avx2()) return gelu_backward_avx2(x + i0, g + i0, dx + i0, i1 - i0);
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
    if (use_neon()) return gelu_backward_neon(x + i0, g + i0, dx + i0, i1 - i0);
#endif
    gelu_backward_portable(x + i0, g + i0, dx + i0, i1 - i0);
  });
}

// ---- exact (erf) GELU -----------------------------------------------------------------------------------

namespace {
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
}  // namespace

void gelu_exact_forward_reference(const float* x, float* y, std::int64_t n) {
  // x, y are (n)
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    // y = x Phi(x),  Phi(x) = 0.5 (1 + erf(x / sqrt 2))
    y[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v * kInvSqrt2)));
  }
}

void gelu_exact_backward_reference(const float* x, const float* g, float* dx, std::int64_t n) {
  // x, g, dx are (n)
  for (std::int64_t i = 0; i < n; ++i) {
    // y = x Phi(x)  ->  dy/dx = Phi(x) + x phi(x),  phi(x) = e^{-x^2/2} / sqrt(2 pi)
    const double v = x[i];
    const double cdf = 0.5 * (1.0 + std::erf(v * kInvSqrt2));
    const double pdf = kInvSqrt2Pi * std::exp(-0.5 * v * v);
    dx[i] = static_cast<float>(static_cast<double>(g[i]) * (cdf + v * pdf));
  }
}

namespace {
// erf(z), and e^{-z^2} in *gauss, for the portable GELU loops: one piece over the whole range, where erf8
// (activations_avx2.cpp) blends two, because without FMA every operation counts:
//   erf(z) = sign(z) (1 - e^{-z^2} Q(v)),  v = min(|z|, 4) - 2,
// Q of degree 12 fitting erfc(z) e^{z^2} on [0, 4] with weight e^{-z^2}, i.e. minimising erfc's absolute error.
// Past |z| = 4, e^{-z^2} Q < 1.6e-8 rounds the result to +-1. The coefficients were fitted for gradlab with
// mpmath at 40 digits: weighted least squares on 300 Chebyshev points of [0, 4], reweighted by each point's
// error (Lawson's iteration); max erfc error of the fit 8.8e-9. Q runs in Estrin's scheme (short chains).
// The price of one piece: near z = 0 the result is 1 - (a number near 1), accurate to about 2e-7 absolute but
// not relative, which the GELU tolerates (it multiplies erf by x there, and adds 1 to it); the portable loops
// measure within the SIMD kernels' bounds (tests/tensor/test_gelu_exact.cpp). fast_exp_estrin gives 0 from
// z^2 > 87.7 on, so no x e^{-x^2/2} grows back for huge x. NaN stays NaN.
inline float erf_gauss(float z, float* gauss) {
  const float az = std::fabs(z), z2 = z * z;
  const float v = (4.0f < az ? 4.0f : az) - 2.0f, v2 = v * v, v4 = v2 * v2, v8 = v4 * v4;  // NaN az: v NaN
  const float q01 = -0.10679771022774747519f * v + 0.25539603550618670794f;
  const float q23 = -0.015494514352300955558f * v + 0.041782651884371976031f;
  const float q45 = -0.0016324214484403629056f * v + 0.0055018156395162413673f;
  const float q67 = -0.00034882894420617656527f * v + 0.0006929263364508832674f;
  const float q89 = -0.000062259488304279938376f * v + -0.00015598869695398039535f;
  const float q1011 = 0.000034537535377659009984f * v + 0.000057439861554723423276f;
  const float q03 = q01 + q23 * v2, q47 = q45 + q67 * v2, q811 = q89 + q1011 * v2;
  const float q = (q03 + q47 * v4) + (q811 + 7.4776827500701732762e-6f * v4) * v8;
  const float e = fast_exp_estrin(-z2);
  *gauss = e;
  return std::copysign(1.0f - e * q, z);
}
}  // namespace

void gelu_exact_forward_portable(const float* x, float* y, std::int64_t n) {
  // x, y are (n):  y = x Phi(x),  Phi(x) = 0.5 + 0.5 erf(x / sqrt 2)
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float gauss;
    const float cdf = 0.5f + 0.5f * erf_gauss(v * static_cast<float>(kInvSqrt2), &gauss);
    y[i] = v * cdf;
  }
}

void gelu_exact_backward_portable(const float* x, const float* g, float* dx, std::int64_t n) {
  // x, g, dx are (n):  dx = g (Phi(x) + x phi(x)),  phi(x) = e^{-x^2/2} / sqrt(2 pi)
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    float gauss;  // e^{-z^2} with z = x / sqrt 2, that is e^{-x^2/2}
    const float cdf = 0.5f + 0.5f * erf_gauss(v * static_cast<float>(kInvSqrt2), &gauss);
    const float pdf = static_cast<float>(kInvSqrt2Pi) * gauss;
    dx[i] = g[i] * (cdf + v * pdf);
  }
}

void gelu_exact_forward(const float* x, float* y, std::int64_t n) {
  if (n < 0 || (n > 0 && (!x || !y)))
    throw_error("gelu_exact_forward: got n = ", n, ", expected n >= 0 and non-null x, y");
  parallel_ranges(n, 1, [&](std::int64_t i0, std::int64_t i1) {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
    if (use_avx2()) return gelu_exact_forward_avx2(x + i0, y + i0, i1 - i0);
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
    if (use_neon()) return gelu_exact_forward_neon(x + i0, y + i0, i1 - i0);
#endif
    gelu_exact_forward_portable(x + i0, y + i0, i1 - i0);
  });
}

void gelu_exact_backward(const float* x, const float* g, float* dx, std::int64_t n) {
  if (n < 0 || (n > 0 && (!x || !g || !dx)))
    throw_error("gelu_exact_backward: got n = ", n, ", expected n >= 0 and non-null x, g, dx");
  parallel_ranges(n, 1, [&](std::int64_t i0, std::int64_t i1) {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
    if (use_avx2()) return gelu_exact_backward_avx2(x + i0, g + i0, dx + i0, i1 - i0);
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
    if (use_neon()) return gelu_exact_backward_neon(x + i0, g + i0, dx + i0, i1 - i0);
#endif
    gelu_exact_backward_portable(x + i0, g + i0, dx + i0, i1 - i0);
  });
}

}  // namespace gradlab::kernels
