#include "tensor/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "tensor/cpu.h"
#include "tensor/error.h"
#ifdef GRADLAB_HAVE_OPENMP
#include <omp.h>
#endif

namespace gradlab::gemm {

// ---------------------------------------------------------------------------------------------------------
// Micro-kernels. One call computes a (kMR, kNR) tile of C from a packed A micro-panel and a packed B micro-panel:
//   Ap is (kc, kMR): Ap[k*kMR + r] = op(A)[i0 + r][p0 + k]
//   Bp is (kc, kNR): Bp[k*kNR + c] = op(B)[p0 + k][j0 + c]
//   C (kMR, kNR) with row stride ldc  =  alpha * Ap^T * Bp + beta * C     (beta == 0: C is not read)
// ---------------------------------------------------------------------------------------------------------
namespace detail {
using MicroKernel = void (*)(int64_t kc, const float* Ap, const float* Bp, float alpha, float beta, float* C,
                             int64_t ldc);
#ifdef GRADLAB_HAVE_AVX2_KERNELS
// Defined in gemm_avx2.cpp (compiled with -mavx2 -mfma); call only when use_avx2().
void micro_kernel_avx2(int64_t kc, const float* Ap, const float* Bp, float alpha, float beta, float* C,
                       int64_t ldc);
void pack_b_trans_avx2(const float* B, int64_t ldb, int64_t j0, int64_t nr, int64_t p0, int64_t kc, float* Bp);
void pack_a_notrans_avx2(const float* A, int64_t lda, int64_t i0, int64_t mr, int64_t p0, int64_t kc, float* Ap);
#endif
}  // namespace detail

namespace {

using detail::MicroKernel;

// The portable micro-kernel: plain C++ that any compiler can vectorise with what the target has.
void micro_kernel_portable(int64_t kc, const float* Ap, const float* Bp, float alpha, float beta, float* C,
                           int64_t ldc) {
  float acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* a = Ap + k * kMR;
    const float* b = Bp + k * kNR;
    for (int64_t r = 0; r < kMR; ++r)
      for (int64_t c = 0; c < kNR; ++c) acc[r][c] += a[r] * b[c];
  }
  for (int64_t r = 0; r < kMR; ++r) {
    float* crow = C + r * ldc;
    for (int64_t c = 0; c < kNR; ++c)
      crow[c] = beta == 0.0f ? alpha * acc[r][c] : alpha * acc[r][c] + beta * crow[c];
  }
}

bool g_force_portable = false;

MicroKernel select_micro_kernel() {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
  if (use_avx2() && !g_force_portable) return detail::micro_kernel_avx2;
#endif
  return micro_kernel_portable;
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
void reordered_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
  const int64_t b_row = trans_b ? 1 : ldb, b_col = trans_b ? ldb : 1;
  scale_c(M, N, beta, C, ldc);
  for (int64_t i = 0; i < M; ++i) {
    float* crow = C + i * ldc;
    for (int64_t k = 0; k < K; ++k) {
      const float a = alpha * A[i * a_row + k * a_col];
      const float* brow = B + k * b_row;
      if (b_col == 1)
        for (int64_t j = 0; j < N; ++j) crow[j] += a * brow[j];
      else
        for (int64_t j = 0; j < N; ++j) crow[j] += a * brow[j * b_col];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Rung 3: cache blocking. A (kBlockK, kBlockN) tile of B (128 KB) stays in L2 while every row of A passes over
// it, instead of all of B streaming from memory once per row of C.
// ---------------------------------------------------------------------------------------------------------
constexpr int64_t kBlockK = 128, kBlockN = 256;

void blocked_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
  const int64_t b_row = trans_b ? 1 : ldb, b_col = trans_b ? ldb : 1;
  scale_c(M, N, beta, C, ldc);
  for (int64_t j0 = 0; j0 < N; j0 += kBlockN) {
    const int64_t j1 = std::min(N, j0 + kBlockN);
    for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
      const int64_t k1 = std::min(K, k0 + kBlockK);
      for (int64_t i = 0; i < M; ++i) {
        float* crow = C + i * ldc;
        for (int64_t k = k0; k < k1; ++k) {
          const float a = alpha * A[i * a_row + k * a_col];
          const float* brow = B + k * b_row;
          if (b_col == 1)
            for (int64_t j = j0; j < j1; ++j) crow[j] += a * brow[j];
          else
            for (int64_t j = j0; j < j1; ++j) crow[j] += a * brow[j * b_col];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Rungs 4 and 5: BLIS/Goto packed GEMM.
//   for jc in N by kNC:              B block (kc, nc) packed once, shared by all threads (L3)
//     for pc in K by kc:
//       pack B block into kNR-wide micro-panels
//       for ic in this thread's rows by kMC:    A block (mc, kc) packed into kMR-tall micro-panels (L2)
//         for jr over B micro-panels:           one B micro-panel (kc, kNR) stays in L1
//           for ir over A micro-panels:         the micro-kernel: a (kMR, kNR) tile of C in 12 registers
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

// A tile at the bottom/right edge: run the full kernel on a zero-padded copy, then copy the valid part back.
// The kernel does exactly the same arithmetic per element as for a full tile, so edges change no result.
void edge_tile(MicroKernel kernel, int64_t kc, const float* Ap, const float* Bp, float alpha, float beta, float* C,
               int64_t ldc, int64_t mr, int64_t nr) {
  alignas(64) float tile[kMR * kNR] = {};
  if (beta != 0.0f)
    for (int64_t r = 0; r < mr; ++r) std::memcpy(tile + r * kNR, C + r * ldc, nr * sizeof(float));
  kernel(kc, Ap, Bp, alpha, beta, tile, kNR);
  for (int64_t r = 0; r < mr; ++r) std::memcpy(C + r * ldc, tile + r * kNR, nr * sizeof(float));
}

// Rows [m_begin, m_end) x B micro-panels [q_begin, q_end) of the block (jc, pc), for one thread.
// Ap_buffer is this thread's scratch of kMC*kc floats, Bp the shared packed B block.
void packed_rows(const Problem& p, MicroKernel kernel, bool avx2, int64_t m_begin, int64_t m_end, int64_t jc,
                 int64_t nc, int64_t q_begin, int64_t q_end, int64_t pc, int64_t kc, float beta, const float* Bp,
                 float* Ap_buffer) {
  for (int64_t ic = m_begin; ic < m_end; ic += kMC) {
    const int64_t mc = std::min(kMC, m_end - ic);
    for (int64_t ir = 0; ir < mc; ir += kMR)
      pack_a_panel(p, ic + ir, std::min(kMR, mc - ir), pc, kc, Ap_buffer + ir * kc, avx2);
    for (int64_t q = q_begin; q < q_end; ++q) {
      const int64_t nr = std::min(kNR, nc - q * kNR);
      const float* Bpanel = Bp + q * kNR * kc;
      for (int64_t ir = 0; ir < mc; ir += kMR) {
        const int64_t mr = std::min(kMR, mc - ir);
        float* Ctile = p.C + (ic + ir) * p.ldc + jc + q * kNR;
        const float* Apanel = Ap_buffer + ir * kc;
        if (mr == kMR && nr == kNR)
          kernel(kc, Apanel, Bpanel, p.alpha, beta, Ctile, p.ldc);
        else
          edge_tile(kernel, kc, Apanel, Bpanel, p.alpha, beta, Ctile, p.ldc, mr, nr);
      }
    }
  }
}

// How the threads tile C: a grid of grid_m x grid_n rectangles (grid_m * grid_n == nthreads), whole
// micro-tiles each. Picks the grid with the least work for the busiest thread: its padded rows*columns,
// plus its A packing (each thread packs the A rows it needs, so splitting N repeats that work).
void choose_thread_grid(int64_t M, int64_t N, int nthreads, int& grid_m, int& grid_n) {
  const int64_t tiles_m = ceil_div(M, kMR), tiles_n = ceil_div(N, kNR);
  double best = -1;
  grid_m = nthreads;
  grid_n = 1;
  for (int gm = nthreads; gm >= 1; --gm) {
    if (nthreads % gm != 0) continue;
    const int gn = nthreads / gm;
    const double rows = double(ceil_div(tiles_m, gm) * kMR), cols = double(ceil_div(tiles_n, gn) * kNR);
    const double cost = rows * (cols + 4.0);
    if (best < 0 || cost < best) {
      best = cost;
      grid_m = gm;
      grid_n = gn;
    }
  }
}

// The packed GEMM with up to nthreads OpenMP threads. K is cut in the same blocks whatever the thread count,
// and each element of C is owned by one thread, so the result does not depend on nthreads.
void packed_impl(const Problem& p, int nthreads) {
  const MicroKernel kernel = select_micro_kernel();
  const bool avx2 = kernel != micro_kernel_portable;
  // K in equal blocks of at most kKC (a function of K alone: determinism).
  const int64_t k_blocks = ceil_div(p.K, kKC);
  const int64_t kc_max = ceil_div(p.K, k_blocks);
  const int64_t nc_max = std::min(kNC, ceil_div(p.N, kNR) * kNR);
  float* Bp = tl_pack_b.get(size_t(kc_max * nc_max));

#ifdef GRADLAB_HAVE_OPENMP
  if (omp_in_parallel()) nthreads = 1;  // already inside someone's parallel region: do not oversubscribe
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
#endif
  {
#ifdef GRADLAB_HAVE_OPENMP
    const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
#else
    const int nt = 1, tid = 0;
#endif
    int grid_m, grid_n;
    choose_thread_grid(p.M, p.N, nt, grid_m, grid_n);
    const int tm = tid / grid_n, tn = tid % grid_n;
    const int64_t tiles_m = ceil_div(p.M, kMR);
    const int64_t m_begin = std::min(p.M, tiles_m * tm / grid_m * kMR);
    const int64_t m_end = std::min(p.M, tiles_m * (tm + 1) / grid_m * kMR);
    float* Ap = tl_pack_a.get(size_t(kMC * kc_max));

    for (int64_t jc = 0; jc < p.N; jc += kNC) {
      const int64_t nc = std::min(kNC, p.N - jc);
      const int64_t panels = ceil_div(nc, kNR);
      for (int64_t kb = 0; kb < k_blocks; ++kb) {
        const int64_t pc = kb * kc_max, kc = std::min(kc_max, p.K - pc);
        // Every thread packs its share of B's micro-panels, then all wait until the block is complete.
        for (int64_t q = panels * tid / nt; q < panels * (tid + 1) / nt; ++q)
          pack_b_panel(p, jc + q * kNR, std::min(kNR, nc - q * kNR), pc, kc, Bp + q * kNR * kc, avx2);
#ifdef GRADLAB_HAVE_OPENMP
#pragma omp barrier
#endif
        const float beta = kb == 0 ? p.beta : 1.0f;  // later K blocks accumulate onto the first
        packed_rows(p, kernel, avx2, m_begin, m_end, jc, nc, panels * tn / grid_n, panels * (tn + 1) / grid_n, pc,
                    kc, beta, Bp, Ap);
#ifdef GRADLAB_HAVE_OPENMP
#pragma omp barrier  // nobody repacks B while another thread still reads it
#endif
      }
    }
  }
}

// Below this many multiply-adds a second thread costs more (fork/join, split packing) than it saves.
constexpr int64_t kParallelMinWork = 96 * 96 * 96;

int threads_for(int64_t M, int64_t N, int64_t K) {
  const int avail = max_threads();
  if (avail <= 1 || M * N * K < kParallelMinWork) return 1;
#ifdef GRADLAB_HAVE_OPENMP
  if (omp_in_parallel()) return 1;
#endif
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
  naive_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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

  const int threads = max_threads();
  const bool small = M * N * K < kParallelMinWork * 8;
#ifdef GRADLAB_HAVE_OPENMP
  if (small && batch > 1 && threads > 1 && !omp_in_parallel()) {
    // Many small products: one thread per product, each product single-threaded. Same arithmetic as sgemm.
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t b = 0; b < batch; ++b) {
      float* Cb = C + b * stride_c;
      if (handled_trivially(M, N, K, alpha, beta, Cb, ldc)) continue;
      packed_impl({trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta, Cb, ldc},
                  1);
    }
    return;
  }
#endif
  (void)small;
  (void)threads;
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
    {Rung::PackedParallel, "parallel", "+ OpenMP threads over the rows/columns of C", gemm_packed_parallel},
    {Rung::Sgemm, "sgemm", "the engine's entry point: packed, threads chosen by problem size", sgemm},
};
}  // namespace

const RungInfo* rungs() { return kRungs; }

const RungInfo& rung_info(Rung rung) {
  for (const RungInfo& r : kRungs)
    if (r.rung == rung) return r;
  throw_error("gemm::rung_info: got rung ", int(rung), ", expected one of the ", kNumRungs, " rungs");
}

const char* micro_kernel_name() { return select_micro_kernel() == micro_kernel_portable ? "portable 6x16" : "avx2-fma 6x16"; }

void set_force_portable(bool on) { g_force_portable = on; }

}  // namespace gradlab::gemm
