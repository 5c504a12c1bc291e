#pragma once
// Attention as differentiable ops, in two implementations with one meaning (docs/stablemask.md#sink-logit):
//
//   a_ij  = q_i . k_j * scale + bias_ij            (bias: causal -inf above the diagonal, ALiBi)
//   Attn  = softmax over [a_i0 .. a_i(Tk-1), tau_i], then the last (sink) column dropped
//   out_i = sum_j Attn_ij v_j
//
// tau_i is the attention strategy's sink logit (nn/attention_strategy.h; StableMask's is log Z(i)): one extra
// key per row whose value vector is 0. Causal attention has no sink (tau undefined, or -inf in every row).
//
// attention_materialized builds the (B, H, Tq, Tk) probability matrix from elementary autograd ops: the
// yardstick of the fused op in the tests, and the source of the heatmaps. attention_fused runs the tiled flash kernel
// (tensor/attention_kernel.h) and never builds a T x T matrix; float32 only, Tq == Tk.
#include <vector>

#include "autograd/var.h"

namespace gradlab {

// q (B,H,Tq,D), k and v (B,H,Tk,D); bias (H,Tq,Tk) additive (with -inf for masked keys); tau (H,Tq) or undefined.
// When probs is not null it receives the attention probabilities (B,H,Tq,Tk) (real keys only).
Var attention_materialized(const Var& q, const Var& k, const Var& v, const Tensor& bias, const Tensor& tau,
                           double scale, Tensor* probs = nullptr);

// The same with a differentiable sink logit tau (H,Tq) in q's dtype, or undefined (learned-sink trains it):
// dL/dtau_hi = -sum_b P_sink(b,h,i) * D_bhi, D_i = dO_i . O_i (docs/sink_remedies.md#the-gradient-of-tau).
Var attention_materialized(const Var& q, const Var& k, const Var& v, const Tensor& bias, const Var& tau, double scale,
                           Tensor* probs = nullptr);

// q, k, v (B,H,T,D) float32; causal by construction; tau (H,T) float32 or undefined; alibi_slopes (H) or empty.
Var attention_fused(const Var& q, const Var& k, const Var& v, const Tensor& tau, const std::vector<float>& alibi_slopes,
                    double scale);

// The same fused attention read straight out of c_attn's output, with no split, permute or copy:
// qkv (B,T,3C) float32 holds q, k, v side by side (head h of q at columns h*D.., of k at C + h*D.., of v at
// 2C + h*D.., D = C / n_head); returns y (B,T,C) with head h at columns h*D.. (the heads already re-assembled,
// ready for c_proj). tau (H,T) float32 or undefined; alibi_slopes (H) or empty. The backward writes d(qkv) as
// one fresh (B,T,3C) tensor. Same values, bit for bit, as attention_fused on the split and permuted q, k, v.
Var attention_fused_qkv(const Var& qkv, std::int64_t n_head, const Tensor& tau, const std::vector<float>& alibi_slopes,
                        double scale);
// The two fused ops with a differentiable tau (H,T) float32 (or undefined): its gradient comes from O, dO and
// the row log-sum-exp the backward already has, with no second pass over the keys.
Var attention_fused(const Var& q, const Var& k, const Var& v, const Var& tau, const std::vector<float>& alibi_slopes,
                    double scale);
Var attention_fused_qkv(const Var& qkv, std::int64_t n_head, const Var& tau, const std::vector<float>& alibi_slopes,
                        double scale);
// The same with null-kv's null key and value, null_k and null_v (H,D) float32 each (both undefined = none): one
// more key that every query sees, logit scale * q_i . k0_h, value v0_h (docs/sink_remedies.md#null-key-and-value).
// Equal to attention_materialized with k0, v0 concatenated in front of the keys (bias 0); their gradients sum over
// the batch and the rows.
Var attention_fused_qkv(const Var& qkv, std::int64_t n_head, const Var& tau, const std::vector<float>& alibi_slopes,
                        double scale, const Var& null_k, const Var& null_v);

// Rotary position embedding on c_attn's packed output, so RoPE models keep the no-copy path above:
// qkv (B,T,3C) float32 or float64, laid out as attention_fused_qkv reads it; returns a fresh (B,T,3C) with each
// head of q and of k rotated (rotate-half / GPT-NeoX convention, base 10000, token t at absolute position
// first_position + t) and v copied unchanged. Per head, x = [x1, x2] of D/2 each:
//   out = x * cos + rotate_half(x) * sin,  rotate_half([x1, x2]) = [-x2, x1],  angle_i = pos * 10000^(-2i/D)
// The one RoPE of the engine (every attention path uses it); tests/autograd/test_rope_qkv.cpp keeps the
// composite of elementary ops on split heads as its oracle, equal bit for bit. D must be even.
Var rope_qkv(const Var& qkv, std::int64_t n_head, std::int64_t first_position);

}  // namespace gradlab
