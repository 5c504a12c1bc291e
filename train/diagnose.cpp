#include "train/diagnose.h"

#include <cmath>
#include <sstream>

#include "tensor/error.h"

namespace gradlab {

std::string nonfinite_name(double v) { return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"); }

std::int64_t first_nonfinite_index(const Tensor& t) {
  Tensor c = t.contiguous();
  const std::int64_t n = c.numel();
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = c.dtype() == DType::F32 ? static_cast<double>(c.data<float>()[i]) : c.data<double>()[i];
    if (!std::isfinite(v)) return i;
  }
  return -1;
}

namespace {

double element(const Tensor& c, std::int64_t i) {
  return c.dtype() == DType::F32 ? static_cast<double>(c.data<float>()[i]) : c.data<double>()[i];
}

// The largest |w| among the parameters whose name starts with `prefix`, as "name (|w| = x)".
std::string largest_weight(const std::vector<std::pair<std::string, Tensor>>& params, const std::string& prefix) {
  std::string best;
  double best_abs = -1.0;
  for (const auto& [name, t] : params) {
    if (name.rfind(prefix, 0) != 0) continue;
    Tensor c = t.contiguous();
    for (std::int64_t i = 0; i < c.numel(); ++i) {
      const double a = std::fabs(element(c, i));
      if (a > best_abs) {
        best_abs = a;
        best = name;
      }
    }
  }
  if (best.empty()) return "";
  std::ostringstream s;
  s << best << " (|w| = " << best_abs << ")";
  return s.str();
}

// Logits of the model cut after its first `layers` blocks (the final norm and the tied head kept).
Tensor logits_after(const GPT& model, std::int64_t layers, const std::vector<std::int32_t>& ids) {
  GPTConfig c = model.config();
  c.n_layer = layers;
  std::vector<std::pair<std::string, Tensor>> kept;
  for (auto& [name, t] : model.state_dict()) {
    const std::string block = "transformer.h.";
    if (name.rfind(block, 0) == 0 && std::stoll(name.substr(block.size())) >= layers) continue;
    kept.emplace_back(name, t);
  }
  GPT cut(c, 0);
  if (model.dtype() == DType::F64) cut.to_double();
  cut.load_state_dict(kept, "diagnosis");
  cut.eval();
  NoGrad no_grad;
  return cut.forward(ids, 1, static_cast<std::int64_t>(ids.size())).data();
}

}  // namespace

std::string locate_nonfinite(GPT& model, const std::vector<std::int32_t>& ids) {
  const auto params = model.state_dict();
  for (const auto& [name, t] : params) {
    const std::int64_t i = first_nonfinite_index(t);
    if (i >= 0)
      return "parameter " + name + " holds " + nonfinite_name(element(t.contiguous(), i)) + " at flat index " +
             std::to_string(i);
  }
  const bool was_training = model.training();
  model.eval();
  NoGrad no_grad;
  AttentionRecorder rec;
  ForwardOptions fo;
  fo.recorder = &rec;
  const std::int64_t T = static_cast<std::int64_t>(ids.size());
  Tensor logits;
  std::string thrown;  // the softmax refuses a row without a finite score: that layer's attention overflowed
  try {
    logits = model.forward(ids, 1, T, fo).data();
  } catch (const Error& e) {
    thrown = e.what();
  }
  model.train(was_training);
  const std::int64_t L = model.config().n_layer;
  // The first layer whose attention holds a non-finite probability.
  std::int64_t attn_layer = L, attn_head = -1, attn_row = -1;
  if (!thrown.empty()) attn_layer = static_cast<std::int64_t>(rec.layers.size());
  for (std::int64_t l = 0; l < static_cast<std::int64_t>(rec.layers.size()); ++l) {
    const Tensor& p = rec.layers[static_cast<std::size_t>(l)];  // (1, H, T, T)
    const std::int64_t i = first_nonfinite_index(p);
    if (i >= 0) {
      attn_layer = l;
      attn_head = i / (T * T);
      attn_row = (i / T) % T;
      break;
    }
  }
  // The first cut whose logits are non-finite: the output of block k-1 is where it shows.
  std::int64_t out_layer = L;
  for (std::int64_t k = 1; k <= std::min(attn_layer, L - 1); ++k) {
    bool bad = true;
    try {
      bad = first_nonfinite_index(logits_after(model, k, ids)) >= 0;
    } catch (const Error&) {
    }
    if (bad) {
      out_layer = k - 1;
      break;
    }
  }
  const std::int64_t logit_index = logits.defined() ? first_nonfinite_index(logits) : -1;
  std::ostringstream s;
  if (attn_layer < L && attn_layer <= out_layer) {
    s << "layer " << attn_layer << " (transformer.h." << attn_layer << ".attn): ";
    if (attn_head >= 0)
      s << "its attention probabilities are non-finite at head " << attn_head << ", query " << attn_row;
    else
      s << "its attention scores overflow (" << thrown.substr(0, 120) << ")";
    s << " (the layers before it are finite)";
    const std::string w = largest_weight(params, "transformer.h." + std::to_string(attn_layer) + ".");
    if (!w.empty()) s << "; its largest weight is " << w;
  } else if (out_layer < L) {
    s << "layer " << out_layer << " (transformer.h." << out_layer << "): its attention is finite but the logits "
      << "computed from its output are not (the MLP or the residual stream overflows)";
    const std::string w = largest_weight(params, "transformer.h." + std::to_string(out_layer) + ".");
    if (!w.empty()) s << "; its largest weight is " << w;
  } else if (logit_index >= 0) {
    s << "the last layer's MLP (transformer.h." << L - 1 << ".mlp), ln_f or the tied head: every layer's "
      << "attention and every earlier layer's output are finite, the logits at position "
      << (logit_index / model.config().vocab_size) << " are not";
    const std::string w = largest_weight(params, "");
    if (!w.empty()) s << "; the largest weight is " << w;
  } else {
    return "";
  }
  return s.str();
}

}  // namespace gradlab
