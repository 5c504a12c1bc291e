// Fused neural-network ops: one graph node each instead of a dozen, with a hand-derived backward.
// Each is tested against the composite version built from elementary ops (tests/autograd).
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "tensor/fastmath.h"
#include "tensor/norm.h"
#include "tensor/ops.h"

namespace gradlab {

// ---- embedding ------------------------------------------------------------------------------------------

Var embedding(const Var& weight, const std::vector<std::int32_t>& ids, std::int64_t B, std::int64_t T) {
  // weight is (V, C), ids is B*T token ids; out is (B, T, C) with out[b, t] = weight[ids[b*T + t]]
  if (weight.dim() != 2) throw_error("embedding: got weight shape ", shape_str(weight.shape()), ", expected (V, C)");
  if (B < 0 || T < 0 || static_cast<std::int64_t>(ids.size()) != B * T)
    throw_error("embedding: got ", ids.size(), " ids for B = ", B, ", T = ", T, ", expected B*T ids");
  const std::int64_t V = weight.size(0), C = weight.size(1);
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= V)
      throw_error("embedding: id ", ids[i], " at position ", i, " is outside the vocabulary [0, ", V, ")");
  Tensor w = weight.data().contiguous();
  Tensor out = Tensor::empty({B, T, C}, w.dtype());
  auto gather = [&](auto* o, const auto* src) {
    for (std::size_t i = 0; i < ids.size(); ++i)
      std::copy(src + ids[i] * C, src + (ids[i] + 1) * C, o + static_cast<std::int64_t>(i) * C);
  };
  if (w.dtype() == DType::F32)
    gather(out.data<float>(), w.data<float>());
  else
    gather(out.data<double>(), w.data<double>());
  return make_result(out, "embedding", {weight}, [ids, C](std::vector<Var>& in, const Tensor& g_in) {
    // dweight[ids[i]] += dout[i]: rows used twice accumulate twice
    Tensor g = g_in.contiguous();
    Tensor dw = Tensor::zeros(in[0].shape(), g.dtype());
    auto scatter = [&](auto* d, const auto* src) {
      for (std::size_t i = 0; i < ids.size(); ++i)
        for (std::int64_t c = 0; c < C; ++c) d[ids[i] * C + c] += src[static_cast<std::int64_t>(i) * C + c];
    };
    if (g.dtype() == DType::F32)
      scatter(dw.data<float>(), g.data<float>());
    else
      scatter(dw.data<double>(), g.data<double>());
    in[0].add_grad(dw);
  });
}

// ---- softmax and log_softmax ------------------------------------------------------------------------------

template <typename T>
static Tensor softmax_backward_typed(const Tensor& y_in, const Tensor& g_in, bool log) {
  // softmax:      dx_j = y_j (g_j - sum_k g_k y_k)
  // log_softmax:  dx_j = g_j - e^{y_j} sum_k g_k
  // exercise 07.1 begin: softmax and log_softmax backward, row by row
  Tensor y = y_in.contiguous(), g = g_in.contiguous();
  Tensor dx = Tensor::empty(y.shape(), y.dtype());
  const std::int64_t C = y.size(-1), rows = C == 0 ? 0 : y.numel() / C;
  const T* py = y.data<T>();
  const T* pg = g.data<T>();
  T* pd = dx.data<T>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* yr = py + r * C;
    const T* gr = pg + r * C;
    T* dr = pd + r * C;
    T dot = 0;
    if (log) {
      for (std::int64_t j = 0; j < C; ++j) dot += gr[j];
      for (std::int64_t j = 0; j < C; ++j) dr[j] = gr[j] - exp_of(yr[j]) * dot;
    } else {
      for (std::int64_t j = 0; j < C; ++j) dot += gr[j] * yr[j];
      for (std::int64_t j = 0; j < C; ++j) dr[j] = yr[j] * (gr[j] - dot);
    }
  }
  return dx;
  // exercise 07.1 end
}

static Tensor softmax_backward(const Tensor& y, const Tensor& g, bool log) {
  if (y.dtype() == DType::F32) return softmax_backward_typed<float>(y, g, log);
  return softmax_backward_typed<double>(y, g, log);
}

Var softmax(const Var& a) {
  if (a.dim() < 1) throw_error("softmax: got a 0-d tensor, expected at least one dimension");
  // y = e^{a - max} / sum e^{a - max}, over the last dimension
  Tensor y = ops::softmax_lastdim(a.data());
  return make_result(y, "softmax", {a},
                     [y](std::vector<Var>& in, const Tensor& g) { in[0].add_grad(softmax_backward(y, g, false)); });
}

Var log_softmax(const Var& a) {
  if (a.dim() < 1) throw_error("log_softmax: got a 0-d tensor, expected at least one dimension");
  // y = a - logsumexp(a), over the last dimension
  Tensor y = ops::log_softmax_lastdim(a.data());
  return make_result(y, "log_softmax", {a},
                     [y](std::vector<Var>& in, const Tensor& g) { in[0].add_grad(softmax_backward(y, g, true)); });
}

// ---- cross-entropy (fused log_softmax + gather + mean) -----------------------------------------------------

template <typename T>
static double cross_entropy_forward(const Tensor& logits, const std::vector<std::int32_t>& targets,
                                    std::int32_t ignore, Tensor& probs, std::int64_t& counted) {
  // loss = mean over counted rows of ( logsumexp(logits_r) - logits_r[target_r] ); probs saved for backward
  const std::int64_t V = logits.size(-1), N = logits.numel() / V;
  const T* pl = logits.data<T>();
  T* pp = probs.data<T>();
  double total = 0;
  counted = 0;
  for (std::int64_t r = 0; r < N; ++r) {
    const T* row = pl + r * V;
    T* prow = pp + r * V;
    T m = row[0];
    for (std::int64_t j = 1; j < V; ++j) m = std::max(m, row[j]);
    for (std::int64_t j = 0; j < V; ++j) prow[j] = exp_of(row[j] - m);
    T s = 0;
    for (std::int64_t j = 0; j < V; ++j) s += prow[j];
    for (std::int64_t j = 0; j < V; ++j) prow[j] /= s;
    if (targets[r] == ignore) continue;
    total += static_cast<double>(m) + std::log(static_cast<double>(s)) - static_cast<double>(row[targets[r]]);
    ++counted;
  }
  return counted ? total / static_cast<double>(counted) : 0.0;
}

Var cross_entropy(const Var& logits, const std::vector<std::int32_t>& targets, std::int32_t ignore_index) {
  if (logits.dim() < 2 || logits.size(-1) == 0)
    throw_error("cross_entropy: got logits of shape ", shape_str(logits.shape()), ", expected (N, V) or (B, T, V)");
  const std::int64_t V = logits.size(-1), N = logits.data().numel() / V;
  if (static_cast<std::int64_t>(targets.size()) != N)
    throw_error("cross_entropy: got ", targets.size(), " targets for logits of shape ", shape_str(logits.shape()),
                ", expected ", N, " (one per row)");
  for (std::size_t i = 0; i < targets.size(); ++i)
    if (targets[i] != ignore_index && (targets[i] < 0 || targets[i] >= V))
      throw_error("cross_entropy: target ", targets[i], " at row ", i, " is outside [0, ", V, ") and is not the ignore index ",
                  ignore_index);
  Tensor x = logits.data().contiguous();
  Tensor probs = Tensor::empty(x.shape(), x.dtype());
  std::int64_t counted = 0;
  double loss = x.dtype() == DType::F32 ? cross_entropy_forward<float>(x, targets, ignore_index, probs, counted)
                                         : cross_entropy_forward<double>(x, targets, ignore_index, probs, counted);
  Tensor out = Tensor::scalar(loss, x.dtype());
  return make_result(out, "cross_entropy", {logits}, [probs, targets, ignore_index, counted, V](std::vector<Var>& in,
                                                                                              const Tensor& g) {
    // dlogits_rj = g / counted * (p_rj - [j == target_r]); ignored rows get 0
    // exercise 05.1 begin: softmax cross-entropy backward, (p - onehot) / counted
    Tensor d = probs.clone();
    const double scale = counted ? g.item() / static_cast<double>(counted) : 0.0;
    auto fill = [&](auto* pd) {
      using T = std::remove_pointer_t<decltype(pd)>;
      for (std::size_t r = 0; r < targets.size(); ++r) {
        T* row = pd + static_cast<std::int64_t>(r) * V;
        if (targets[r] == ignore_index) {
          std::fill(row, row + V, T(0));
          continue;
        }
        row[targets[r]] -= T(1);
        for (std::int64_t j = 0; j < V; ++j) row[j] *= static_cast<T>(scale);
      }
    };
    if (d.dtype() == DType::F32)
      fill(d.data<float>());
    else
      fill(d.data<double>());
    in[0].add_grad(d);
    // exercise 05.1 end
  });
}

// ---- layernorm and rmsnorm ----------------------------------------------------------------------------------
// The row kernels live in tensor/norm.{h,cpp} (portable reference, AVX2, rows over the worker pool). The
// forward keeps x and the per-row mean and rstd; the backward recomputes xhat from them.

static Var norm_op(const char* name, const Var& x, const Var& weight, const Var* bias, double eps, bool rms) {
  if (x.dim() < 1 || weight.dim() != 1 || weight.size(0) != x.size(-1) ||
      (bias && (bias->dim() != 1 || bias->size(0) != x.size(-1))))
    throw_error(name, ": got x ", shape_str(x.shape()), ", weight ", shape_str(weight.shape()),
                bias ? ", bias " + shape_str(bias->shape()) : std::string(), ", expected x (..., C) with weight (C)",
                bias ? " and bias (C)" : "");
  if (!(eps > 0)) throw_error(name, ": got eps = ", eps, ", expected eps > 0");
  if (x.size(-1) == 0) throw_error(name, ": got x of shape ", shape_str(x.shape()), ", expected C > 0");
  if (weight.dtype() != x.dtype() || (bias && bias->dtype() != x.dtype()))
    throw_error(name, ": got x ", dtype_name(x.dtype()), ", weight ", dtype_name(weight.dtype()),
                bias ? std::string(", bias ") + dtype_name(bias->dtype()) : std::string(), ", expected one dtype");
  // x is (..., C), seen as (N, C); out is (..., C), mean and rstd are (...)
  Tensor xc = x.data().contiguous();
  const std::int64_t C = x.size(-1), N = xc.numel() / C;
  Shape rows_shape(x.shape().begin(), x.shape().end() - 1);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty(rows_shape, x.dtype()), rstd = Tensor::empty(rows_shape, x.dtype());
  Tensor w = weight.data().contiguous();
  Tensor b = bias ? bias->data().contiguous() : Tensor();
  if (x.dtype() == DType::F32)
    kernels::norm_forward(xc.data<float>(), w.data<float>(), bias ? b.data<float>() : nullptr, out.data<float>(),
                          mean.data<float>(), rstd.data<float>(), N, C, static_cast<float>(eps), rms);
  else
    kernels::norm_forward_portable<double>(xc.data<double>(), w.data<double>(), bias ? b.data<double>() : nullptr,
                                           out.data<double>(), mean.data<double>(), rstd.data<double>(), N, C, eps,
                                           rms);
  std::vector<Var> inputs{x, weight};
  if (bias) inputs.push_back(*bias);
  return make_result(out, name, inputs, [xc, mean, rstd, rms, N, C](std::vector<Var>& in, const Tensor& g_in) {
    Tensor g = g_in.contiguous();
    Tensor w = in[1].data().contiguous();
    const bool with_bias = in.size() > 2;
    Tensor dx = Tensor::empty(xc.shape(), xc.dtype()), dw = Tensor::empty(w.shape(), xc.dtype());
    Tensor db = with_bias ? Tensor::empty(w.shape(), xc.dtype()) : Tensor();
    if (xc.dtype() == DType::F32)
      kernels::norm_backward(g.data<float>(), xc.data<float>(), w.data<float>(), mean.data<float>(),
                             rstd.data<float>(), dx.data<float>(), dw.data<float>(),
                             with_bias ? db.data<float>() : nullptr, N, C, rms);
    else
      kernels::norm_backward_portable<double>(g.data<double>(), xc.data<double>(), w.data<double>(),
                                              mean.data<double>(), rstd.data<double>(), dx.data<double>(),
                                              dw.data<double>(), with_bias ? db.data<double>() : nullptr, N, C, rms);
    if (in[0].requires_grad()) in[0].add_grad(dx);
    if (in[1].requires_grad()) in[1].add_grad(dw);
    if (with_bias && in[2].requires_grad()) in[2].add_grad(db);
  });
}

Var layernorm(const Var& x, const Var& weight, const Var& bias, double eps) {
  return norm_op("layernorm", x, weight, bias.defined() ? &bias : nullptr, eps, false);
}

Var rmsnorm(const Var& x, const Var& weight, double eps) { return norm_op("rmsnorm", x, weight, nullptr, eps, true); }

// ---- dropout ----------------------------------------------------------------------------------------------

Var dropout(const Var& x, double p, Rng& rng, bool training) {
  if (!(p >= 0.0 && p < 1.0)) throw_error("dropout: got p = ", p, ", expected 0 <= p < 1");
  if (!training || p == 0.0) return x;
  // mask_i = (u_i >= p) / (1 - p); out = x * mask
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  const double keep_scale = 1.0 / (1.0 - p);
  std::vector<double> m(static_cast<std::size_t>(mask.numel()));
  for (auto& v : m) v = rng.uniform() >= p ? keep_scale : 0.0;
  mask = Tensor::from_values(x.shape(), m, x.dtype());
  return make_result(ops::mul(x.data(), mask), "dropout", {x},
                     [mask](std::vector<Var>& in, const Tensor& g) { in[0].add_grad(ops::mul(g, mask)); });
}

}  // namespace gradlab
