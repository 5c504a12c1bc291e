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

void gelu_forward_portable(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + fast_tanh(kSqrt2OverPi * (v + kCubic * v * v * v)));
  }
}

void gelu_backward_portable(const float* x, const float* g, float* dx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    // u = k (x + c x^3);  d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) k (1 + 3 c x^2)
    const float v = x[i];
    const float t = fast_tanh(kSqrt2OverPi * (v + kCubic * v * v * v));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
    dx[i] = g[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
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

void gelu_exact_forward_portable(const float* x, float* y, std::int64_t n) {
  // x, y are (n)
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    // y = x Phi(x),  Phi(x) = 0.5 (1 + erf(x / sqrt 2))
    y[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v * kInvSqrt2)));
  }
}

void gelu_exact_backward_portable(const float* x, const float* g, float* dx, std::int64_t n) {
  // x, g, dx are (n)
  for (std::int64_t i = 0; i < n; ++i) {
    // y = x Phi(x)  ->  dy/dx = Phi(x) + x phi(x),  phi(x) = e^{-x^2/2} / sqrt(2 pi)
    const double v = x[i];
    const double cdf = 0.5 * (1.0 + std::erf(v * kInvSqrt2));
    const double pdf = kInvSqrt2Pi * std::exp(-0.5 * v * v);
    dx[i] = static_cast<float>(static_cast<double>(g[i]) * (cdf + v * pdf));
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
