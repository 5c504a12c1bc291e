#include "tensor/attention_kernel.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/fastmath.h"
#include "tensor/threads.h"
#include "tensor/vec4.h"

namespace gradlab::attention {

// ---------------------------------------------------------------------------------------------------------
// Portable inner loops: plain C++ that the compiler vectorizes with what the target has (SSE2 on baseline
// x86-64), without reassociating anything: every C element of the gemms is still summed in k order, one
// multiply and one add per k, so blocking changes no bit of the result.

namespace detail {

namespace {

// Element (r, k) of the left operand: A is (R, K) row-major, or stored transposed as (K, R) when TA.
template <bool TA>
inline float a_at(const float* A, std::int64_t lda, std::int64_t r, std::int64_t k) {
  return TA ? A[k * lda + r] : A[r * lda + k];
}

#if defined(__GNUC__)
// The vector extension (tensor/vec4.h), as in gemm.cpp's portable micro-kernel: left to itself the compiler
// vectorizes only the innermost loop and loads and stores C once per k.
// R rows x 4 NV columns of C in registers while k runs (R = 6, NV = 2: 12 of SSE2's 16 registers). The left
// operand comes packed, each element already copied into the 4 lanes of a vector: SSE2 has no broadcast load,
// and a shuffle per element and k would keep the floating-point pipes as busy as the multiplies do.
template <int R, int NV>
inline void gemm_block(std::int64_t K, const v4* a, const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  v4 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = load4(C + r * ldc + 4 * v);
  for (std::int64_t k = 0; k < K; ++k) {
    v4 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = load4(B + k * ldb + 4 * v);
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] += a[k * R + r] * b[v];
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) store4(C + r * ldc + 4 * v, acc[r][v]);
}
#endif

// R rows of C: blocks of 8 and 4 columns, then the last N % 4 columns one at a time (in k order too). The
// vector blocks take k in chunks of kChunk (C goes to memory and back in between, which rounds nothing).
template <bool TA, int R>
void gemm_rows(std::int64_t N, std::int64_t K, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
               float* C, std::int64_t ldc) {
  std::int64_t j = 0;
#if defined(__GNUC__)
  if (N >= 4) {
    constexpr std::int64_t kChunk = 128;
    v4 a[kChunk * R];  // 12 KB for R = 6: stays in L1 while the column blocks reuse it
    for (std::int64_t k0 = 0; k0 < K; k0 += kChunk) {
      const std::int64_t kc = std::min(kChunk, K - k0);
      for (std::int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < R; ++r) {
          const float x = a_at<TA>(A, lda, r, k0 + k);
          a[k * R + r] = v4{x, x, x, x};
        }
      const float* Bk = B + k0 * ldb;
      std::int64_t jb = 0;
      for (; jb + 8 <= N; jb += 8) gemm_block<R, 2>(kc, a, Bk + jb, ldb, C + jb, ldc);
      for (; jb + 4 <= N; jb += 4) gemm_block<R, 1>(kc, a, Bk + jb, ldb, C + jb, ldc);
      j = jb;
    }
  }
#endif
  for (int r = 0; r < R; ++r) {
    float* c = C + r * ldc;
    for (std::int64_t k = 0; k < K; ++k) {
      const float a = a_at<TA>(A, lda, r, k);
      const float* b = B + k * ldb;
      for (std::int64_t jj = j; jj < N; ++jj) c[jj] += a * b[jj];
    }
  }
}

template <bool TA>
void gemm_any(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda, const float* B,
              std::int64_t ldb, float* C, std::int64_t ldc) {
  // row r of the left operand starts at A + r * (TA ? 1 : lda)
  const std::int64_t row_step = TA ? 1 : lda;
  std::int64_t i = 0;
  for (; i + 6 <= M; i += 6) gemm_rows<TA, 6>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
  for (; i + 4 <= M; i += 4) gemm_rows<TA, 4>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
  for (; i < M; ++i) gemm_rows<TA, 1>(N, K, A + i * row_step, lda, B, ldb, C + i * ldc, ldc);
}

}  // namespace

void gemm_acc_portable(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                       const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  // C (M,N) += A (M,K) @ B (K,N)
  gemm_any<false>(M, N, K, A, lda, B, ldb, C, ldc);
}

void gemm_tn_acc_portable(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                          const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  // C (M,N) += A^T @ B with A stored (K,M), B (K,N)
  gemm_any<true>(M, N, K, A, lda, B, ldb, C, ldc);
}

float dot_portable(const float* a, const float* b, std::int64_t n) {
  float sum = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void axpy_portable(float alpha, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void exp_portable(float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) x[i] = fast_exp_estrin(x[i]);  // vectorizes; std::exp is a call per element
}

void transpose_portable(const float* src, std::int64_t lds, std::int64_t n, std::int64_t D, float* dst,
                        std::int64_t ldd) {
  // src (n,D) -> dst (D,n). Writing dst rows in order (and reading src down a column) is about twice as fast
  // as the other way round: stores scattered over D rows stall the store queue, loads do not.
  for (std::int64_t d = 0; d < D; ++d) {
    float* out = dst + d * ldd;
    for (std::int64_t c = 0; c < n; ++c) out[c] = src[c * lds + d];
  }
}

}  // namespace detail

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr std::int64_t TQ = kFlashTileQ;
constexpr std::int64_t TK = kFlashTileK;
// Every key tile a query tile visits then starts at or before the tile's first row, so each row of each
// visited tile has at least one unmasked key (the online softmax never sees an all -inf row).
static_assert(TQ == TK, "the fused kernel assumes square tiles");

// set_force_portable: read once per call, by select_ops.
std::atomic<bool> g_force_portable{false};

// The inner loops, chosen once per call: AVX2+FMA when built in and the CPU has it, NEON on aarch64,
// portable otherwise or when forced.
struct Ops {
  using Gemm = void (*)(std::int64_t, std::int64_t, std::int64_t, const float*, std::int64_t, const float*,
                        std::int64_t, float*, std::int64_t);
  Gemm gemm_acc;     // C += A B
  Gemm gemm_tn_acc;  // C += A^T B
  float (*dot)(const float*, const float*, std::int64_t);
  void (*axpy)(float, const float*, float*, std::int64_t);
  void (*exp)(float*, std::int64_t);
  void (*transpose)(const float*, std::int64_t, std::int64_t, std::int64_t, float*, std::int64_t);
};

Ops select_ops() {
  [[maybe_unused]] const bool forced = g_force_portable.load(std::memory_order_relaxed);
#ifdef GRADLAB_HAVE_AVX2_KERNELS
  if (use_avx2() && !forced)
    return {detail::gemm_acc_avx2, detail::gemm_tn_acc_avx2, detail::dot_avx2, detail::axpy_avx2, detail::exp_avx2,
            detail::transpose_avx2};
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
  if (use_neon() && !forced)
    return {detail::gemm_acc_neon, detail::gemm_tn_acc_neon, detail::dot_neon, detail::axpy_neon, detail::exp_neon,
            detail::transpose_neon};
#endif
  return {detail::gemm_acc_portable, detail::gemm_tn_acc_portable, detail::dot_portable, detail::axpy_portable,
          detail::exp_portable, detail::transpose_portable};
}

struct NamedPointer {
  const char* name;
  const void* ptr;
};

void validate(const char* op, const Geometry& g, const Bias& bias, std::initializer_list<NamedPointer> pointers) {
  if (g.B < 1 || g.H < 1 || g.T < 1 || g.D < 1)
    throw_error(op, ": got geometry (B, H, T, D) = (", g.B, ", ", g.H, ", ", g.T, ", ", g.D,
                "), expected every size >= 1");
  if (!std::isfinite(bias.scale)) throw_error(op, ": got scale = ", bias.scale, ", expected a finite value");
  for (const NamedPointer& p : pointers)
    if (p.ptr == nullptr) throw_error(op, ": got a null pointer for ", p.name);
  if (bias.alibi_slopes != nullptr)
    for (std::int64_t h = 0; h < g.H; ++h)
      if (!std::isfinite(bias.alibi_slopes[h]))
        throw_error(op, ": got ALiBi slope ", bias.alibi_slopes[h], " for head ", h, ", expected a finite value");
  if ((bias.null_k == nullptr) != (bias.null_v == nullptr))
    throw_error(op, ": got a null key without a null value or the other way round, expected both or neither");
  for (const float* p : {bias.null_k, bias.null_v})
    if (p != nullptr)
      for (std::int64_t i = 0; i < g.H * g.D; ++i)
        if (!std::isfinite(p[i]))
          throw_error(op, ": got ", p == bias.null_k ? "null key" : "null value", " element ", p[i], " at (head ",
                      i / g.D, ", ", i % g.D, "), expected finite values");
  if (bias.tau != nullptr)
    for (std::int64_t i = 0; i < g.H * g.T; ++i)
      if (std::isnan(bias.tau[i]) || bias.tau[i] == std::numeric_limits<float>::infinity())
        throw_error(op, ": got sink logit tau = ", bias.tau[i], " at (head ", i / g.T, ", row ", i % g.T,
                    "), expected a finite value or -inf");
}

// null-kv's logit for one query row, the same bits in the forward and the backward
float null_logit(const Ops& ops, const Bias& bias, const float* q_row, const float* k0, std::int64_t D) {
  return bias.scale * ops.dot(q_row, k0, D);
}

float slope_of(const Bias& bias, std::int64_t h) { return bias.alibi_slopes ? bias.alibi_slopes[h] : 0.0f; }
const float* tau_row_of(const Bias& bias, const Geometry& g, std::int64_t h) {
  return bias.tau ? bias.tau + h * g.T : nullptr;
}

// ---------------------------------------------------------------------------------------------------------
// The materialized kernel: one query row at a time, every score, every probability stored.

void materialized_forward_head(const Ops& ops, const Geometry& g, const Bias& bias, std::int64_t h, const float* q,
                            const float* k, const float* v, float* probs, float* o) {
  // q, k, v, o are this head's (T, D); probs is this head's (T, T)
  const std::int64_t T = g.T, D = g.D;
  const float slope = slope_of(bias, h);
  const float* tau = tau_row_of(bias, g, h);
  for (std::int64_t i = 0; i < T; ++i) {
    float* p = probs + i * T;
    const float* qi = q + i * D;
    for (std::int64_t j = 0; j <= i; ++j) p[j] = bias.scale * ops.dot(qi, k + j * D, D) - slope * float(i - j);
    // the sink takes part in the max and the sum, like one more key with value 0
    const float tau_i = tau ? tau[i] : kNegInf;
    float m = tau_i;
    for (std::int64_t j = 0; j <= i; ++j) m = std::max(m, p[j]);
    for (std::int64_t j = 0; j <= i; ++j) p[j] -= m;
    ops.exp(p, i + 1);
    float sum = std::exp(tau_i - m);
    for (std::int64_t j = 0; j <= i; ++j) sum += p[j];
    const float inv = 1.0f / sum;
    for (std::int64_t j = 0; j <= i; ++j) p[j] *= inv;
    for (std::int64_t j = i + 1; j < T; ++j) p[j] = 0.0f;
    float* oi = o + i * D;
    std::fill(oi, oi + D, 0.0f);
    for (std::int64_t j = 0; j <= i; ++j) ops.axpy(p[j], v + j * D, oi, D);
  }
}

void materialized_backward_head(const Ops& ops, const Geometry& g, const Bias& bias, const float* q, const float* k,
                             const float* v, const float* probs, const float* d_o, float* dq, float* dk, float* dv,
                             std::vector<float>& dp) {
  // all (T, D) except probs (T, T); dp is scratch of T floats
  const std::int64_t T = g.T, D = g.D;
  std::fill(dk, dk + T * D, 0.0f);
  std::fill(dv, dv + T * D, 0.0f);
  for (std::int64_t i = 0; i < T; ++i) {
    const float* p = probs + i * T;
    const float* doi = d_o + i * D;
    // dP_ij = dO_i . v_j, and the softmax backward dA_ij = P_ij (dP_ij - sum_k P_ik dP_ik).
    // (The sink's value is 0, so it adds nothing to the sum: this equals dO_i . O_i.)
    float row_dot = 0.0f;
    for (std::int64_t j = 0; j <= i; ++j) {
      dp[j] = ops.dot(doi, v + j * D, D);
      row_dot += p[j] * dp[j];
    }
    float* dqi = dq + i * D;
    std::fill(dqi, dqi + D, 0.0f);
    for (std::int64_t j = 0; j <= i; ++j) {
      const float da = p[j] * (dp[j] - row_dot);
      ops.axpy(bias.scale * da, k + j * D, dqi, D);
      ops.axpy(bias.scale * da, q + i * D, dk + j * D, D);
      ops.axpy(p[j], doi, dv + j * D, D);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The fused kernel's tile helpers. A tile is at most TQ query rows x TK keys; S and P tiles have row stride TK.
// The fused kernel sees one head of an operand as rows of D floats, row t at p + t * ld (ld >= D): the same
// code serves contiguous (B,H,T,D) (ld = D) and the packed (B,T,3C) output of c_attn (ld = 3C).

template <typename F>
struct HeadRows {
  F* p;             // row 0
  std::int64_t ld;  // floats from row t to row t + 1
  F* row(std::int64_t t) const { return p + t * ld; }
};
using InRows = HeadRows<const float>;
using OutRows = HeadRows<float>;

InRows head_of(const ConstView& x, std::int64_t b, std::int64_t h) {
  return {x.data + b * x.strides.batch + h * x.strides.head, x.strides.row};
}
OutRows head_of(const View& x, std::int64_t b, std::int64_t h) {
  return {x.data + b * x.strides.batch + h * x.strides.head, x.strides.row};
}

// Sets rows t0..t0+n-1 of a head (D floats each) to value.
void fill_rows(OutRows x, std::int64_t t0, std::int64_t n, std::int64_t D, float value) {
  for (std::int64_t t = t0; t < t0 + n; ++t) std::fill(x.row(t), x.row(t) + D, value);
}
void scale_rows(OutRows x, std::int64_t t0, std::int64_t n, std::int64_t D, float factor) {
  for (std::int64_t t = t0; t < t0 + n; ++t)
    for (std::int64_t d = 0; d < D; ++d) x.row(t)[d] *= factor;
}

// dst (D, n) with row stride TK (= TQ) = transpose of the n rows of src starting at row t0: a key, value or
// query tile
void transpose_tile(const Ops& ops, InRows src, std::int64_t t0, std::int64_t n, std::int64_t D, float* dst) {
  ops.transpose(src.row(t0), src.ld, n, D, dst, TK);
}

// Which keys of a tile pair are visible: row r of the query tile (absolute i0 + r) sees the keys c with
// j0 + c <= i0 + r. Only the diagonal pair (j0 == i0) is triangular; every other visited pair is full.
struct TilePair {
  std::int64_t i0, rows, j0, cols;
  std::int64_t visible_keys(std::int64_t r) const { return std::clamp<std::int64_t>(i0 + r - j0 + 1, 0, cols); }
  std::int64_t first_row(std::int64_t c) const { return std::clamp<std::int64_t>(j0 + c - i0, 0, rows); }
};

// The products of a tile pair skip its masked triangle: they run in strips of kStrip rows (the AVX2 gemm's
// row block), each strip only as wide or as deep as its rows see. The skipped terms are exact zeros
// (probabilities of masked keys), so every visible value keeps the bits of the full product; only the sign
// of a zero can differ. On the diagonal this halves the work, and at T = 64 the diagonal is all there is.
constexpr std::int64_t kStrip = 6;
std::int64_t round_up8(std::int64_t n, std::int64_t cap) { return std::min(cap, (n + 7) / 8 * 8); }

// C (rows, cols; ldc) = A (rows, K) @ B (K, cols), computed only for the keys each row strip sees (widths
// rounded up to whole vectors of 8); the rest of C is left as it was. A row-major (lda).
void gemm_rows_visible_keys(const Ops& ops, const TilePair& t, std::int64_t K, const float* A, std::int64_t lda,
                            const float* B, std::int64_t ldb, float* C, std::int64_t ldc) {
  for (std::int64_t r0 = 0; r0 < t.rows; r0 += kStrip) {
    const std::int64_t r1 = std::min(t.rows, r0 + kStrip), n = round_up8(t.visible_keys(r1 - 1), t.cols);
    for (std::int64_t r = r0; r < r1; ++r) std::fill(C + r * ldc, C + r * ldc + n, 0.0f);
    ops.gemm_acc(r1 - r0, n, K, A + r0 * lda, lda, B, ldb, C + r0 * ldc, ldc);
  }
}

// Out (rows, N; ldo) += P (rows, cols) @ X (cols, N), each row strip summing only over the keys it sees.
// P is row-major (ldp) or, when p_transposed, stored (cols, rows) with row stride ldp.
void gemm_sum_visible_keys(const Ops& ops, const TilePair& t, bool p_transposed, std::int64_t N, const float* P,
                           std::int64_t ldp, const float* X, std::int64_t ldx, float* out, std::int64_t ldo) {
  for (std::int64_t r0 = 0; r0 < t.rows; r0 += kStrip) {
    const std::int64_t r1 = std::min(t.rows, r0 + kStrip), keys = t.visible_keys(r1 - 1);
    if (keys == 0) continue;
    if (p_transposed)
      ops.gemm_tn_acc(r1 - r0, N, keys, P + r0, ldp, X, ldx, out + r0 * ldo, ldo);
    else
      ops.gemm_acc(r1 - r0, N, keys, P + r0 * ldp, ldp, X, ldx, out + r0 * ldo, ldo);
  }
}

// Out (cols, N; ldo) += P^T @ X with P (rows, cols) row-major (ldp) and X (rows, N): each key strip sums only
// over the rows that see it.
void gemm_sum_visible_rows(const Ops& ops, const TilePair& t, std::int64_t N, const float* P, std::int64_t ldp,
                           const float* X, std::int64_t ldx, float* out, std::int64_t ldo) {
  for (std::int64_t c0 = 0; c0 < t.cols; c0 += kStrip) {
    const std::int64_t c1 = std::min(t.cols, c0 + kStrip), k0 = t.first_row(c0);
    if (k0 == t.rows) continue;
    ops.gemm_tn_acc(c1 - c0, N, t.rows - k0, P + k0 * ldp + c0, ldp, X + k0 * ldx, ldx, out + c0 * ldo, ldo);
  }
}

// S (rows, cols) = scale * Q_tile @ K_tile^T - slope * (i - j), and -inf where j > i.
// Q_tile is rows i0.. of q; kt is the transposed key tile (D, cols) starting at key j0.
void tile_logits(const Ops& ops, std::int64_t D, float scale, float slope, InRows q, const TilePair& t,
                 const float* kt, float* S) {
  gemm_rows_visible_keys(ops, t, D, q.row(t.i0), q.ld, kt, TK, S, TK);  // the rest is set to -inf below
  for (std::int64_t r = 0; r < t.rows; ++r) {
    float* s = S + r * TK;
    const int n_visible = int(t.visible_keys(r));   // keys j <= i
    const float distance0 = float(t.i0 + r - t.j0);  // i - j at c = 0, exact
    for (int c = 0; c < n_visible; ++c) s[c] = scale * s[c] - slope * (distance0 - float(c));
    for (int c = n_visible; c < t.cols; ++c) s[c] = kNegInf;
  }
}

// The same logits transposed: St (cols, rows), row stride TQ, from K_tile (keys j0.. of k) and the transposed
// query tile qt (D, rows). Bit for bit the values of tile_logits (one fma per d, in d order, either way).
void tile_logits_transposed(const Ops& ops, std::int64_t D, float scale, float slope, InRows k, const TilePair& t,
                            const float* qt, float* St) {
  // key strips, each from the first row that sees its first key (rounded down to a whole vector); the rows
  // before are set to -inf below
  for (std::int64_t c0 = 0; c0 < t.cols; c0 += kStrip) {
    const std::int64_t c1 = std::min(t.cols, c0 + kStrip), r0 = t.first_row(c0) / 8 * 8;
    if (r0 >= t.rows) continue;
    for (std::int64_t c = c0; c < c1; ++c) std::fill(St + c * TQ + r0, St + c * TQ + t.rows, 0.0f);
    ops.gemm_acc(c1 - c0, t.rows - r0, D, k.row(t.j0 + c0), k.ld, qt + r0, TQ, St + c0 * TQ + r0, TQ);
  }
  for (std::int64_t c = 0; c < t.cols; ++c) {
    float* s = St + c * TQ;
    const int first_visible = int(t.first_row(c));  // rows i >= j
    const float distance0 = float(t.i0 - t.j0 - c);  // i - j at r = 0, exact
    for (int r = 0; r < first_visible; ++r) s[r] = kNegInf;
    for (int r = first_visible; r < t.rows; ++r) s[r] = scale * s[r] - slope * (distance0 + float(r));
  }
}

// P = exp(S - lse_row) in place: the probabilities, recomputed from the saved row log-sum-exp. Masked
// entries become 0 without an exp (what exp(-inf) gives).
void tile_probs(const Ops& ops, const float* lse, const TilePair& t, float* S) {
  for (std::int64_t r = 0; r < t.rows; ++r) {
    float* s = S + r * TK;
    const std::int64_t n_visible = t.visible_keys(r);
    for (std::int64_t c = 0; c < n_visible; ++c) s[c] -= lse[r];
    ops.exp(s, n_visible);
    std::fill(s + n_visible, s + t.cols, 0.0f);
  }
}

// dS = P * (dP - D_row) in place of dP; 0 for masked keys (whatever dP holds there).
void tile_dscores(const float* P, const float* row_dot, const TilePair& t, float* dP) {
  for (std::int64_t r = 0; r < t.rows; ++r) {
    const std::int64_t n_visible = t.visible_keys(r);
    for (std::int64_t c = 0; c < n_visible; ++c) dP[r * TK + c] = P[r * TK + c] * (dP[r * TK + c] - row_dot[r]);
    std::fill(dP + r * TK + n_visible, dP + r * TK + t.cols, 0.0f);
  }
}

struct TileScratch {
  std::vector<float> kt, vt, s, dp, acc, m, l, row_a, row_b;
  explicit TileScratch(std::int64_t D)
      : kt(D * TK), vt(D * TK), s(TQ * TK), dp(TQ * TK), acc(TQ * D), m(TQ), l(TQ), row_a(TQ), row_b(TQ) {}
};

std::int64_t n_tiles(std::int64_t T, std::int64_t tile) { return (T + tile - 1) / tile; }

// Below about a million multiply-adds a parallel region costs more than it saves (and on a busy machine
// waiting threads make it far worse), so small problems run on one thread. Results do not change.
bool worth_threads(const Geometry& g) { return g.B * g.H * g.T * g.T * g.D / 2 >= (std::int64_t(1) << 20); }

// Runs work(task, scratch) for tasks 0..n-1 on the shared worker pool (tensor/threads.h), handed out one at a
// time (dynamic scheduling); every thread makes its own scratch with make(). Each task writes only what it
// owns, so the result does not depend on the thread count.
template <typename Make, typename Work>
void run_tasks(std::int64_t n, int threads, Make make, Work work) {
  std::atomic<std::int64_t> next{0};
  parallel_run(threads, [&](int, int) {
    auto scratch = make();
    for (std::int64_t t = next.fetch_add(1); t < n; t = next.fetch_add(1)) work(t, scratch);
  });
}

// One query tile of one head: online softmax over the key tiles 0..(diagonal), then the sink.
// The score tile is kept transposed (keys x query rows), so the per-row max, sum and rescale run across
// query rows, in vector lanes, and P @ V reads the transposed tile in place. The query tile is transposed
// once; key and value tiles are used as they lie in memory.
void flash_forward_tile(const Ops& ops, const Geometry& g, const Bias& bias, std::int64_t h, std::int64_t qt,
                        InRows q, InRows k, InRows v, OutRows o, float* lse, TileScratch& w) {
  // q, k, v, o are this head's T rows of D; lse is this head's (T)
  const std::int64_t T = g.T, D = g.D;
  const std::int64_t i0 = qt * TQ, rows = std::min(TQ, T - i0);
  const float slope = slope_of(bias, h);
  const float* tau = tau_row_of(bias, g, h);
  float* acc = w.acc.data();
  float *m = w.m.data(), *l = w.l.data(), *m_new = w.row_a.data(), *rescale = w.row_b.data();
  std::fill(acc, acc + rows * D, 0.0f);
  std::fill(m, m + rows, kNegInf);  // running max of the real logits
  std::fill(l, l + rows, 0.0f);     // running sum of e^(logit - running max)
  transpose_tile(ops, q, i0, rows, D, w.kt.data());
  for (std::int64_t j0 = 0; j0 < i0 + rows; j0 += TK) {
    const TilePair t{i0, rows, j0, std::min(TK, T - j0)};
    float* St = w.s.data();
    tile_logits_transposed(ops, D, bias.scale, slope, k, t, w.kt.data(), St);
    std::copy(m, m + rows, m_new);
    for (std::int64_t c = 0; c < t.cols; ++c)  // the masked rows r < first_row(c) hold -inf
      for (std::int64_t r = t.first_row(c); r < rows; ++r) m_new[r] = std::max(m_new[r], St[c * TQ + r]);
    // m_new is finite: key j0 <= i is never masked. rescale = e^(m - m_new) is 0 on the first tile.
    for (std::int64_t r = 0; r < rows; ++r) rescale[r] = m[r] - m_new[r];
    ops.exp(rescale, rows);
    for (std::int64_t r = 0; r < rows; ++r) l[r] *= rescale[r];
    for (std::int64_t c = 0; c < t.cols; ++c) {
      float* s = St + c * TQ;
      const std::int64_t r0 = t.first_row(c);
      std::fill(s, s + r0, 0.0f);  // masked: e^(-inf) = 0
      for (std::int64_t r = r0; r < rows; ++r) s[r] -= m_new[r];
      ops.exp(s + r0, rows - r0);
      for (std::int64_t r = r0; r < rows; ++r) l[r] += s[r];
    }
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t d = 0; d < D; ++d) acc[r * D + d] *= rescale[r];
    std::copy(m_new, m_new + rows, m);
    gemm_sum_visible_keys(ops, t, true, D, St, TQ, v.row(j0), v.ld, acc, D);  // acc += P_tile @ V_tile
  }
  // The sink: one more logit tau_i with a zero value vector. It joins the max and the sum, not the output.
  const float* k0 = bias.null_k ? bias.null_k + h * D : nullptr;
  const float* v0 = bias.null_v ? bias.null_v + h * D : nullptr;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float tau_i = tau ? tau[i0 + r] : kNegInf;
    const float* a = acc + r * D;
    float* oi = o.row(i0 + r);
    if (k0) {
      // null-kv: the null key's logit n_i joins the max and the sum too, and its value v0 the output
      const float n_i = null_logit(ops, bias, q.row(i0 + r), k0, D);
      const float m_final = std::max({m[r], tau_i, n_i});
      const float real_part = std::exp(m[r] - m_final), null_part = std::exp(n_i - m_final);
      const float l_final = l[r] * real_part + std::exp(tau_i - m_final) + null_part;
      for (std::int64_t d = 0; d < D; ++d) oi[d] = (a[d] * real_part + null_part * v0[d]) / l_final;
      lse[i0 + r] = m_final + std::log(l_final);
      continue;
    }
    const float m_final = std::max(m[r], tau_i);
    const float real_part = std::exp(m[r] - m_final);
    const float l_final = l[r] * real_part + std::exp(tau_i - m_final);
    const float out_scale = real_part / l_final;
    for (std::int64_t d = 0; d < D; ++d) oi[d] = a[d] * out_scale;
    lse[i0 + r] = m_final + std::log(l_final);
  }
}

// The null key's part of the backward, after the real keys' (dq complete): for each row, with
// P_null = e^{n_i - LSE_i} and dS_null = P_null (dO_i . v0 - D_i), the softmax backward of one more key:
//   dq_i += scale dS_null k0,   dk0 += scale dS_null q_i,   dv0 += P_null dO_i
// One task per head owns dk0_h, dv0_h and the head's dq rows in every batch element, summed in (b, i) order.
void null_kv_backward_head(const Ops& ops, const Geometry& g, const Bias& bias, std::int64_t h, ConstView q,
                           ConstView d_o, const float* lse, const float* row_dot, View dq, BiasGrads out) {
  // q, d_o, dq are (B,H,T,D) views; lse, row_dot (B,H,T); out's arrays (H,D)
  const std::int64_t D = g.D;
  const float *k0 = bias.null_k + h * D, *v0 = bias.null_v + h * D;
  float *dk0 = out.d_k + h * D, *dv0 = out.d_v + h * D;
  std::fill(dk0, dk0 + D, 0.0f);
  std::fill(dv0, dv0 + D, 0.0f);
  for (std::int64_t b = 0; b < g.B; ++b) {
    const InRows qh = head_of(q, b, h), gh = head_of(d_o, b, h);
    const OutRows dqh = head_of(dq, b, h);
    const std::int64_t bh = b * g.H + h;
    for (std::int64_t i = 0; i < g.T; ++i) {
      const float p = std::exp(null_logit(ops, bias, qh.row(i), k0, D) - lse[bh * g.T + i]);
      const float ds = p * (ops.dot(gh.row(i), v0, D) - row_dot[bh * g.T + i]);
      ops.axpy(bias.scale * ds, k0, dqh.row(i), D);
      ops.axpy(bias.scale * ds, qh.row(i), dk0, D);
      ops.axpy(p, gh.row(i), dv0, D);
    }
  }
}

// Backward for one (query tile, key tile) pair: recompute P from the saved LSE, then
//   dV_tile += P^T dO_tile,  dS = P * (dO_tile V_tile^T - D_i),  dK_tile += dS^T Q_tile   (dk, dv may be null)
// and leave dS in w.dp for the caller's dQ_tile += dS K_tile. kt and vt are the transposed K and V tiles.
// Every path through the backward computes a pair's dS with exactly this code, so it is the same bits.
void backward_pair(const Ops& ops, std::int64_t D, float scale, float slope, InRows q, InRows d_o, const float* lse,
                   const float* row_dot, const TilePair& t, OutRows dk, OutRows dv, TileScratch& w) {
  // q, d_o, dk, dv are this head's T rows of D; lse, row_dot this head's (T); rows j0.. of dk and dv collect
  float* P = w.s.data();
  tile_logits(ops, D, scale, slope, q, t, w.kt.data(), P);
  tile_probs(ops, lse + t.i0, t, P);
  if (dv.p) gemm_sum_visible_rows(ops, t, D, P, TK, d_o.row(t.i0), d_o.ld, dv.row(t.j0), dv.ld);
  float* dS = w.dp.data();
  gemm_rows_visible_keys(ops, t, D, d_o.row(t.i0), d_o.ld, w.vt.data(), TK, dS, TK);  // the rest: 0 below
  tile_dscores(P, row_dot + t.i0, t, dS);
  if (dk.p) gemm_sum_visible_rows(ops, t, D, dS, TK, q.row(t.i0), q.ld, dk.row(t.j0), dk.ld);
}

// The operands of one head's backward.
struct HeadGrads {
  InRows q, k, v, d_o;
  const float *lse, *row_dot;  // (T) each
  OutRows dq, dk, dv;
};

// Backward of one whole head in one pass: key tiles in increasing order; for each, the query tiles at or
// below the diagonal in increasing order. dK and dV of the key tile are complete when its loop ends;
// dQ of a query tile collects one term per key tile, in increasing key order.
void flash_backward_head(const Ops& ops, const Geometry& g, const Bias& bias, std::int64_t h, const HeadGrads& x,
                         TileScratch& w) {
  const std::int64_t T = g.T, D = g.D;
  const float slope = slope_of(bias, h);
  fill_rows(x.dq, 0, T, D, 0.0f);
  fill_rows(x.dk, 0, T, D, 0.0f);
  fill_rows(x.dv, 0, T, D, 0.0f);
  for (std::int64_t j0 = 0; j0 < T; j0 += TK) {
    const std::int64_t cols = std::min(TK, T - j0);
    transpose_tile(ops, x.k, j0, cols, D, w.kt.data());
    transpose_tile(ops, x.v, j0, cols, D, w.vt.data());
    for (std::int64_t i0 = (j0 / TQ) * TQ; i0 < T; i0 += TQ) {
      const TilePair t{i0, std::min(TQ, T - i0), j0, cols};
      backward_pair(ops, D, bias.scale, slope, x.q, x.d_o, x.lse, x.row_dot, t, x.dk, x.dv, w);
      gemm_sum_visible_keys(ops, t, false, D, w.dp.data(), TK, x.k.row(j0), x.k.ld, x.dq.row(i0), x.dq.ld);  // dQ += dS K
    }
  }
  scale_rows(x.dq, 0, T, D, bias.scale);
  scale_rows(x.dk, 0, T, D, bias.scale);
}

// The same backward split in two passes, for when there are too few heads to keep the threads busy.
// Pass 1: one key tile owns its rows of dK and dV and walks the query tiles, in increasing order.
void flash_backward_key_tile(const Ops& ops, const Geometry& g, const Bias& bias, std::int64_t h, std::int64_t kt,
                             const HeadGrads& x, TileScratch& w) {
  const std::int64_t T = g.T, D = g.D;
  const std::int64_t j0 = kt * TK, cols = std::min(TK, T - j0);
  fill_rows(x.dk, j0, cols, D, 0.0f);
  fill_rows(x.dv, j0, cols, D, 0.0f);
  transpose_tile(ops, x.k, j0, cols, D, w.kt.data());
  transpose_tile(ops, x.v, j0, cols, D, w.vt.data());
  for (std::int64_t i0 = (j0 / TQ) * TQ; i0 < T; i0 += TQ)
    backward_pair(ops, D, bias.scale, slope_of(bias, h), x.q, x.d_o, x.lse, x.row_dot,
                  TilePair{i0, std::min(TQ, T - i0), j0, cols}, x.dk, x.dv, w);
  scale_rows(x.dk, j0, cols, D, bias.scale);
}

// Pass 2: one query tile owns its rows of dQ and walks the key tiles up to the diagonal, in increasing
// order, recomputing dS (the price of not sharing dQ between threads).
void flash_backward_query_tile(const Ops& ops, const Geometry& g, const Bias& bias, std::int64_t h,
                               std::int64_t qt, const HeadGrads& x, TileScratch& w) {
  const std::int64_t T = g.T, D = g.D;
  const std::int64_t i0 = qt * TQ, rows = std::min(TQ, T - i0);
  fill_rows(x.dq, i0, rows, D, 0.0f);
  const OutRows none{nullptr, 0};
  for (std::int64_t j0 = 0; j0 < i0 + rows; j0 += TK) {
    const TilePair t{i0, rows, j0, std::min(TK, T - j0)};
    transpose_tile(ops, x.k, j0, t.cols, D, w.kt.data());
    transpose_tile(ops, x.v, j0, t.cols, D, w.vt.data());
    backward_pair(ops, D, bias.scale, slope_of(bias, h), x.q, x.d_o, x.lse, x.row_dot, t, none, none, w);
    gemm_sum_visible_keys(ops, t, false, D, w.dp.data(), TK, x.k.row(j0), x.k.ld, x.dq.row(i0), x.dq.ld);  // dQ += dS K
  }
  scale_rows(x.dq, i0, rows, D, bias.scale);
}

// A view must hold every (b, h, t) row once, D floats each, with no two rows overlapping (outputs are written
// by several threads; inputs are checked too, since a wrong stride is a bug either way).
void validate_view(const char* op, const char* name, const Geometry& g, const void* data, const Strides& s) {
  if (data == nullptr) throw_error(op, ": got a null pointer for ", name);
  if (s.batch < 0 || s.head < 0 || s.row < 0)
    throw_error(op, ": got strides (batch, head, row) = (", s.batch, ", ", s.head, ", ", s.row, ") for ", name,
                ", expected non-negative strides");
  // Sorted by stride, each dimension must step past everything the smaller ones span.
  std::pair<std::int64_t, std::int64_t> dims[3] = {{s.batch, g.B}, {s.head, g.H}, {s.row, g.T}};
  std::sort(std::begin(dims), std::end(dims));
  std::int64_t span = g.D;  // floats covered by one row
  for (const auto& [stride, size] : dims) {
    if (size == 1) continue;
    if (stride < span)
      throw_error(op, ": got strides (batch, head, row) = (", s.batch, ", ", s.head, ", ", s.row, ") for ", name,
                  " with (B, H, T, D) = (", g.B, ", ", g.H, ", ", g.T, ", ", g.D,
                  "), expected rows of D floats that do not overlap");
    span = stride * (size - 1) + span;
  }
}

// dL/dtau of one head (T): -sum_b P_sink(b,h,i) D_bhi, from the saved LSE and D = dO . O, the sum over b in
// double and in b order. The exps run as one vector call per (b, h) row block.
void sink_logit_grad_head(const Ops& ops, const Geometry& g, const Bias& bias, std::int64_t h, const float* lse,
                          const float* row_dot, float* d_tau, std::vector<float>& p, std::vector<double>& acc) {
  // lse, row_dot are (B,H,T); d_tau is this head's (T); p, acc are scratch of T
  const std::int64_t T = g.T;
  const float* tau = bias.tau + h * T;
  std::fill(acc.begin(), acc.end(), 0.0);
  for (std::int64_t b = 0; b < g.B; ++b) {
    const std::int64_t bh = (b * g.H + h) * T;
    for (std::int64_t i = 0; i < T; ++i) p[i] = tau[i] - lse[bh + i];  // <= 0: LSE includes the sink; -inf: none
    ops.exp(p.data(), T);
    for (std::int64_t i = 0; i < T; ++i) acc[i] += static_cast<double>(p[i]) * row_dot[bh + i];
  }
  for (std::int64_t i = 0; i < T; ++i) d_tau[i] = tau[i] == kNegInf ? 0.0f : static_cast<float>(-acc[i]);
}

// The raw materialized kernels keep to the tau family; null-kv's yardstick is the autograd composite
// (autograd/attention.h), which puts the null key in front of the real ones.
void reject_null_key(const char* op, const Bias& bias) {
  if (bias.null_k != nullptr || bias.null_v != nullptr)
    throw_error(op, ": got a null key and value, expected none (null-kv runs in the fused kernel or the autograd "
                "composite)");
}

}  // namespace

// -----------------------------------------------------------------------------------------------------------

void set_force_portable(bool on) { g_force_portable.store(on, std::memory_order_relaxed); }
bool force_portable() { return g_force_portable.load(std::memory_order_relaxed); }

Strides contiguous_strides(const Geometry& g) { return {g.H * g.T * g.D, g.T * g.D, g.D}; }
Strides packed_strides(const Geometry& g, std::int64_t row_width) { return {g.T * row_width, g.D, row_width}; }

void materialized_forward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v,
                       float* probs, float* o) {
  // q, k, v, o are (B,H,T,D); probs is (B,H,T,T)
  validate("attention materialized_forward", g, bias, {{"q", q}, {"k", k}, {"v", v}, {"probs", probs}, {"o", o}});
  reject_null_key("attention materialized_forward", bias);
  const Ops ops = select_ops();
  const std::int64_t BH = g.B * g.H, TD = g.T * g.D, TT = g.T * g.T;
  run_tasks(BH, worth_threads(g) ? max_threads() : 1, [] { return 0; }, [&](std::int64_t bh, int) {
    materialized_forward_head(ops, g, bias, bh % g.H, q + bh * TD, k + bh * TD, v + bh * TD, probs + bh * TT,
                           o + bh * TD);
  });
}

void materialized_backward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v,
                        const float* probs, const float* d_o, float* dq, float* dk, float* dv) {
  // q, k, v, d_o, dq, dk, dv are (B,H,T,D); probs is (B,H,T,T)
  validate("attention materialized_backward", g, bias,
           {{"q", q}, {"k", k}, {"v", v}, {"probs", probs}, {"d_o", d_o}, {"dq", dq}, {"dk", dk}, {"dv", dv}});
  reject_null_key("attention materialized_backward", bias);
  const Ops ops = select_ops();
  const std::int64_t BH = g.B * g.H, TD = g.T * g.D, TT = g.T * g.T;
  run_tasks(BH, worth_threads(g) ? max_threads() : 1, [&] { return std::vector<float>(g.T); },
            [&](std::int64_t bh, std::vector<float>& dp) {
              materialized_backward_head(ops, g, bias, q + bh * TD, k + bh * TD, v + bh * TD, probs + bh * TT,
                                      d_o + bh * TD, dq + bh * TD, dk + bh * TD, dv + bh * TD, dp);
            });
}

void flash_forward(const Geometry& g, const Bias& bias, ConstView q, ConstView k, ConstView v, View o, float* lse) {
  // q, k, v, o are (B,H,T,D) views; lse is contiguous (B,H,T)
  const char* op = "attention flash_forward";
  validate(op, g, bias, {{"lse", lse}});
  validate_view(op, "q", g, q.data, q.strides);
  validate_view(op, "k", g, k.data, k.strides);
  validate_view(op, "v", g, v.data, v.strides);
  validate_view(op, "o", g, o.data, o.strides);
  const Ops ops = select_ops();
  const std::int64_t BH = g.B * g.H, nq = n_tiles(g.T, TQ);
  // Tasks heaviest first (the last query tiles see the most keys), so dynamic scheduling balances well.
  run_tasks(BH * nq, worth_threads(g) ? max_threads() : 1, [&] { return TileScratch(g.D); },
            [&](std::int64_t task, TileScratch& w) {
              const std::int64_t qt = nq - 1 - task / BH, bh = task % BH, b = bh / g.H, h = bh % g.H;
              flash_forward_tile(ops, g, bias, h, qt, head_of(q, b, h), head_of(k, b, h), head_of(v, b, h),
                                 head_of(o, b, h), lse + bh * g.T, w);
            });
}

void flash_backward(const Geometry& g, const Bias& bias, ConstView q, ConstView k, ConstView v, ConstView o,
                    const float* lse, ConstView d_o, View dq, View dk, View dv, BiasGrads bias_grads) {
  // q, k, v, o, d_o, dq, dk, dv are (B,H,T,D) views; lse is contiguous (B,H,T)
  const char* op = "attention flash_backward";
  validate(op, g, bias, {{"lse", lse}});
  const std::pair<const char*, const ConstView*> inputs[] = {{"q", &q}, {"k", &k}, {"v", &v}, {"o", &o}, {"d_o", &d_o}};
  for (const auto& [name, x] : inputs) validate_view(op, name, g, x->data, x->strides);
  const std::pair<const char*, const View*> outputs[] = {{"dq", &dq}, {"dk", &dk}, {"dv", &dv}};
  for (const auto& [name, x] : outputs) validate_view(op, name, g, x->data, x->strides);
  const bool has_null = bias.null_k != nullptr;
  if (has_null != (bias_grads.d_k != nullptr) || has_null != (bias_grads.d_v != nullptr))
    throw_error(op, has_null ? ": got a null key but no arrays for its gradients, expected d_k and d_v (H, D)"
                             : ": got arrays for null-key gradients but no null key, expected neither");
  if (bias_grads.d_tau != nullptr && bias.tau == nullptr)
    throw_error(op, ": got an array for d_tau but no sink logit tau, expected tau (H, T) with it");
  const Ops ops = select_ops();
  const std::int64_t BH = g.B * g.H, nt = n_tiles(g.T, TQ);
  // D_i = dO_i . O_i, one float per row: the only extra memory besides the per-thread tiles.
  std::vector<float> row_dot(BH * g.T);
  // Every task writes only rows it owns and sums its terms in a fixed order, so the result does not depend
  // on the number of threads. One pass per head when the heads alone balance the threads; otherwise two
  // passes over tiles (dK, dV by key tile, then dQ by query tile). Both give the same bits.
  const int threads = worth_threads(g) ? max_threads() : 1;
  const bool per_head = BH % threads == 0 || BH >= 4 * threads;
  auto head = [&](std::int64_t bh) {
    const std::int64_t b = bh / g.H, h = bh % g.H;
    return HeadGrads{head_of(q, b, h),  head_of(k, b, h),  head_of(v, b, h),  head_of(d_o, b, h),
                     lse + bh * g.T,    row_dot.data() + bh * g.T,
                     head_of(dq, b, h), head_of(dk, b, h), head_of(dv, b, h)};
  };
  // exercise 13.1 begin: the attention backward's D_i = dO_i . O_i, one float per row
  run_tasks(BH, threads, [] { return 0; }, [&](std::int64_t bh, int) {
    const InRows d_oh = head_of(d_o, bh / g.H, bh % g.H), oh = head_of(o, bh / g.H, bh % g.H);
    for (std::int64_t t = 0; t < g.T; ++t) row_dot[bh * g.T + t] = ops.dot(d_oh.row(t), oh.row(t), g.D);
  });
  // exercise 13.1 end
  auto scratch = [&] { return TileScratch(g.D); };
  if (per_head) {
    run_tasks(BH, threads, scratch,
              [&](std::int64_t bh, TileScratch& w) { flash_backward_head(ops, g, bias, bh % g.H, head(bh), w); });
  } else {
    // key tile 0 sees every query tile, the last query tile every key tile: heaviest first
    run_tasks(BH * nt, threads, scratch, [&](std::int64_t task, TileScratch& w) {
      const std::int64_t kt = task / BH, bh = task % BH;
      flash_backward_key_tile(ops, g, bias, bh % g.H, kt, head(bh), w);
    });
    run_tasks(BH * nt, threads, scratch, [&](std::int64_t task, TileScratch& w) {
      const std::int64_t qt = nt - 1 - task / BH, bh = task % BH;
      flash_backward_query_tile(ops, g, bias, bh % g.H, qt, head(bh), w);
    });
  }
  if (has_null)
    run_tasks(g.H, threads, [] { return 0; }, [&](std::int64_t h, int) {
      null_kv_backward_head(ops, g, bias, h, q, d_o, lse, row_dot.data(), dq, bias_grads);
    });
  if (bias_grads.d_tau != nullptr)  // O(B*H*T): one thread
    for (std::int64_t h = 0; h < g.H; ++h) {
      std::vector<float> p(g.T);
      std::vector<double> acc(g.T);
      sink_logit_grad_head(ops, g, bias, h, lse, row_dot.data(), bias_grads.d_tau + h * g.T, p, acc);
    }
}

// The contiguous (B,H,T,D) forms.
void flash_forward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v, float* o,
                   float* lse) {
  const Strides s = contiguous_strides(g);
  flash_forward(g, bias, {q, s}, {k, s}, {v, s}, {o, s}, lse);
}

void flash_backward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v,
                    const float* o, const float* lse, const float* d_o, float* dq, float* dk, float* dv,
                    BiasGrads bias_grads) {
  const Strides s = contiguous_strides(g);
  flash_backward(g, bias, {q, s}, {k, s}, {v, s}, {o, s}, lse, {d_o, s}, {dq, s}, {dk, s}, {dv, s}, bias_grads);
}

}  // namespace gradlab::attention
