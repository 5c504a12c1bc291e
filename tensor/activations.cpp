#include "tensor/activations.h"

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
    gelu_backward_portable(x + i0, g + i0, dx + i0, i1 - i0);
  });
}

}  // namespace gradlab::kernels
