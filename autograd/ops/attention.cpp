// Attention: the materialized composite (heatmaps, float64, the fused op's yardstick) and the fused flash kernel as one op.
#include "autograd/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "tensor/attention_kernel.h"

namespace gradlab {

Var attention_materialized(const Var& q, const Var& k, const Var& v, const Tensor& bias, const Tensor& tau,
                           double scale, Tensor* probs) {
  return attention_materialized(q, k, v, bias, tau.defined() ? Var::leaf(tau.to(q.dtype())) : Var(), scale, probs);
}

Var attention_materialized(const Var& q, const Var& k, const Var& v, const Tensor& bias, const Var& tau, double scale,
                           Tensor* probs) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || k.shape() != v.shape() || q.size(0) != k.size(0) ||
      q.size(1) != k.size(1) || q.size(3) != k.size(3))
    throw_error("attention: got q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()),
                ", expected q (B,H,Tq,D) and k, v (B,H,Tk,D)");
  const std::int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), Tk = k.size(2);
  if (bias.shape() != Shape{H, Tq, Tk})
    throw_error("attention: got bias ", shape_str(bias.shape()), ", expected (H, Tq, Tk) = ", shape_str({H, Tq, Tk}));
  // scores = q @ k^T * scale + bias            (B,H,Tq,Tk)
  Var scores = add(mul_scalar(matmul(q, transpose(k, -1, -2)), scale), Var::leaf(bias.to(q.dtype())));
  Var att;
  if (tau.defined()) {
    if (tau.shape() != Shape{H, Tq})
      throw_error("attention: got tau ", shape_str(tau.shape()), ", expected (H, Tq) = ", shape_str({H, Tq}));
    if (tau.dtype() != q.dtype())
      throw_error("attention: got tau in ", dtype_name(tau.dtype()), ", expected q's ", dtype_name(q.dtype()));
    // one more key per row with logit tau_i and value 0; softmax over Tk + 1, drop the sink column.
    // The sink column (B,H,Tq,1) is tau broadcast over the batch, so its gradient sums over b.
    Var sink = add(Var::leaf(Tensor::zeros({B, H, Tq, 1}, q.dtype())), reshape(tau, {1, H, Tq, 1}));
    Var with_sink = concat({scores, sink}, -1);
    att = slice(softmax(with_sink), -1, 0, Tk);
  } else {
    att = softmax(scores);
  }
  if (probs) *probs = att.data().contiguous();
  return matmul(att, v);  // (B,H,Tq,D)
}

namespace {

// The per-call bias inputs of the fused kernel, validated once; the backward keeps its own copy:
// tau (H,T) float32 or undefined, ALiBi slopes (H) or empty.
struct FusedBias {
  Tensor tau;
  std::vector<float> slopes;
  float scale;
  Tensor null_k{}, null_v{};  // (H,D) float32 each, or undefined (set after fused_bias)
  attention::Bias get() const {
    return {scale, tau.defined() ? tau.data<float>() : nullptr, slopes.empty() ? nullptr : slopes.data(),
            null_k.defined() ? null_k.data<float>() : nullptr, null_v.defined() ? null_v.data<float>() : nullptr};
  }
};

FusedBias fused_bias(const char* op, const attention::Geometry& geo, const Var& tau_var,
                     const std::vector<float>& alibi_slopes, double scale) {
  const Tensor tau = tau_var.defined() ? tau_var.data() : Tensor();
  if (tau.defined() && tau.shape() != Shape{geo.H, geo.T})
    throw_error(op, ": got tau ", shape_str(tau.shape()), ", expected (H, T) = ", shape_str({geo.H, geo.T}));
  if (!alibi_slopes.empty() && static_cast<std::int64_t>(alibi_slopes.size()) != geo.H)
    throw_error(op, ": got ", alibi_slopes.size(), " ALiBi slopes, expected H = ", geo.H);
  return {tau.defined() ? tau.to(DType::F32).contiguous() : Tensor(),
          alibi_slopes, static_cast<float>(scale)};
}

// dL/dtau (H,T) of the fused ops when only tau needs a gradient (otherwise flash_backward writes it from its own
// D_i): the sink key's value is 0, so its only path to the loss is through the normaliser,
// dL/dtau_hi = -sum_b P_sink(b,h,i) * D_bhi with P_sink = exp(tau_hi - lse_bhi), D_bhi = dO_bhi . O_bhi.
Tensor sink_logit_grad(const attention::Geometry& geo, const Tensor& tau, const float* lse, attention::ConstView o,
                       attention::ConstView d_o) {
  Tensor d_tau = Tensor::zeros({geo.H, geo.T});
  const float* t = tau.data<float>();
  float* out = d_tau.data<float>();
  for (std::int64_t h = 0; h < geo.H; ++h)
    for (std::int64_t i = 0; i < geo.T; ++i) {
      const float ti = t[h * geo.T + i];
      if (ti == -std::numeric_limits<float>::infinity()) continue;  // no sink in this row: no gradient
      double acc = 0.0;
      for (std::int64_t b = 0; b < geo.B; ++b) {
        const float* orow = o.data + b * o.strides.batch + h * o.strides.head + i * o.strides.row;
        const float* grow = d_o.data + b * d_o.strides.batch + h * d_o.strides.head + i * d_o.strides.row;
        double D = 0.0;
        for (std::int64_t d = 0; d < geo.D; ++d) D += static_cast<double>(orow[d]) * grow[d];
        acc += std::exp(static_cast<double>(ti) - lse[(b * geo.H + h) * geo.T + i]) * D;
      }
      out[h * geo.T + i] = static_cast<float>(-acc);
    }
  return d_tau;
}

}  // namespace

Var attention_fused(const Var& q, const Var& k, const Var& v, const Tensor& tau, const std::vector<float>& alibi_slopes,
                    double scale) {
  return attention_fused(q, k, v, tau.defined() ? Var::leaf(tau) : Var(), alibi_slopes, scale);
}

Var attention_fused_qkv(const Var& qkv, std::int64_t n_head, const Tensor& tau, const std::vector<float>& alibi_slopes,
                        double scale) {
  return attention_fused_qkv(qkv, n_head, tau.defined() ? Var::leaf(tau) : Var(), alibi_slopes, scale);
}

Var attention_fused(const Var& q_in, const Var& k_in, const Var& v_in, const Var& tau,
                    const std::vector<float>& alibi_slopes, double scale) {
  if (q_in.dim() != 4 || q_in.shape() != k_in.shape() || q_in.shape() != v_in.shape())
    throw_error("attention_fused: got q ", shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()), ", v ",
                shape_str(v_in.shape()), ", expected three (B,H,T,D) tensors of one shape");
  if (q_in.dtype() != DType::F32) throw_error("attention_fused: got ", dtype_name(q_in.dtype()), ", expected float32");
  const attention::Geometry geo{q_in.size(0), q_in.size(1), q_in.size(2), q_in.size(3)};
  const FusedBias bias = fused_bias("attention_fused", geo, tau, alibi_slopes, scale);
  Tensor q = q_in.data().contiguous(), k = k_in.data().contiguous(), v = v_in.data().contiguous();
  // o = flash(q, k, v); only o and the row log-sum-exp (B,H,T) are kept for the backward pass
  Tensor o = Tensor::empty(q.shape()), lse = Tensor::empty({geo.B, geo.H, geo.T});
  attention::flash_forward(geo, bias.get(), q.data<float>(), k.data<float>(), v.data<float>(), o.data<float>(),
                           lse.data<float>());
  std::vector<Var> inputs = {q_in, k_in, v_in};
  if (tau.defined()) inputs.push_back(tau);
  return make_result(o, "attention_fused", inputs,
                     [geo, q, k, v, o, lse, bias](std::vector<Var>& in, const Tensor& g_in) {
                       // recompute the probabilities tile by tile; D_i = dO_i . O_i
                       Tensor g = g_in.contiguous();
                       Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(q.shape()), dv = Tensor::empty(q.shape());
                       const bool tau_grad = in.size() > 3 && in[3].requires_grad();
                       Tensor d_tau = tau_grad ? Tensor::empty({geo.H, geo.T}) : Tensor();  // (H,T)
                       attention::BiasGrads bias_grads;
                       if (tau_grad) bias_grads.d_tau = d_tau.data<float>();
                       attention::flash_backward(geo, bias.get(), q.data<float>(), k.data<float>(), v.data<float>(),
                                                 o.data<float>(), lse.data<float>(), g.data<float>(), dq.data<float>(),
                                                 dk.data<float>(), dv.data<float>(), bias_grads);
                       if (in[0].requires_grad()) in[0].add_grad(dq);
                       if (in[1].requires_grad()) in[1].add_grad(dk);
                       if (in[2].requires_grad()) in[2].add_grad(dv);
                       if (tau_grad) in[3].add_grad(d_tau.to(in[3].dtype()));
                     });
}

Var attention_fused_qkv(const Var& qkv_in, std::int64_t n_head, const Var& tau,
                        const std::vector<float>& alibi_slopes, double scale) {
  return attention_fused_qkv(qkv_in, n_head, tau, alibi_slopes, scale, Var(), Var());
}

Var attention_fused_qkv(const Var& qkv_in, std::int64_t n_head, const Var& tau,
                        const std::vector<float>& alibi_slopes, double scale, const Var& null_k,
                        const Var& null_v) {
  // qkv is (B,T,3C) -> y (B,T,C)
  if (qkv_in.dim() != 3 || qkv_in.size(2) % 3 != 0 || qkv_in.size(0) < 1 || qkv_in.size(1) < 1 ||
      qkv_in.size(2) < 3)
    throw_error("attention_fused_qkv: got qkv ", shape_str(qkv_in.shape()),
                ", expected (B,T,3C) with B, T, C >= 1 (q, k, v side by side)");
  if (qkv_in.dtype() != DType::F32)
    throw_error("attention_fused_qkv: got ", dtype_name(qkv_in.dtype()), ", expected float32");
  const std::int64_t B = qkv_in.size(0), T = qkv_in.size(1), C = qkv_in.size(2) / 3;
  if (n_head < 1 || C % n_head != 0)
    throw_error("attention_fused_qkv: got n_head = ", n_head, " for qkv ", shape_str(qkv_in.shape()),
                " (C = ", C, "), expected n_head >= 1 dividing C");
  const attention::Geometry geo{B, n_head, T, C / n_head};
  FusedBias bias = fused_bias("attention_fused_qkv", geo, tau, alibi_slopes, scale);
  const bool has_null = null_k.defined() || null_v.defined();
  if (has_null) {
    for (const Var* p : {&null_k, &null_v})
      if (!p->defined() || p->shape() != Shape{geo.H, geo.D} || p->dtype() != DType::F32)
        throw_error("attention_fused_qkv: got ", p == &null_k ? "null_k " : "null_v ",
                    p->defined() ? shape_str(p->shape()) + " " + dtype_name(p->dtype()) : std::string("undefined"),
                    ", expected both null_k and null_v (H, D) = ", shape_str({geo.H, geo.D}), " float32");
    bias.null_k = null_k.data().contiguous();
    bias.null_v = null_v.data().contiguous();
  }
  // c_attn's output is contiguous already; anything else is copied once
  Tensor qkv = qkv_in.data().contiguous();
  // q, k, v are (B,H,T,D) views into the rows of qkv; y's heads sit side by side in its rows
  const attention::Strides in_strides = attention::packed_strides(geo, 3 * C);
  const attention::Strides out_strides = attention::packed_strides(geo, C);
  Tensor y = Tensor::empty({B, T, C}), lse = Tensor::empty({B, geo.H, T});
  const float* base = qkv.data<float>();
  attention::flash_forward(geo, bias.get(), {base, in_strides}, {base + C, in_strides},
                           {base + 2 * C, in_strides}, {y.data<float>(), out_strides}, lse.data<float>());
  // inputs: qkv, then tau when defined, then null_k and null_v when defined
  std::vector<Var> inputs = {qkv_in};
  if (tau.defined()) inputs.push_back(tau);
  if (has_null) {
    inputs.push_back(null_k);
    inputs.push_back(null_v);
  }
  const bool has_tau = tau.defined();
  return make_result(
      y, "attention_fused_qkv", inputs,
      [geo, C, qkv, y, lse, bias, in_strides, out_strides, has_tau, has_null](std::vector<Var>& in,
                                                                              const Tensor& g_in) {
        const bool tau_grad = has_tau && in[1].requires_grad();
        const std::size_t null_at = has_tau ? 2 : 1;
        const bool null_grads = has_null && (in[null_at].requires_grad() || in[null_at + 1].requires_grad());
        const Tensor g = g_in.contiguous();
        if (!in[0].requires_grad() && !null_grads) {
          // only tau trains (a test's case): no pass over the keys, D_i from O and dO directly
          if (tau_grad)
            in[1].add_grad(sink_logit_grad(geo, bias.tau, lse.data<float>(), {y.data<float>(), out_strides},
                                           {g.data<float>(), out_strides}).to(in[1].dtype()));
          return;
        }
        // recompute the probabilities tile by tile; dq, dk, dv land side by side in one (B,T,3C) gradient,
        // every element written once (q, k and v cover all 3C columns), so it needs no zero-fill. The kernel also
        // writes dtau (from the D_i it computes anyway) and the null key's gradients.
        Tensor d_qkv = Tensor::empty(qkv.shape());
        Tensor d_tau, d_null_k, d_null_v;  // (H,T), (H,D), (H,D)
        attention::BiasGrads bias_grads;
        if (tau_grad) {
          d_tau = Tensor::empty({geo.H, geo.T});
          bias_grads.d_tau = d_tau.data<float>();
        }
        if (has_null) {
          d_null_k = Tensor::empty({geo.H, geo.D});
          d_null_v = Tensor::empty({geo.H, geo.D});
          bias_grads.d_k = d_null_k.data<float>();
          bias_grads.d_v = d_null_v.data<float>();
        }
        const float* base = qkv.data<float>();
        float* d_base = d_qkv.data<float>();
        attention::flash_backward(geo, bias.get(), {base, in_strides}, {base + C, in_strides},
                                  {base + 2 * C, in_strides}, {y.data<float>(), out_strides}, lse.data<float>(),
                                  {g.data<float>(), out_strides}, {d_base, in_strides}, {d_base + C, in_strides},
                                  {d_base + 2 * C, in_strides}, bias_grads);
        if (in[0].requires_grad()) in[0].add_grad(d_qkv);
        if (tau_grad) in[1].add_grad(d_tau.to(in[1].dtype()));
        if (has_null) {
          if (in[null_at].requires_grad()) in[null_at].add_grad(d_null_k);
          if (in[null_at + 1].requires_grad()) in[null_at + 1].add_grad(d_null_v);
        }
      });
}

}  // namespace gradlab
