#pragma once
// gradlab's matrix multiply, on raw pointers (no Tensor class), as a ladder a lesson can climb one rung at a time:
//
//   gemm_naive            i-j-k dot products, the reference
//   gemm_reordered        i-k-j, so the innermost loop walks rows of B and C contiguously
//   gemm_blocked          + cache blocking: tiles of A, B and C that stay in cache while they are reused
//   gemm_packed           + BLIS/Goto packing into micro-panels and a register-tiled 6x16 micro-kernel
//                         (AVX2+FMA when use_avx2(), NEON on aarch64, a portable C++ kernel otherwise;
//                         with use_avx512() a 6x32 AVX-512 kernel that takes two 16-column panels at once)
//   gemm_packed_openmp    + threads over blocks of C's rows/columns (never over K): `#pragma omp parallel for`
//   gemm_packed_parallel  + the same blocks on gradlab's own worker pool (tensor/threads.h)
// Both threaded rungs use max_threads() threads. Without OpenMP the openmp rung runs on one thread and the pool
// rung is still threaded.
//
// sgemm() is what the engine calls: the packed rung on the worker pool, with the thread count chosen from the
// problem size. Why the pool and not OpenMP: lesson 04's notes, with the measurements.
//
// Every function computes, row-major,
//     C (M,N) = alpha * op(A) * op(B) + beta * C
// op(A) is (M,K): A is stored (M,K) with row stride lda, or, when trans_a, stored (K,M) with row stride lda.
// op(B) is (K,N): B is stored (K,N) with row stride ldb, or, when trans_b, stored (N,K) with row stride ldb.
// So the forms training needs are: x*W^T (trans_b), dW = dy^T*x (trans_a) and dx = dy*W (neither).
// beta == 0 means C's old contents are ignored (even NaN or Inf); alpha == 0 or K == 0 means C = beta * C and
// A, B are not read. A row stride must be at least the stored width (and at least 1), as in BLAS.
// C must not overlap A or B.
//
// Determinism: for a given problem, the result is bit-for-bit the same for every thread count and between
// sgemm, sgemm_batched, gemm_packed, gemm_packed_openmp and gemm_packed_parallel (threads split the
// rows/columns of C, never K, so every element is summed in the same order). Results may differ between the AVX2 and the portable
// kernel (FMA rounds once, mul+add twice); the NEON and AVX-512 kernels do the AVX2 one's operations (one fma per k,
// in k order, the same epilogue), so they give its bits.
#include <cstdint>

namespace gradlab::gemm {

// The fast path: packed + micro-kernel, threaded when the problem is big enough to pay for it.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// batch independent products: matrix b of A starts at A + b*stride_a (likewise B, C). stride_a or stride_b
// may be 0 to use one operand for every product (broadcast); stride_c must keep the C matrices apart.
// Small products (attention's (B,H,T,d)x(B,H,d,T)) run in parallel across the batch, big ones one at a time
// with threads inside. Same results as calling sgemm once per matrix.
void sgemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                   float beta, float* C, int64_t ldc, int64_t stride_c);

// float64 reference (simple loops, no blocking), used by the autograd for F64 tensors and by the tests.
void dgemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                 int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// The ladder, one function per rung, all with sgemm's signature and validation.
void gemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_reordered(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_packed(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_packed_openmp(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc);
void gemm_packed_parallel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                          int64_t ldc);

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                        int64_t, float, float*, int64_t);

enum class Rung { Naive, Reordered, Blocked, Packed, PackedOpenMP, PackedParallel, Sgemm };

struct RungInfo {
  Rung rung;
  const char* name;         // stable, used in benchmark names: "naive", "reordered", ...
  const char* description;  // one line for a lesson
  GemmFn fn;
};

// The rungs in ladder order, ending with sgemm itself ("sgemm", the dispatching entry point).
inline constexpr int kNumRungs = 7;
const RungInfo* rungs();               // array of kNumRungs entries
const RungInfo& rung_info(Rung rung);  // one entry
// What gemm_packed runs here: "avx512 6x32", "avx2-fma 6x16", "neon 6x16" or "portable 6x16".
const char* micro_kernel_name();
// Force the portable micro-kernel and packing even where AVX2 is available (process-wide; for tests and for a
// lesson comparing the two). Do not flip it while another thread multiplies.
void set_force_portable(bool on);
// Force the AVX2 micro-kernel even where the AVX-512 one would run (process-wide, like set_force_portable; for
// tests and bench_gemm, which time the two side by side). GRADLAB_NO_AVX512=1 does it for a whole run.
void set_force_avx2(bool on);

// Blocking parameters of the packed rungs (exposed for lessons and tests of the edge cases).
inline constexpr int64_t kMR = 6;     // micro-tile rows (register block)
inline constexpr int64_t kNR = 16;    // micro-tile columns (two 8-float AVX registers)
inline constexpr int64_t kMC = 144;   // at most this many rows of A packed at once (stays in L2)
inline constexpr int64_t kKC = 256;   // depth of one packed panel (a B micro-panel stays in L1)
// B is packed for all of K and as many columns as fit in this many floats (16 MB, L3); wider is cut in blocks.
inline constexpr int64_t kPackedBFloats = int64_t(4) << 20;

}  // namespace gradlab::gemm
