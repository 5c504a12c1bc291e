#pragma once
// Float32 activation kernels on contiguous arrays, the hot elementwise work of a GPT step.
// AVX2+FMA versions (activations_avx2.cpp) run when use_avx2(); the portable loops are the reference and
// the fallback. Both use the fast_exp/fast_tanh algorithm of tensor/fastmath.h.
#include <cstdint>
#include <functional>

namespace gradlab::kernels {

// ---- splitting elementwise and row-wise work over the worker pool (tensor/threads.h) ----------------------
// Arrays below this many elements stay on the calling thread: waking a worker would cost more than it saves.
constexpr std::int64_t kParallelMinElements = 32 * 1024;

// Items 0..n-1 of item_size floats each (1 for elementwise work, C for rows): runs body(begin, end) on
// consecutive ranges covering [0, n), one range per thread, on up to max_threads() threads when
// n * item_size >= kParallelMinElements, else body(0, n) on the caller. For elementwise work (item_size 1)
// range boundaries fall on multiples of 16 floats (a cache line), so a kernel's 8-wide vector loop leaves
// the same scalar tail as a serial call: results are bit-identical for every thread count.
void parallel_ranges(std::int64_t n, std::int64_t item_size,
                     const std::function<void(std::int64_t begin, std::int64_t end)>& body);

// ---- GELU (tanh approximation) ------------------------------------------------------------------------
// The two entry points split large arrays over the worker pool (parallel_ranges).
// y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))        x, y are (n)
void gelu_forward(const float* x, float* y, std::int64_t n);
// dx = g * d gelu(x)/dx                                          x, g, dx are (n)
void gelu_backward(const float* x, const float* g, float* dx, std::int64_t n);

void gelu_forward_portable(const float* x, float* y, std::int64_t n);
void gelu_backward_portable(const float* x, const float* g, float* dx, std::int64_t n);
void gelu_forward_avx2(const float* x, float* y, std::int64_t n);
void gelu_backward_avx2(const float* x, const float* g, float* dx, std::int64_t n);

}  // namespace gradlab::kernels
