// The attention strategies and their table. A new strategy is one class and one row here.
#include "nn/attention_strategy.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "nn/gpt.h"
#include "nn/stablemask.h"
#include "tensor/error.h"

namespace gradlab {

namespace {

// The plain causal mask: no sink, every row's real mass is 1.
class CausalStrategy : public AttentionStrategy {
 public:
  using AttentionStrategy::AttentionStrategy;
};

// StableMask (Yin et al. 2024): a zero-value sink key per row with the fixed logit tau_i = log Z(i), Z from the
// training length L = block_size and the decay gamma_h per head (nn/stablemask.h).
class StableMaskStrategy : public AttentionStrategy {
 public:
  StableMaskStrategy(const GPTConfig& c, const StrategyInfo& info) : AttentionStrategy(c, info), gammas_(c.gammas()) {}
  Tensor tau(std::int64_t Tq, std::int64_t q0, DType dtype) const override {
    // tau is (H, Tq)
    Tensor t = Tensor::empty({config().n_head, Tq}, dtype);
    if (dtype == DType::F64)
      stablemask_tau_table(gammas_, config().block_size, Tq, q0, config().tail, t.data<double>());
    else
      stablemask_tau_table(gammas_, config().block_size, Tq, q0, config().tail, t.data<float>());
    return t;
  }

 private:
  std::vector<double> gammas_;  // decay per head
};

// softmax1, the "off-by-one" softmax (E. Miller, 2023): 1 added to every row's denominator, which is a
// zero-value sink key with tau_i = 0.
class Softmax1Strategy : public AttentionStrategy {
 public:
  using AttentionStrategy::AttentionStrategy;
  Tensor tau(std::int64_t Tq, std::int64_t, DType dtype) const override {
    return Tensor::zeros({config().n_head, Tq}, dtype);  // (H, Tq)
  }
};

// learned-sink (as in gpt-oss, 2025): the zero-value sink key's logit is tau_h, one parameter per head of this
// layer, the same in every row. It starts at 0, where the strategy equals softmax1.
class LearnedSinkStrategy : public AttentionStrategy {
 public:
  LearnedSinkStrategy(const GPTConfig& c, const StrategyInfo& info) : AttentionStrategy(c, info) {
    sink_ = register_parameter(kName, Tensor::zeros({c.n_head}));
  }
  Tensor tau(std::int64_t Tq, std::int64_t q0, DType dtype) const override {
    NoGrad no_grad;
    return tau_var(Tq, q0, dtype).data().contiguous();
  }
  Var tau_var(std::int64_t Tq, std::int64_t, DType dtype) const override {
    // tau_h (H) -> (H, Tq): broadcast over the rows, so the gradient sums over them
    const std::int64_t H = config().n_head;
    Var t = sink_.dtype() == dtype ? sink_ : Var::leaf(sink_.data().to(dtype));  // a float64 copy for checks only
    return add(Var::leaf(Tensor::zeros({H, Tq}, dtype)), reshape(t, {H, 1}));
  }
  std::vector<std::pair<std::string, Shape>> parameter_shapes() const override {
    return {{kName, Shape{config().n_head}}};
  }

 private:
  static constexpr const char* kName = "sink_logit";
  Var sink_;  // (H)
};

// gated attention (Qiu et al., 2025): each head's output times sigmoid(x W_g^T), x the layer's normed input.
// gate = head (the default): one gate per head and token, the (C, H) choice of the paper's head-wise variant;
// gate = full: one gate per channel and token, (C, C), the elementwise variant. The weight is stored as
// nn.Linear(C, H or C) stores it, (H or C, C), and starts at 0: every gate starts at sigmoid(0) = 1/2, and no
// random numbers are drawn, so the other weights stay those of the same seed under any other strategy.
class GatedStrategy : public AttentionStrategy {
 public:
  GatedStrategy(const GPTConfig& c, const StrategyInfo& info) : AttentionStrategy(c, info) {
    weight_ = register_parameter(kName, Tensor::zeros(weight_shape()));
  }
  Var gate(const Var& y, const Var& x) const override {
    // y, x are (B,T,C); g = sigmoid(x W^T) is (B,T,H) (head) or (B,T,C) (full); out = y * g per head or channel
    const std::int64_t B = y.size(0), T = y.size(1), C = y.size(2), H = config().n_head;
    Var g = sigmoid(linear(x, weight_));
    if (config().gate == GateKind::Full) return mul(y, g);
    return reshape(mul(reshape(y, {B, T, H, C / H}), reshape(g, {B, T, H, 1})), {B, T, C});
  }
  std::vector<std::pair<std::string, Shape>> parameter_shapes() const override { return {{kName, weight_shape()}}; }

 private:
  Shape weight_shape() const {
    return {config().gate == GateKind::Full ? config().n_embd : config().n_head, config().n_embd};
  }
  static constexpr const char* kName = "gate.weight";
  Var weight_;  // (H, C), or (C, C) for the full gate
};

// null-kv (PyTorch's add_bias_kv; close to StreamingLLM's learned sink token): one learned key k0 and value v0
// per head that every query attends to, with no position and no mask. Both start at 0: the null key's logit is
// then 0 and its value 0, which is softmax1 exactly, and no random numbers are drawn.
class NullKvStrategy : public AttentionStrategy {
 public:
  NullKvStrategy(const GPTConfig& c, const StrategyInfo& info) : AttentionStrategy(c, info) {
    k_ = register_parameter(kKey, Tensor::zeros({c.n_head, c.head_size()}));
    v_ = register_parameter(kValue, Tensor::zeros({c.n_head, c.head_size()}));
  }
  std::pair<Var, Var> null_kv(DType dtype) const override {
    // k0, v0 are (H,D)
    auto in = [&](const Var& p) { return p.dtype() == dtype ? p : Var::leaf(p.data().to(dtype)); };  // checks only
    return {in(k_), in(v_)};
  }
  std::vector<std::pair<std::string, Shape>> parameter_shapes() const override {
    const Shape s{config().n_head, config().head_size()};
    return {{kKey, s}, {kValue, s}};
  }

 private:
  static constexpr const char* kKey = "null_k";
  static constexpr const char* kValue = "null_v";
  Var k_, v_;  // (H, D) each
};

template <typename S>
std::unique_ptr<AttentionStrategy> make(const GPTConfig& c, const StrategyInfo& info) {
  return std::make_unique<S>(c, info);
}

struct Row {
  StrategyInfo info;
  std::unique_ptr<AttentionStrategy> (*make)(const GPTConfig&, const StrategyInfo&);
};

// The table. The first row is the baseline.
const Row kStrategies[] = {
    {{"causal", "causal", "the standard mask: each row's softmax over keys j <= i sums to 1", false, false},
     make<CausalStrategy>},
    {{"stablemask", "StableMask",
      "StableMask: one extra key per row with value 0 and logit log Z(i), so a row's real mass can be below 1", true,
      false},
     make<StableMaskStrategy>},
    {{"softmax1", "softmax1",
      "softmax1 (off-by-one softmax): one extra key per row with value 0 and logit 0, i.e. 1 added to the "
      "denominator",
      true, false},
     make<Softmax1Strategy>},
    {{"learned-sink", "learned sink",
      "learned sink (gpt-oss): one extra key per row with value 0 and a trained logit tau_h per layer and head",
      true, true},
     make<LearnedSinkStrategy>},
    {{"null-kv", "null key/value",
      "null key/value (add_bias_kv): a learned key and value per layer and head that every query can attend to",
      true, false},
     make<NullKvStrategy>},
    {{"gated", "gated",
      "gated attention (Qiu et al. 2025): each head's output times sigmoid(x W_g), x the layer's normed input; "
      "rows sum to 1",
      false, false},
     make<GatedStrategy>},
};

const Row& row(const std::string& name) {
  for (const Row& r : kStrategies)
    if (name == r.info.name) return r;
  std::string valid;
  for (const Row& r : kStrategies) valid += (valid.empty() ? "" : ", ") + std::string(r.info.name);
  throw_error("unknown mask '", name, "', expected one of: ", valid);
}

}  // namespace

const std::vector<std::string>& strategy_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Row& r : kStrategies) n.emplace_back(r.info.name);
    return n;
  }();
  return names;
}

const StrategyInfo& strategy_info(const std::string& name) { return row(name).info; }

std::string strategy_help() {
  std::string out;
  for (const Row& r : kStrategies) out += (out.empty() ? "" : "; ") + std::string(r.info.name) + " = " + r.info.help;
  return out;
}

const std::vector<std::string>& compared_strategies() {
  static const std::vector<std::string> pair = {row("causal").info.name, row("stablemask").info.name};
  return pair;
}

AttentionStrategy::AttentionStrategy(const GPTConfig& config, const StrategyInfo& info)
    : config_(std::make_unique<GPTConfig>(config)), info_(info) {
  if (config.pos == PosKind::Alibi) slopes_ = gradlab::alibi_slopes(config.n_head);
  alibi_slopes_.assign(slopes_.begin(), slopes_.end());
}

AttentionStrategy::~AttentionStrategy() = default;

Tensor AttentionStrategy::bias(std::int64_t Tq, std::int64_t Tk, std::int64_t q0, std::int64_t k0, DType dtype) const {
  // bias is (H, Tq, Tk)
  const std::int64_t H = config_->n_head;
  std::vector<double> b(static_cast<std::size_t>(H * Tq * Tk));
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t i = 0; i < Tq; ++i)
      for (std::int64_t j = 0; j < Tk; ++j) {
        const std::int64_t dist = (q0 + i) - (k0 + j);
        double v = dist < 0 ? -std::numeric_limits<double>::infinity() : 0.0;
        if (dist >= 0 && !slopes_.empty()) v = -slopes_[h] * static_cast<double>(dist);
        b[(h * Tq + i) * Tk + j] = v;
      }
  return Tensor::from_values({H, Tq, Tk}, b, dtype);
}

Tensor AttentionStrategy::tau(std::int64_t, std::int64_t, DType) const { return Tensor(); }

Var AttentionStrategy::gate(const Var& y, const Var&) const { return y; }

Var AttentionStrategy::tau_var(std::int64_t Tq, std::int64_t q0, DType dtype) const {
  const Tensor t = tau(Tq, q0, dtype);
  return t.defined() ? Var::leaf(t) : Var();
}

std::unique_ptr<AttentionStrategy> make_attention_strategy(const GPTConfig& config) {
  const Row& r = row(config.mask);
  return r.make(config, r.info);
}

}  // namespace gradlab
