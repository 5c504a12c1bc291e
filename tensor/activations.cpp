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
// float64 formula (tests/tensor/test_fastmath.cpp).

void gelu_forward_portable(const float* x, float* y, std::int64_t n) {
  // x, y are (n):  y = x s(2u),  2u = 2k (x + c x^3)
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float z = v * (2.0f * kSqrt2OverPi + (2.0f * kSqrt2OverPi * kCubic) * (v * v));
    // e^{-z} = +inf for z < -88.4 gives v / inf = -0: the limit, with no NaN
    y[i] = v / (1.0f + fast_exp(-z));
  }
}

void gelu_backward_portable(const float* x, const float* g, float* dx, std::int64_t n) {
  // x, g, dx are (n):  d/dx [x s(2u)] = s + 2 x s (1 - s) u',  u' = k (1 + 3 c x^2)
  // With a = e^{-|z|} <= 1 (never overflows) and d = 1 / (1 + a): s(|z|) = d, s(-|z|) = a d, and
  // s (1 - s) = a d^2 for either sign, so no cancellation in 1 - s and no inf * 0.
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i], v2 = v * v;
    const float z = v * (2.0f * kSqrt2OverPi + (2.0f * kSqrt2OverPi * kCubic) * v2);
    const float a = fast_exp(-std::fabs(z));
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
// erf(z), and e^{-z^2} in *gauss: erf8's two pieces and coefficients (activations_avx2.cpp has the fits) in
// plain float code, so a loop of it vectorizes. Both pieces are computed and one is selected, as in the
// vector kernels. Without FMA each multiply-add rounds twice, hence a slightly larger error than erf_avx2
// (tests/tensor/test_gelu_exact.cpp). The vector kernels zero e^{-z^2} for z^2 >= 87; fast_exp gives 0 from
// z^2 > 87.7 on, and below 1.7e-38 before, which no x e^{-x^2/2} can grow back. NaN stays NaN.
inline float erf_gauss(float z, float* gauss) {
  const float az = std::fabs(z), z2 = z * z;
  // |z| < 1: z P(z^2), as az + az (P - 1)
  float p = 7.8538577031041551e-5f;
  p = p * z2 + -8.0101925198704981e-4f;
  p = p * z2 + 5.1883275599296844e-3f;
  p = p * z2 + -2.6853811869089372e-2f;
  p = p * z2 + 1.1283585147031536e-1f;
  p = p * z2 + -3.761262582409362e-1f;
  p = p * z2 + 1.283791657266903e-1f;
  const float small = az + az * p;
  // |z| >= 1: 1 - e^{-z^2} Q(v), v = min(|z|, 4) - 2.5 (written so that a NaN az stays NaN)
  const float v = (4.0f < az ? 4.0f : az) - 2.5f;
  float q = 1.0684321429387194e-4f;
  q = q * v + 2.2506283416838555e-4f;
  q = q * v + 5.4332004621190177e-4f;
  q = q * v + -6.611205443239209e-4f;
  q = q * v + 2.3025031200668662e-3f;
  q = q * v + -8.1322517735636514e-3f;
  q = q * v + 2.4914625740715879e-2f;
  q = q * v + -7.4342186752907787e-2f;
  q = q * v + 2.1080760553366885e-1f;
  const float e = fast_exp(-z2);
  const float large = 1.0f - e * q;
  *gauss = e;
  return std::copysign(az < 1.0f ? small : large, z);
}
}  // namespace

void erf_portable(const float* x, float* y, std::int64_t n) {
  // x, y are (n)
  for (std::int64_t i = 0; i < n; ++i) {
    float gauss;
    y[i] = erf_gauss(x[i], &gauss);
  }
}

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
