#pragma once
// Attention as differentiable ops, in two implementations with one meaning (shared/docs/stablemask.md §3):
//
//   a_ij  = q_i . k_j * scale + bias_ij            (bias: causal -inf above the diagonal, ALiBi)
//   Attn  = softmax over [a_i0 .. a_i(Tk-1), tau_i], then the last (sink) column dropped
//   out_i = sum_j Attn_ij v_j
//
// tau_i = log Z(i) is StableMask's sink logit: one extra key per row whose value vector is 0. Causal
// attention has no sink (tau undefined, or -inf in every row).
//
// attention_materialized builds the (B, H, Tq, Tk) probability matrix from elementary autograd ops: the
// reference, and the source of the heatmaps. attention_fused runs the tiled flash kernel
// (tensor/attention_kernel.h) and never builds a T x T matrix; float32 only, Tq == Tk.
#include <vector>

#include "autograd/var.h"

namespace gradlab {

// q (B,H,Tq,D), k and v (B,H,Tk,D); bias (H,Tq,Tk) additive (with -inf for masked keys); tau (H,Tq) or undefined.
// When probs is not null it receives the attention probabilities (B,H,Tq,Tk) (real keys only).
Var attention_materialized(const Var& q, const Var& k, const Var& v, const Tensor& bias, const Tensor& tau,
                           double scale, Tensor* probs = nullptr);

// q, k, v (B,H,T,D) float32; causal by construction; tau (H,T) float32 or undefined; alibi_slopes (H) or empty.
Var attention_fused(const Var& q, const Var& k, const Var& v, const Tensor& tau, const std::vector<float>& alibi_slopes,
                    double scale);

}  // namespace gradlab
