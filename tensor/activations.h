#pragma once
// Float32 activation kernels on contiguous arrays, the hot elementwise work of a GPT step.
// AVX2+FMA versions (activations_avx2.cpp) run when use_avx2(); the portable loops are the reference and
// the fallback. Both use the fast_exp/fast_tanh algorithm of tensor/fastmath.h.
#include <cstdint>

namespace gradlab::kernels {

// ---- GELU (tanh approximation) ------------------------------------------------------------------------
// The two entry points split large arrays over the worker pool (parallel_ranges, tensor/threads.h).
// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))        x, y are (n)
void gelu_forward(const float* x, float* y, std::int64_t n);
// dx = g * d gelu(x)/dx                                          x, g, dx are (n)
void gelu_backward(const float* x, const float* g, float* dx, std::int64_t n);

void gelu_forward_portable(const float* x, float* y, std::int64_t n);
void gelu_backward_portable(const float* x, const float* g, float* dx, std::int64_t n);
void gelu_forward_avx2(const float* x, float* y, std::int64_t n);
void gelu_backward_avx2(const float* x, const float* g, float* dx, std::int64_t n);

}  // namespace gradlab::kernels
