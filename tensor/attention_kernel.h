#pragma once
// Scaled dot-product attention kernels on raw float32 arrays, causal or StableMask, optional ALiBi.
//
// q, k, v, o are (B, H, T, D) (contiguous, or strided views for the fused kernel). For query row i and key j <= i the score is
//     a_ij = scale * q_i . k_j  -  slope_h * (i - j)          (ALiBi term only when slopes are given)
// and with the optional sink logit tau_i (StableMask, nn/stablemask.h; -inf = no sink):
//     Attn_ij = e^{a_ij} / ( sum_{k<=i} e^{a_ik} + e^{tau_i} ),   Attn_ij = 0 for j > i
//     O_i     = sum_j Attn_ij v_j,    LSE_i = logaddexp(logsumexp_{k<=i} a_ik, tau_i)
// The sink is a key whose value vector is 0, so the backward is the ordinary softmax backward with
// D_i = dO_i . O_i (docs/stablemask.md section 3). The fused kernel also takes null-kv's null key (Bias below):
// its logit n_i joins the max, the sum and LSE_i, and its value adds P_null,i v0 to O_i, P_null,i = e^{n_i - LSE_i}
// (docs/sink_remedies.md#null-key-and-value). RoPE is applied to q and k before these kernels.
// i and j count from the first row of this call; under a sliding window or a KV cache only tau depends on the
// absolute position (stablemask_tau_table's first_row), ALiBi only on i - j.
//
// Two implementations of the same function:
// - materialized_*: materializes the (B, H, T, T) probabilities. Plain loops over rows and keys; the source of
//   attention heatmaps and the yardstick for the fused kernel in the tests.
// - flash_*: fused and tiled (FlashAttention-2 style). Query tiles x key tiles with an online softmax; stores
//   only O and LSE (B, H, T). The backward recomputes the probabilities tile by tile from Q, K and LSE.
//   Scratch memory is a few tiles per thread plus one float per row: linear in T. The masked triangle of a
//   diagonal tile pair is skipped (its terms are exact zeros), which at T <= 64 halves the work.
// All are parallel over (batch, head[, tile]) on the shared pool and give bit-identical results for any thread
// count. Gradients are written, not accumulated (dq, dk, dv are overwritten).
//
// The materialized kernels take contiguous (B, H, T, D) arrays. The fused kernel also takes strided views, so it
// can read q, k, v straight out of c_attn's (B, T, 3C) output and write into (B, T, C) and (B, T, 3C) buffers
// without copies; the results are the same bits as with contiguous arrays.
#include <cstdint>

namespace gradlab::attention {

struct Geometry {
  std::int64_t B, H, T, D;  // all >= 1
};

struct Bias {
  float scale;                          // usually 1/sqrt(D)
  const float* tau = nullptr;           // (H, T) sink logit per head and query row (-inf = no sink); nullptr = plain causal
  const float* alibi_slopes = nullptr;  // (H): a_ij += -slope_h * (i - j); nullptr = no ALiBi
  // (H, D) each, or both nullptr: null-kv's learned key k0_h and value v0_h, one more key that every query sees,
  // with logit n_i = scale * q_i . k0_h (no ALiBi, no mask) and a value that is not 0. Fused kernel only.
  const float* null_k = nullptr;
  const float* null_v = nullptr;
};

// The gradients of the bias inputs, written by flash_backward when given (nullptr = not wanted):
//   d_tau (H, T): dL/dtau_hi = -sum_b P_sink(b,h,i) D_bhi, P_sink = e^{tau_hi - LSE_bhi}, D = dO . O (learned-sink,
//                 docs/sink_remedies.md#the-gradient-of-tau); needs bias.tau
//   d_k, d_v (H, D): the null key's and value's, summed over the batch and the rows; needed exactly when bias
//                 has a null key
struct BiasGrads {
  float* d_tau = nullptr;
  float* d_k = nullptr;
  float* d_v = nullptr;
};

// Where a (B, H, T, D) operand lies in memory: element (b, h, t, d) is at data[b*batch + h*head + t*row + d].
// The D floats of one (b, h, t) row are contiguous; rows must not overlap.
struct Strides {
  std::int64_t batch, head, row;
};
struct ConstView {
  const float* data;
  Strides strides;
};
struct View {
  float* data;
  Strides strides;
};
// Contiguous (B, H, T, D): {H*T*D, T*D, D}.
Strides contiguous_strides(const Geometry& g);
// Heads side by side along the rows of a (B, T, row_width) array, head h at column h*D (plus the view's own
// offset): {T*row_width, D, row_width}. c_attn's output (B, T, 3C) holds q at column 0, k at C, v at 2C.
Strides packed_strides(const Geometry& g, std::int64_t row_width);

// probs is (B, H, T, T), written in full (0 above the diagonal); o = probs @ v is (B, H, T, D).
void materialized_forward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v,
                       float* probs, float* o);
// probs from materialized_forward; d_o is (B, H, T, D); dq, dk, dv (B, H, T, D) are overwritten.
void materialized_backward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v,
                        const float* probs, const float* d_o, float* dq, float* dk, float* dv);

// o is (B, H, T, D), lse is (B, H, T) (natural log, sink included).
void flash_forward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v, float* o,
                   float* lse);
// o and lse from flash_forward; dq, dk, dv are overwritten, and so are bias_grads' arrays (BiasGrads above).
void flash_backward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v,
                    const float* o, const float* lse, const float* d_o, float* dq, float* dk, float* dv,
                    BiasGrads bias_grads = {});

// The same two kernels on strided views (lse stays contiguous (B, H, T)). Outputs must not overlap the inputs
// or each other; with packed_strides, dq, dk, dv fill one (B, T, 3C) gradient completely (every element written
// exactly once).
void flash_forward(const Geometry& g, const Bias& bias, ConstView q, ConstView k, ConstView v, View o, float* lse);
void flash_backward(const Geometry& g, const Bias& bias, ConstView q, ConstView k, ConstView v, ConstView o,
                    const float* lse, ConstView d_o, View dq, View dk, View dv, BiasGrads bias_grads = {});

// Run the portable inner loops even where AVX2 or NEON ones are available (process-wide; for the tests and
// bench_portable, which compare the two in one process). Do not flip it while another thread runs attention.
void set_force_portable(bool on);
bool force_portable();

// Tile sizes of the fused kernel (query rows x keys per tile), exposed so that tests can aim at the edges.
inline constexpr std::int64_t kFlashTileQ = 64;
inline constexpr std::int64_t kFlashTileK = 64;

namespace detail {
// Inner loops shared by both implementations, portable, AVX2 (attention_kernel_avx2.cpp) and NEON versions.
// The portable ones are plain C++ the compiler vectorizes (register-blocked gemms, fast_exp).
// C (M x N, row stride ldc) += A (M x K, lda) * B (K x N, ldb), each C element summed in k order.
void gemm_acc_portable(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                       const float* B, std::int64_t ldb, float* C, std::int64_t ldc);
// C (M x N, ldc) += A^T B with A stored (K x M, lda): the transposed tile is read in place, never copied.
void gemm_tn_acc_portable(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                          const float* B, std::int64_t ldb, float* C, std::int64_t ldc);
float dot_portable(const float* a, const float* b, std::int64_t n);
void axpy_portable(float alpha, const float* x, float* y, std::int64_t n);  // y += alpha * x
void exp_portable(float* x, std::int64_t n);  // x = e^x in place (fastmath.h's fast_exp_estrin: rel. error < 3e-7)
// dst (D x n, row stride ldd) = transpose of src (n x D, row stride lds): dst[d*ldd + c] = src[c*lds + d].
void transpose_portable(const float* src, std::int64_t lds, std::int64_t n, std::int64_t D, float* dst,
                        std::int64_t ldd);
#ifdef GRADLAB_HAVE_AVX2_KERNELS
void gemm_acc_avx2(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                   const float* B, std::int64_t ldb, float* C, std::int64_t ldc);
void gemm_tn_acc_avx2(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                      const float* B, std::int64_t ldb, float* C, std::int64_t ldc);
float dot_avx2(const float* a, const float* b, std::int64_t n);
void axpy_avx2(float alpha, const float* x, float* y, std::int64_t n);
void exp_avx2(float* x, std::int64_t n);  // polynomial e^x, relative error < 4e-7; -inf -> 0
void transpose_avx2(const float* src, std::int64_t lds, std::int64_t n, std::int64_t D, float* dst,
                    std::int64_t ldd);  // in 8 x 8 register blocks
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
// The NEON versions (attention_kernel_neon.cpp, aarch64 only): same contracts, 4-float vectors.
void gemm_acc_neon(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                   const float* B, std::int64_t ldb, float* C, std::int64_t ldc);
void gemm_tn_acc_neon(std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
                      const float* B, std::int64_t ldb, float* C, std::int64_t ldc);
float dot_neon(const float* a, const float* b, std::int64_t n);
void axpy_neon(float alpha, const float* x, float* y, std::int64_t n);
void exp_neon(float* x, std::int64_t n);  // the AVX2 polynomial on 4 lanes, same limits
void transpose_neon(const float* src, std::int64_t lds, std::int64_t n, std::int64_t D, float* dst,
                    std::int64_t ldd);  // in 4 x 4 register blocks
#endif
}  // namespace detail

}  // namespace gradlab::attention
