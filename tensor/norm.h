#pragma once
// LayerNorm and RMSNorm over the last dimension: the row-wise kernels behind gradlab::layernorm/rmsnorm.
//
// Per row of C values:  mean = sum x / C  (0 for RMSNorm),  rstd = 1 / sqrt(sum (x - mean)^2 / C + eps),
//                       xhat = (x - mean) * rstd,  out = xhat * w + b.
// The forward saves only mean and rstd (one value per row); the backward recomputes xhat from x.
// Backward, with d = g * w:  dx = rstd * (d - mean(d) - xhat * mean(d * xhat))   (mean(d) = 0 for RMSNorm)
//                            dw = sum over rows of g * xhat,  db = sum over rows of g.
//
// The portable loops (double accumulation, any T) are the reference and serve float64; the float32 entry
// points run AVX2 loops when use_avx2() (NEON on aarch64, else the portable float32 rows) and split the rows
// over the worker pool. Results never depend on the
// thread count: rows are independent, and dw/db are summed per fixed chunk of rows, then chunk by chunk.
#include <cstdint>

namespace gradlab::kernels {

// x, out are (rows, C); w, b are (C) (b may be null); mean, rstd are (rows).
template <typename T>
void norm_forward_portable(const T* x, const T* w, const T* b, T* out, T* mean, T* rstd, std::int64_t rows,
                           std::int64_t C, double eps, bool rms);
// g, x, dx are (rows, C); w is (C); mean, rstd are (rows). Writes dx, and dw = sum g * xhat and db = sum g
// over these rows (each (C); db may be null).
template <typename T>
void norm_backward_portable(const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* dx, T* dw, T* db,
                            std::int64_t rows, std::int64_t C, bool rms);

// The same contracts in float32 without SIMD intrinsics: float accumulators, eight partial sums, plain loops the
// compiler vectorizes (SSE2 on baseline x86-64). What the float32 entry points run without AVX2 or NEON.
void norm_forward_f32_portable(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                               std::int64_t rows, std::int64_t C, float eps, bool rms);
void norm_backward_f32_portable(const float* g, const float* x, const float* w, const float* mean, const float* rstd,
                                float* dx, float* dw, float* db, std::int64_t rows, std::int64_t C, bool rms);

// The same contracts, eight floats at a time with float accumulators (norm_avx2.cpp; only when use_avx2()).
void norm_forward_avx2(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                       std::int64_t rows, std::int64_t C, float eps, bool rms);
void norm_backward_avx2(const float* g, const float* x, const float* w, const float* mean, const float* rstd,
                        float* dx, float* dw, float* db, std::int64_t rows, std::int64_t C, bool rms);

// The same again on four lanes (norm_neon.cpp, aarch64 only; only when use_neon()).
void norm_forward_neon(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                       std::int64_t rows, std::int64_t C, float eps, bool rms);
void norm_backward_neon(const float* g, const float* x, const float* w, const float* mean, const float* rstd,
                        float* dx, float* dw, float* db, std::int64_t rows, std::int64_t C, bool rms);

// float32 entry points: AVX2 when use_avx2(), NEON when use_neon(), rows split over up to max_threads()
// workers for large inputs.
void norm_forward(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                  std::int64_t N, std::int64_t C, float eps, bool rms);
void norm_backward(const float* g, const float* x, const float* w, const float* mean, const float* rstd, float* dx,
                   float* dw, float* db, std::int64_t N, std::int64_t C, bool rms);

}  // namespace gradlab::kernels
