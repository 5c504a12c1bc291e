#include "tensor/gemm.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>
#include <memory>
#include <thread>
#include <cstdlib>
#include <cstring>

#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/threads.h"
#ifdef GRADLAB_HAVE_OPENMP
#include <omp.h>
#endif

namespace gradlab::gemm {

// ---------------------------------------------------------------------------------------------------------
// Micro-kernels. One call computes a (mr, kNR) tile of C, mr <= kMR, over kc steps of k:
//   C (mr, kNR) with row stride ldc  =  alpha * op(A)-panel * op(B)-panel + beta * C   (beta == 0: C not read)
// A element (r, k) is at A[r*a_rs + k*a_ks]; row k of the B panel (kNR floats) starts at B + k*b_ks.
// Packed panels: a_rs = 1, a_ks = kMR, b_ks = kNR. Small problems pass A and B where they lie (no packing).
// A row's arithmetic depends neither on mr nor on the strides: every path gives the same bits.
// ---------------------------------------------------------------------------------------------------------
namespace detail {
using MicroKernel = void (*)(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                             float alpha, float beta, float* C, int64_t ldc, int64_t mr);
#ifdef GRADLAB_HAVE_AVX2_KERNELS
// Defined in gemm_avx2.cpp (compiled with -mavx2 -mfma); call only when use_avx2().
void micro_kernel_avx2(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                       float alpha, float beta, float* C, int64_t ldc, int64_t mr);
void pack_b_trans_avx2(const float* B, int64_t ldb, int64_t j0, int64_t nr, int64_t p0, int64_t kc, float* Bp);
void pack_a_notrans_avx2(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap);
void pack_a_trans_avx2(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap);
#endif
#ifdef GRADLAB_HAVE_AVX512_KERNELS
// Defined in gemm_avx512.cpp (compiled with -mavx512f -mavx512vl -mfma); call only when use_avx512().
// mr (1..6) rows by nr (1..32) columns straight into C (masked edges): B0 and, when nr > kNR, B1 are two kNR-wide
// B panels, row k at B0 + k*b_ks and B1 + k*b_ks. The AVX2 kernel's arithmetic per element: the same bits.
void micro_kernel_avx512(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B0, const float* B1,
                         int64_t b_ks, float alpha, float beta, float* C, int64_t ldc, int64_t mr, int64_t nr);
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
// Defined in gemm_neon.cpp (aarch64 only); call only when use_neon().
void micro_kernel_neon(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                       float alpha, float beta, float* C, int64_t ldc, int64_t mr);
void pack_b_trans_neon(const float* B, int64_t ldb, int64_t j0, int64_t nr, int64_t p0, int64_t kc, float* Bp);
void pack_a_notrans_neon(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap);
void pack_a_trans_neon(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap);
#endif
}  // namespace detail

namespace {

using detail::MicroKernel;

// The portable micro-kernel: plain C++ that any compiler can vectorise with what the target has. The row
// count and (for packed panels) the strides are compile-time constants, so the loops unroll completely and
// the accumulators can live in registers.
template <int R, bool kPacked>
void portable_rows(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                   float alpha, float beta, float* C, int64_t ldc) {
  if constexpr (kPacked) a_rs = 1, a_ks = kMR, b_ks = kNR;
  // Two passes of 8 columns: 6x8 accumulators fit the 16 registers of SSE2 (6x16 would spill every step).
  constexpr int kHalf = kNR / 2;
  for (int c0 = 0; c0 < kNR; c0 += kHalf) {
    float acc[R][kHalf];
#if defined(__GNUC__)
    // GCC/Clang vector extension (SSE on x86, NEON on ARM): left to itself the compiler vectorises this
    // loop nest across rows with shuffles, 20x slower.
    typedef float v4 __attribute__((vector_size(16)));
    v4 lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = v4{0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t k = 0; k < kc; ++k) {
      const float* a = A + k * a_ks;
      v4 b0, b1;
      std::memcpy(&b0, B + k * b_ks + c0, sizeof(v4));
      std::memcpy(&b1, B + k * b_ks + c0 + 4, sizeof(v4));
      for (int r = 0; r < R; ++r) {
        const float ar = a[r * a_rs];
        lo[r] += ar * b0;
        hi[r] += ar * b1;
      }
    }
    for (int r = 0; r < R; ++r) {
      std::memcpy(&acc[r][0], &lo[r], sizeof(v4));
      std::memcpy(&acc[r][4], &hi[r], sizeof(v4));
    }
#else
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < kHalf; ++c) acc[r][c] = 0.0f;
    for (int64_t k = 0; k < kc; ++k) {
      const float* a = A + k * a_ks;
      const float* b = B + k * b_ks + c0;
      for (int r = 0; r < R; ++r) {
        const float ar = a[r * a_rs];
        for (int c = 0; c < kHalf; ++c) acc[r][c] += ar * b[c];
      }
    }
#endif
    for (int r = 0; r < R; ++r) {
      float* crow = C + r * ldc + c0;
      for (int c = 0; c < kHalf; ++c)
        crow[c] = beta == 0.0f ? alpha * acc[r][c] : alpha * acc[r][c] + beta * crow[c];
    }
  }
}

void micro_kernel_portable(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B, int64_t b_ks,
                           float alpha, float beta, float* C, int64_t ldc, int64_t mr) {
  if (mr == kMR && a_rs == 1 && a_ks == kMR && b_ks == kNR)
    return portable_rows<6, true>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
  switch (mr) {
    case 6: return portable_rows<6, false>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
    case 5: return portable_rows<5, false>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
    case 4: return portable_rows<4, false>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
    case 3: return portable_rows<3, false>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
    case 2: return portable_rows<2, false>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
    default: return portable_rows<1, false>(kc, A, a_rs, a_ks, B, b_ks, alpha, beta, C, ldc);
  }
}

bool g_force_portable = false;
bool g_force_avx2 = false;

// A kernel that writes (mr, nr <= 2 kNR) tiles of C from one or two adjacent B panels, edges included.
using WideKernel = void (*)(int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* B0, const float* B1,
                            int64_t b_ks, float alpha, float beta, float* C, int64_t ldc, int64_t mr, int64_t nr);

struct Kernels {
  MicroKernel narrow;   // (mr, kNR) tiles, one B panel; right edges through a padded copy (edge_tile)
  WideKernel wide;      // when not null, used for every tile instead (two panels at a time)
  bool simd_packing;    // the AVX2/NEON packing routines
};

Kernels select_kernels() {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
  if (use_avx2() && !g_force_portable) {
#ifdef GRADLAB_HAVE_AVX512_KERNELS
    if (use_avx512() && !g_force_avx2) return {detail::micro_kernel_avx2, detail::micro_kernel_avx512, true};
#endif
    return {detail::micro_kernel_avx2, nullptr, true};
  }
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
  if (use_neon() && !g_force_portable) return {detail::micro_kernel_neon, nullptr, true};
#endif
  return {micro_kernel_portable, nullptr, false};
}

// ---------------------------------------------------------------------------------------------------------
// Shared checks and trivial cases.
// ---------------------------------------------------------------------------------------------------------
template <typename T>
void check_args(const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const T* A,
                int64_t lda, const T* B, int64_t ldb, const T* C, int64_t ldc) {
  if (M < 0 || N < 0 || K < 0)
    throw_error(op, ": got M=", M, ", N=", N, ", K=", K, ", expected sizes >= 0");
  // A is stored (M,K), or (K,M) when transposed; its row stride must cover one stored row.
  const int64_t a_width = trans_a ? M : K, b_width = trans_b ? K : N;
  if (lda < std::max<int64_t>(1, a_width))
    throw_error(op, ": got lda=", lda, " for A stored ", trans_a ? "(K,M)" : "(M,K)", " with M=", M, ", K=", K,
                ", expected lda >= ", std::max<int64_t>(1, a_width));
  if (ldb < std::max<int64_t>(1, b_width))
    throw_error(op, ": got ldb=", ldb, " for B stored ", trans_b ? "(N,K)" : "(K,N)", " with K=", K, ", N=", N,
                ", expected ldb >= ", std::max<int64_t>(1, b_width));
  if (ldc < std::max<int64_t>(1, N))
    throw_error(op, ": got ldc=", ldc, " for C (", M, ",", N, "), expected ldc >= ", std::max<int64_t>(1, N));
  if (M > 0 && N > 0 && C == nullptr) throw_error(op, ": got a null C for a (", M, ",", N, ") result");
  if (M > 0 && N > 0 && K > 0 && (A == nullptr || B == nullptr))
    throw_error(op, ": got a null ", A == nullptr ? "A" : "B", " with M=", M, ", N=", N, ", K=", K);
}

// C (M,N) = beta * C, where beta == 0 writes zeros (old NaNs do not survive).
template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  if (beta == T(1)) return;
  for (int64_t i = 0; i < M; ++i) {
    T* crow = C + i * ldc;
    if (beta == T(0))
      std::fill(crow, crow + N, T(0));
    else
      for (int64_t j = 0; j < N; ++j) crow[j] *= beta;
  }
}

// True when no product is needed: empty C, or K == 0 / alpha == 0 (then C = beta * C, A and B unread).
template <typename T>
bool handled_trivially(int64_t M, int64_t N, int64_t K, T alpha, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return true;
  if (K == 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------
// Rung 1: naive. One dot product per element of C, i-j-k. Clear, and slow: the k loop strides down a column
// of B, so every step of it is a cache miss on big matrices.
// ---------------------------------------------------------------------------------------------------------
template <typename T>
void naive_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  // op(A)[i][k] = A[i*a_row + k*a_col], op(B)[k][j] = B[k*b_row + j*b_col]
  const int64_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
  const int64_t b_row = trans_b ? 1 : ldb, b_col = trans_b ? ldb : 1;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      T acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += A[i * a_row + k * a_col] * B[k * b_row + j * b_col];
      T& c = C[i * ldc + j];
      c = beta == T(0) ? alpha * acc : alpha * acc + beta * c;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Rung 2: loop reordering, i-k-j. The inner loop now runs along a row of B and a row of C, contiguous in
// memory (for the non-transposed B), so the compiler vectorises it and the hardware prefetcher keeps up.
// ---------------------------------------------------------------------------------------------------------
// y[0..n) += a * x[j*x_stride] : the inner loop of rungs 2 and 3. With x contiguous the compiler vectorises it
// (restrict: y never overlaps x).
inline void axpy_row(int64_t n, float a, const float* __restrict x, int64_t x_stride, float* __restrict y) {
  if (x_stride == 1)
    for (int64_t j = 0; j < n; ++j) y[j] += a * x[j];
  else
    for (int64_t j = 0; j < n; ++j) y[j] += a * x[j * x_stride];
}

void reordered_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // exercise 04.1 begin: rung 2, loop reordering (i-k-j)
  const int64_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
  const int64_t b_row = trans_b ? 1 : ldb, b_col = trans_b ? ldb : 1;
  scale_c(M, N, beta, C, ldc);
  for (int64_t i = 0; i < M; ++i) {
    float* crow = C + i * ldc;
    for (int64_t k = 0; k < K; ++k) axpy_row(N, alpha * A[i * a_row + k * a_col], B + k * b_row, b_col, crow);
  }
  // exercise 04.1 end
}

// ---------------------------------------------------------------------------------------------------------
// Rung 3: cache blocking. A (kBlockK, kBlockN) tile of B (128 KB) stays in L2 while every row of A passes over
// it, instead of all of B streaming from memory once per row of C.
// ---------------------------------------------------------------------------------------------------------
constexpr int64_t kBlockK = 128, kBlockN = 256;

void blocked_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // exercise 04.2 begin: rung 3, cache blocking
  const int64_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
  const int64_t b_row = trans_b ? 1 : ldb, b_col = trans_b ? ldb : 1;
  scale_c(M, N, beta, C, ldc);
  for (int64_t j0 = 0; j0 < N; j0 += kBlockN) {
    const int64_t j1 = std::min(N, j0 + kBlockN);
    for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
      const int64_t k1 = std::min(K, k0 + kBlockK);
      for (int64_t i = 0; i < M; ++i) {
        float* crow = C + i * ldc;
        for (int64_t k = k0; k < k1; ++k)
          axpy_row(j1 - j0, alpha * A[i * a_row + k * a_col], B + k * b_row + j0 * b_col, b_col, crow + j0);
      }
    }
  }
  // exercise 04.2 end
}

// ---------------------------------------------------------------------------------------------------------
// Rungs 4 and 5: BLIS/Goto packed GEMM.
//   for each column block of B (all of N unless K*N > kPackedBFloats):
//     B is packed into kNR-wide micro-panels for all of K (shared by the threads, read from L3)
//     C is cut in units of rows (and columns when rows are few); threads take units from a counter:
//       for each K block of kc <= kKC:        the unit's rows of A packed into kMR-tall micro-panels (L2)
//         for each B micro-panel:             (kc, kNR), stays in L1
//           for each A micro-panel:           the micro-kernel: a (kMR, kNR) tile of C in 12 registers
// Packing turns every form (NN, NT, TN, TT) into the same contiguous layout, so one kernel serves all, and
// zero-pads the edges so the kernel always runs full tiles.
// ---------------------------------------------------------------------------------------------------------

// A 64-byte aligned, growable scratch buffer. One per thread (thread_local), reused across calls.
struct ScratchBuffer {
  float* data = nullptr;
  size_t capacity = 0;  // floats
  float* get(size_t n) {
    if (n > capacity) {
      std::free(data);
      const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data == nullptr) throw_error("gemm: could not allocate ", bytes, " bytes of packing buffer");
      capacity = bytes / sizeof(float);
    }
    return data;
  }
  ~ScratchBuffer() { std::free(data); }
};
thread_local ScratchBuffer tl_pack_a, tl_pack_b;

struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One A micro-panel: Ap (kc, kMR) holds op(A)[i0 .. i0+mr)[p0 .. p0+kc), rows past mr are zero.
void pack_a_panel(const Problem& p, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap, bool avx2) {
  if (p.trans_a) {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
    if (avx2) {
      detail::pack_a_trans_avx2(p.A, p.lda, i0, mr, p0, kc, Ap);
      return;
    }
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
    if (avx2) {  // "avx2" here means: the SIMD kernel of this build, NEON on aarch64
      detail::pack_a_trans_neon(p.A, p.lda, i0, mr, p0, kc, Ap);
      return;
    }
#endif
    // A stored (K,M): op(A) column k is a contiguous run of A's row p0+k.
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = p.A + (p0 + k) * p.lda + i0;
      float* dst = Ap + k * kMR;
      int64_t r = 0;
      for (; r < mr; ++r) dst[r] = src[r];
      for (; r < kMR; ++r) dst[r] = 0.0f;
    }
    return;
  }
#ifdef GRADLAB_HAVE_AVX2_KERNELS
  if (avx2) {
    detail::pack_a_notrans_avx2(p.A, p.lda, i0, mr, p0, kc, Ap);
    return;
  }
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
  if (avx2) {
    detail::pack_a_notrans_neon(p.A, p.lda, i0, mr, p0, kc, Ap);
    return;
  }
#endif
  // A stored (M,K): read each of the mr rows contiguously, write them interleaved.
  for (int64_t r = 0; r < kMR; ++r) {
    if (r < mr) {
      const float* src = p.A + (i0 + r) * p.lda + p0;
      for (int64_t k = 0; k < kc; ++k) Ap[k * kMR + r] = src[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) Ap[k * kMR + r] = 0.0f;
    }
  }
}

// One B micro-panel: Bp (kc, kNR) holds op(B)[p0 .. p0+kc)[j0 .. j0+nr), columns past nr are zero.
void pack_b_panel(const Problem& p, int64_t j0, int64_t nr, int64_t p0, int64_t kc, float* Bp, bool avx2) {
  if (!p.trans_b) {
    // B stored (K,N): each k is a contiguous run of nr floats.
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = p.B + (p0 + k) * p.ldb + j0;
      float* dst = Bp + k * kNR;
      if (nr == kNR) {
        std::memcpy(dst, src, kNR * sizeof(float));
      } else {
        int64_t c = 0;
        for (; c < nr; ++c) dst[c] = src[c];
        for (; c < kNR; ++c) dst[c] = 0.0f;
      }
    }
    return;
  }
#ifdef GRADLAB_HAVE_AVX2_KERNELS
  if (avx2) {
    detail::pack_b_trans_avx2(p.B, p.ldb, j0, nr, p0, kc, Bp);
    return;
  }
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
  if (avx2) {
    detail::pack_b_trans_neon(p.B, p.ldb, j0, nr, p0, kc, Bp);
    return;
  }
#endif
  // B stored (N,K): op(B) row k is column k of the stored matrix; read stored rows, write transposed.
  for (int64_t c = 0; c < kNR; ++c) {
    if (c < nr) {
      const float* src = p.B + (j0 + c) * p.ldb + p0;
      for (int64_t k = 0; k < kc; ++k) Bp[k * kNR + c] = src[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) Bp[k * kNR + c] = 0.0f;
    }
  }
}

// A tile at the right edge (nr < kNR columns): run the kernel on a zero-padded copy, then copy the valid part
// back. The kernel does exactly the same arithmetic per element as for a full tile, so edges change no result.
void edge_tile(MicroKernel kernel, int64_t kc, const float* A, int64_t a_rs, int64_t a_ks, const float* Bp,
               float alpha, float beta, float* C, int64_t ldc, int64_t mr, int64_t nr) {
  alignas(64) float tile[kMR * kNR] = {};
  if (beta != 0.0f)
    for (int64_t r = 0; r < mr; ++r) std::memcpy(tile + r * kNR, C + r * ldc, nr * sizeof(float));
  kernel(kc, A, a_rs, a_ks, Bp, kNR, alpha, beta, tile, kNR, mr);
  for (int64_t r = 0; r < mr; ++r) std::memcpy(C + r * ldc, tile + r * kNR, nr * sizeof(float));
}

// Threads: the engine's packed GEMM runs on gradlab's worker pool (tensor/threads.h). The ladder's "openmp"
// rung runs the same units under `#pragma omp parallel for` instead, so lesson 04 can time the two.

// Waits politely: a short busy spin, then give the core away (the machine may have fewer free cores than
// threads; a spinning waiter would steal time from the very thread it waits for).
void spin_pause(int& spins) {
  if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    std::this_thread::yield();
  }
}

// Packed B for one column block [jc, jc+nc) and ALL of K: micro-panel (kb, q) holds
// op(B)[kb*kc_max .. +kc)[jc + q*kNR .. +kNR). Each panel is packed by whichever thread needs it first
// (claimed with a compare-and-swap), so there is no barrier between packing and computing.
struct PackedB {
  const Problem* p;
  bool avx2;
  int64_t jc, nc, panels, kc_max, K;
  float* data;                 // k_blocks * panels micro-panels of kc_max*kNR floats
  std::atomic<int>* state;     // per panel: (epoch << 2) | 1 while packing, | 2 when ready
  int epoch;                   // distinguishes this column block from states left by earlier ones

  float* panel(int64_t kb, int64_t q) const { return data + (kb * panels + q) * kc_max * kNR; }

  const float* get(int64_t kb, int64_t q) const {
    std::atomic<int>& s = state[kb * panels + q];
    const int packing = (epoch << 2) | 1, ready = (epoch << 2) | 2;
    int seen = s.load(std::memory_order_acquire);
    if (seen == ready) return panel(kb, q);
    if (seen != packing && s.compare_exchange_strong(seen, packing, std::memory_order_acq_rel)) {
      const int64_t pc = kb * kc_max, kc = std::min(kc_max, K - pc);
      pack_b_panel(*p, jc + q * kNR, std::min(kNR, nc - q * kNR), pc, kc, panel(kb, q), avx2);
      s.store(ready, std::memory_order_release);
      return panel(kb, q);
    }
    int spins = 0;
    while (s.load(std::memory_order_acquire) != ready) spin_pause(spins);
    return panel(kb, q);
  }
};

// One unit of work: rows [r0, r1) x B micro-panels [q0, q1) of a column block, over all of K.
//   for kb over K blocks:             A rows packed into kMR-tall micro-panels (L2)
//     for q over B micro-panels:      one B micro-panel (kc, kNR) stays in L1 (two with the wide kernel)
//       for ir over A micro-panels:   the micro-kernel: a (kMR, kNR) tile of C in 12 registers
//                                     (wide: (kMR, 2 kNR) in 12 zmm registers)
// The first K block applies beta, later ones accumulate (beta = 1): every element of C sees the same
// operations in the same order whichever thread runs the unit, however the units are cut and whichever
// kernel runs. tid of nt only picks the panel a thread starts at (less waiting on the same panel).
void run_unit(const Problem& p, const PackedB& Bp, const Kernels& ks, int64_t k_blocks, int64_t r0, int64_t r1,
              int64_t q0, int64_t q1, int tid, int nt, float* Ap, bool direct) {
  const int64_t rows = r1 - r0;
  // Direct (small problems): A is read in place; so is B when stored (K,N) (a panel row is kNR contiguous
  // floats of a B row), except the zero-padded right-edge panel.
  const int64_t a_rs = direct ? (p.trans_a ? 1 : p.lda) : 1, a_ks = direct ? (p.trans_a ? p.lda : 1) : kMR;
  // The wide kernel takes the panels two at a time (q, q+1); a last odd one goes alone.
  const int64_t step = ks.wide ? 2 : 1, groups = ceil_div(q1 - q0, step), g_start = groups * tid / nt;
  for (int64_t kb = 0; kb < k_blocks; ++kb) {
    const int64_t pc = kb * Bp.kc_max, kc = std::min(Bp.kc_max, p.K - pc);
    if (!direct)
      for (int64_t ir = 0; ir < rows; ir += kMR)
        pack_a_panel(p, r0 + ir, std::min(kMR, rows - ir), pc, kc, Ap + ir * kc, Bp.avx2);
    const float beta = kb == 0 ? p.beta : 1.0f;
    for (int64_t n = 0; n < groups; ++n) {
      const int64_t q = q0 + (g_start + n) % groups * step;
      const int64_t panels = std::min(step, q1 - q), nr = std::min(panels * kNR, Bp.nc - q * kNR);
      const bool b_in_place = direct && !p.trans_b && nr == panels * kNR;
      const float* B0 = b_in_place ? p.B + pc * p.ldb + Bp.jc + q * kNR : Bp.get(kb, q);
      const float* B1 = panels < 2 ? nullptr : b_in_place ? B0 + kNR : Bp.get(kb, q + 1);
      const int64_t b_ks = b_in_place ? p.ldb : kNR;
      for (int64_t ir = 0; ir < rows; ir += kMR) {
        const int64_t mr = std::min(kMR, rows - ir);
        float* Ctile = p.C + (r0 + ir) * p.ldc + Bp.jc + q * kNR;
        const float* Apanel = direct ? p.A + (r0 + ir) * a_rs + pc * a_ks : Ap + ir * kc;
        if (ks.wide)
          ks.wide(kc, Apanel, a_rs, a_ks, B0, B1, b_ks, p.alpha, beta, Ctile, p.ldc, mr, nr);
        else if (nr == kNR)
          ks.narrow(kc, Apanel, a_rs, a_ks, B0, b_ks, p.alpha, beta, Ctile, p.ldc, mr);
        else
          edge_tile(ks.narrow, kc, Apanel, a_rs, a_ks, B0, p.alpha, beta, Ctile, p.ldc, mr, nr);
      }
    }
  }
}

// Problems whose operands fit in L2 together skip packing: it would cost more than it saves.
constexpr int64_t kDirectMaxFloats = 32 * 1024;

// Per-thread scratch for the panel states (reused; grows as needed).
thread_local std::unique_ptr<std::atomic<int>[]> tl_states;
thread_local size_t tl_states_capacity = 0;
thread_local int tl_epoch = 0;

enum class Team { Pool, OpenMP };

// The packed GEMM on up to nthreads threads of the pool (or of an OpenMP team). C is cut in units (row blocks,
// and column blocks when there are few rows) handed out one at a time, so a thread that the OS delays simply
// does less. K is cut in the same blocks whatever the thread count, so the result does not depend on it, nor
// on which team ran it.
void packed_impl(const Problem& p, int nthreads, Team team_kind = Team::Pool) {
  const Kernels kernels = select_kernels();
  const bool avx2 = kernels.simd_packing;
  const int64_t step = kernels.wide ? 2 : 1;  // B panels per kernel call
  // K in equal blocks of at most kKC (a function of K alone: determinism).
  const int64_t k_blocks = ceil_div(p.K, kKC), kc_max = ceil_div(p.K, k_blocks);
  const int64_t k_padded = k_blocks * kc_max;
  const bool direct = p.M * p.K + p.K * p.N <= kDirectMaxFloats;
  const int64_t nc_max = std::min(ceil_div(p.N, kNR), std::max<int64_t>(1, kPackedBFloats / (k_padded * kNR))) * kNR;
  const int64_t panels_max = nc_max / kNR;
  float* Bdata = tl_pack_b.get(size_t(k_padded * nc_max));
  const size_t n_states = size_t(k_blocks * panels_max);
  if (n_states > tl_states_capacity) {
    tl_states.reset(new std::atomic<int>[n_states]);
    for (size_t i = 0; i < n_states; ++i) tl_states[i].store(0);
    tl_states_capacity = n_states;
    tl_epoch = 0;
  }

  // Units: row blocks of whole micro-tiles, as tall as possible (up to kMC rows: each B micro-panel brought
  // into L1 then serves more tiles) while the threads still get equal shares: among counts of units that
  // are multiples of the thread count, take the one whose busiest thread has the fewest tiles.
  const int64_t tiles_m = ceil_div(p.M, kMR), nt = nthreads;
  const int64_t min_units = ceil_div(ceil_div(tiles_m, kMC / kMR), nt) * nt;
  int64_t unit_tiles = 0, busiest = 0;
  for (int64_t units = min_units; units <= min_units + 3 * nt; units += nt) {
    const int64_t tiles = ceil_div(tiles_m, units), actual_units = ceil_div(tiles_m, tiles);
    const int64_t load = ceil_div(actual_units, nt) * tiles;
    if (unit_tiles == 0 || load < busiest) unit_tiles = tiles, busiest = load;
  }
  const int64_t row_units = ceil_div(tiles_m, unit_tiles);
  const int64_t unit_rows = unit_tiles * kMR;
  // When rows alone cannot be shared fairly (few rows), each row block is also cut in nt column blocks.
  const bool split_columns = nt > 1 && double(busiest) > 1.15 * double(tiles_m) / double(nt);

  for (int64_t jc = 0; jc < p.N; jc += nc_max) {
    const int64_t nc = std::min(nc_max, p.N - jc);
    const int64_t panels = ceil_div(nc, kNR);
    const int64_t col_units = split_columns ? std::min(panels, nt) : 1;
    // Column units are cut between pairs of panels when there are enough pairs, else between panels (a unit
    // with an odd count runs its last panel alone).
    const int64_t cut = step == 2 && ceil_div(panels, 2) >= col_units ? 2 : 1, cuts = ceil_div(panels, cut);
    const int64_t units = row_units * col_units;
    if (++tl_epoch >= (1 << 28)) {  // epochs wrap: clear the states
      for (size_t i = 0; i < tl_states_capacity; ++i) tl_states[i].store(0);
      tl_epoch = 1;
    }
    const PackedB Bp{&p, avx2, jc, nc, panels, kc_max, p.K, Bdata, tl_states.get(), tl_epoch};
    std::atomic<int64_t> next_unit{0};
    const int team = int(std::min<int64_t>(nthreads, units));

    // unit u on thread tid of nt; Ap is that thread's A-packing buffer
    auto do_unit = [&](int64_t u, int tid, int nt, float* Ap) {
      const int64_t ru = u / col_units, cu = u % col_units;
      const int64_t r0 = ru * unit_rows, r1 = std::min(p.M, r0 + unit_rows);
      const int64_t q0 = std::min(panels, cut * (cuts * cu / col_units));
      const int64_t q1 = std::min(panels, cut * (cuts * (cu + 1) / col_units));
      run_unit(p, Bp, kernels, k_blocks, r0, r1, q0, q1, tid, nt, Ap, direct);
    };
    if (team_kind == Team::OpenMP) {
      // The textbook form: one parallel loop over the units, handed out one at a time (schedule dynamic).
      // Without OpenMP the pragma is left out and the loop runs on the calling thread.
#ifdef GRADLAB_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
#endif
      for (int64_t u = 0; u < units; ++u) {
#ifdef GRADLAB_HAVE_OPENMP
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int tid = 0, nt = 1;
#endif
        do_unit(u, tid, nt, tl_pack_a.get(size_t(unit_rows * kc_max)));
      }
      continue;
    }
    parallel_run(team, [&](int tid, int nt) {
      float* Ap = tl_pack_a.get(size_t(unit_rows * kc_max));
      for (int64_t u = next_unit.fetch_add(1); u < units; u = next_unit.fetch_add(1)) do_unit(u, tid, nt, Ap);
    });
  }
}

// Below this many multiply-adds a second thread costs more (fork/join, split packing) than it saves.
constexpr int64_t kParallelMinWork = 96 * 96 * 96;

int threads_for(int64_t M, int64_t N, int64_t K) {
  const int avail = max_threads();
  if (avail <= 1 || M * N * K < kParallelMinWork) return 1;
  if (inside_parallel_region()) return 1;
  // At least a few micro-tiles per thread.
  const int64_t tiles = ceil_div(M, kMR) * ceil_div(N, kNR);
  return int(std::max<int64_t>(1, std::min<int64_t>(avail, tiles / 4)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Public entry points.
// ---------------------------------------------------------------------------------------------------------
void gemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("gemm_naive", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (handled_trivially(M, N, K, alpha, beta, C, ldc)) return;
  naive_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void dgemm_naive(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                 int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  check_args("dgemm_naive", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (handled_trivially(M, N, K, alpha, beta, C, ldc)) return;
  // The simple loop order that walks B contiguously: dot products (i-j-k) when B is stored (N,K), i-k-j when
  // it is stored (K,N). Accuracy is that of float64 either way; speed on big matrices differs 10x.
  if (trans_b) {
    naive_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const int64_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
  scale_c(M, N, beta, C, ldc);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) {
      const double a = alpha * A[i * a_row + k * a_col];
      const double* brow = B + k * ldb;
      double* crow = C + i * ldc;
      for (int64_t j = 0; j < N; ++j) crow[j] += a * brow[j];
    }
}

void gemm_reordered(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("gemm_reordered", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (handled_trivially(M, N, K, alpha, beta, C, ldc)) return;
  reordered_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_blocked(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("gemm_blocked", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (handled_trivially(M, N, K, alpha, beta, C, ldc)) return;
  blocked_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_packed(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                 int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("gemm_packed", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (handled_trivially(M, N, K, alpha, beta, C, ldc)) return;
  packed_impl({trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc}, 1);
}

void gemm_packed_parallel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                          int64_t ldc) {
  check_args("gemm_packed_parallel", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (handled_trivially(M, N, K, alpha, beta, C, ldc)) return;
  packed_impl({trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc}, max_threads());
}

void gemm_packed_openmp(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) {
  check_args("gemm_packed_openmp", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (handled_trivially(M, N, K, alpha, beta, C, ldc)) return;
  packed_impl({trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc}, max_threads(), Team::OpenMP);
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("sgemm", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (handled_trivially(M, N, K, alpha, beta, C, ldc)) return;
  packed_impl({trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc}, threads_for(M, N, K));
}

void sgemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                   float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batch < 0) throw_error("sgemm_batched: got batch=", batch, ", expected batch >= 0");
  if (stride_a < 0 || stride_b < 0 || stride_c < 0)
    throw_error("sgemm_batched: got strides (", stride_a, ", ", stride_b, ", ", stride_c,
                "), expected strides >= 0");
  check_args("sgemm_batched", trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (batch == 0 || M == 0 || N == 0) return;
  // Products run concurrently, so two C matrices must never share an element.
  const int64_t c_extent = (M - 1) * ldc + N;
  if (batch > 1 && stride_c < c_extent)
    throw_error("sgemm_batched: got stride_c=", stride_c, " for C (", M, ",", N, ") with ldc=", ldc,
                ", expected stride_c >= ", c_extent, " so that the batch's results do not overlap");

  if (M * N * K < kParallelMinWork * 8 && batch > 1) {
    // Many small products (attention heads): whole products are handed to threads, each product runs on one
    // thread, so the arithmetic is sgemm's (which would run such a product on one thread anyway).
    std::atomic<int64_t> next{0};
    const int64_t total_work = batch * M * N * std::max<int64_t>(K, 1);
    const int wanted = total_work < kParallelMinWork ? 1 : int(std::min<int64_t>(max_threads(), batch));
    parallel_run(wanted, [&](int, int) {
      for (int64_t b = next.fetch_add(1); b < batch; b = next.fetch_add(1)) {
        float* Cb = C + b * stride_c;
        if (handled_trivially(M, N, K, alpha, beta, Cb, ldc)) continue;
        packed_impl({trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta, Cb, ldc},
                    1);
      }
    });
    return;
  }
  for (int64_t b = 0; b < batch; ++b)
    sgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta, C + b * stride_c,
          ldc);
}

// ---------------------------------------------------------------------------------------------------------
// The rung table, for lessons and the benchmark.
// ---------------------------------------------------------------------------------------------------------
namespace {
const RungInfo kRungs[kNumRungs] = {
    {Rung::Naive, "naive", "i-j-k dot products: the reference", gemm_naive},
    {Rung::Reordered, "reordered", "i-k-j: the inner loop walks rows of B and C contiguously", gemm_reordered},
    {Rung::Blocked, "blocked", "+ cache blocking: a tile of B stays in L2 while all rows pass", gemm_blocked},
    {Rung::Packed, "packed", "+ packed panels and a 6x16 register-tiled micro-kernel, 1 thread", gemm_packed},
    {Rung::PackedOpenMP, "openmp", "+ threads: #pragma omp parallel for over blocks of C (never K)", gemm_packed_openmp},
    {Rung::PackedParallel, "parallel", "+ threads: the same blocks on gradlab's worker pool", gemm_packed_parallel},
    {Rung::Sgemm, "sgemm", "the engine's entry point: packed, threads chosen by problem size", sgemm},
};
}  // namespace

const RungInfo* rungs() { return kRungs; }

const RungInfo& rung_info(Rung rung) {
  for (const RungInfo& r : kRungs)
    if (r.rung == rung) return r;
  throw_error("gemm::rung_info: got rung ", int(rung), ", expected one of the ", kNumRungs, " rungs");
}

const char* micro_kernel_name() {
  const Kernels k = select_kernels();
  if (k.wide) return "avx512 6x32";
  return k.narrow == micro_kernel_portable ? "portable 6x16" : use_neon() ? "neon 6x16" : "avx2-fma 6x16";
}

void set_force_portable(bool on) { g_force_portable = on; }

void set_force_avx2(bool on) { g_force_avx2 = on; }

}  // namespace gradlab::gemm
