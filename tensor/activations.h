#pragma once
// Float32 activation kernels on contiguous arrays, the hot elementwise work of a GPT step.
// AVX2+FMA versions (activations_avx2.cpp) run when use_avx2(), NEON ones on aarch64; the portable loops are
// the fallback, plain float code that the compiler vectorizes with what the target has (SSE2 on baseline
// x86-64). The tanh GELU: fast_tanh's algorithm in the SIMD kernels, its logistic form on fast_exp_estrin in
// the portable loops (tensor/fastmath.h). The exact (erf) GELU: a polynomial erf, two pieces in the SIMD
// kernels (see erf_avx2), one in the portable loops (activations.cpp); the *_reference loops (std::erf in
// double) are what the tests hold them all against.
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

// ---- GELU (exact, erf form: PyTorch's nn.GELU(), nanoGPT's MLP) ---------------------------------------
// Phi(x) = 0.5 (1 + erf(x / sqrt 2)) is the standard normal CDF, phi(x) = exp(-x^2/2) / sqrt(2 pi) its density.
// y = x Phi(x)                                                   x, y are (n)
void gelu_exact_forward(const float* x, float* y, std::int64_t n);
// dx = g * (Phi(x) + x phi(x))                                   x, g, dx are (n)
void gelu_exact_backward(const float* x, const float* g, float* dx, std::int64_t n);

// The reference: each element computed in double with std::erf/std::exp, rounded once to float.
void gelu_exact_forward_reference(const float* x, float* y, std::int64_t n);
void gelu_exact_backward_reference(const float* x, const float* g, float* dx, std::int64_t n);
// The portable kernels: plain float loops that vectorize, on a one-piece polynomial erf (activations.cpp).
void gelu_exact_forward_portable(const float* x, float* y, std::int64_t n);
void gelu_exact_backward_portable(const float* x, const float* g, float* dx, std::int64_t n);
// Eight lanes at a time; the ragged tail runs the same vector code on a padded copy, so every element gets
// the same algorithm whatever its position. Call only when use_avx2().
void gelu_exact_forward_avx2(const float* x, float* y, std::int64_t n);
void gelu_exact_backward_avx2(const float* x, const float* g, float* dx, std::int64_t n);
// The vectorized erf those kernels use, y = erf(x), exposed so tests can hold it against std::erf.
// Measured against std::erf in double: max error 7.2e-8 absolute, 8.4e-8 relative (normal floats), about
// 1.2 ulp; checked in tests/tensor/test_gelu_exact.cpp.
void erf_avx2(const float* x, float* y, std::int64_t n);

// The NEON versions (activations_neon.cpp, aarch64 only; call only when use_neon()): the AVX2 algorithms and
// constants on four lanes, with the same tails (tanh GELU: the portable loop; exact GELU and erf: a padded
// block through the vector code).
void gelu_forward_neon(const float* x, float* y, std::int64_t n);
void gelu_backward_neon(const float* x, const float* g, float* dx, std::int64_t n);
void gelu_exact_forward_neon(const float* x, float* y, std::int64_t n);
void gelu_exact_backward_neon(const float* x, const float* g, float* dx, std::int64_t n);
void erf_neon(const float* x, float* y, std::int64_t n);

}  // namespace gradlab::kernels
