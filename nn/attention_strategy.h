#pragma once
// The attention strategy: what a mask adds to scaled dot-product attention, per layer and head. Every
// strategy is one row of the table in nn/attention_strategy.cpp (its name, label, help line, and whether it
// has a sink key) plus one small class there. The rest of the engine asks the strategy; it never switches
// on its name.
//
// For query row i and key j the attention is (autograd/attention.h)
//   a_ij = q_i . k_j * scale + bias_ij                        (a) the additive bias: causal -inf, ALiBi
//   Attn = softmax over [a_i0 .. a_i(Tk-1), tau_i], the sink column dropped    (b) the sink logit tau_i
//   out_i = sum_j Attn_ij v_j                                 (the sink key's value is 0)
// causal has no sink (tau undefined); StableMask's is tau_i = log Z(i) (nn/stablemask.h); softmax1's is 0 in
// every row; learned-sink's is tau_h, one trained number per layer and head (docs/sink_remedies.md). gated has no
// sink; it multiplies each head's output by a gate computed from the layer's input, (c) below.
//
// Adding a strategy: write its class in nn/attention_strategy.cpp (override tau(), and bias() or
// parameter_shapes() when it needs them) and add its row to the table there. When the fused kernel needs
// something new, that goes in tensor/attention_kernel.*.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "nn/module.h"

namespace gradlab {

struct GPTConfig;

// One row of the strategy table: everything about a strategy except its math.
struct StrategyInfo {
  const char* name;       // the --mask value and the checkpoint's "mask" (never renamed: old checkpoints load)
  const char* label;      // in figures, tables and reports ("StableMask")
  const char* help;       // one line for --help
  bool has_sink;          // a zero-value sink key: rows may hold less than 1 of real mass (figures draw the rest)
  bool tau_is_parameter;  // tau is trained (per layer and head) rather than computed from the config
};

// The strategies in table order; "causal" is the first.
const std::vector<std::string>& strategy_names();
// The table row of a name; throws "unknown mask 'x', expected one of: ..." for any other.
const StrategyInfo& strategy_info(const std::string& name);
// "causal = (help); stablemask = (help)": the help text of a --mask flag, generated from the table.
std::string strategy_help();
// The pair the course compares side by side (gradlab attn --mask both, lessons 08-12): the baseline and StableMask.
const std::vector<std::string>& compared_strategies();

// One layer's strategy. A Module so that a strategy with trained parts registers them as its parameters
// (none for causal and StableMask).
class AttentionStrategy : public Module {
 public:
  AttentionStrategy(const GPTConfig& config, const StrategyInfo& info);
  ~AttentionStrategy() override;
  const StrategyInfo& info() const { return info_; }
  const char* name() const { return info_.name; }
  bool has_sink() const { return info_.has_sink; }

  // (a) The additive bias (H, Tq, Tk) for the materialized path: -inf where key j lies in query i's future,
  // ALiBi's -slope_h * distance when the config's positions are alibi. Query i sits at absolute position
  // q0 + i, key j at k0 + j.
  virtual Tensor bias(std::int64_t Tq, std::int64_t Tk, std::int64_t q0, std::int64_t k0, DType dtype) const;
  // The same bias as the fused kernel reads it: causal by construction, plus these ALiBi slopes (H) or none.
  const std::vector<float>& alibi_slopes() const { return alibi_slopes_; }
  // (b) The sink logit (H, Tq) for rows at absolute positions q0 .. q0+Tq-1, in dtype (float64 models get it
  // computed in double); undefined when the strategy has no sink.
  virtual Tensor tau(std::int64_t Tq, std::int64_t q0, DType dtype) const;
  // The same sink logit as a graph node, for training: a leaf of tau() unless tau is a trained parameter
  // (learned-sink), whose gradient then flows back through it. Undefined when there is no sink.
  virtual Var tau_var(std::int64_t Tq, std::int64_t q0, DType dtype) const;
  // (d) Null key and value (null-kv): learned k0, v0 (H,D) in dtype that every query attends to, put before the
  // real keys; undefined Vars for every other strategy. Their value is not 0, so they are not a tau: the
  // materialized path concatenates them in front of the keys, the fused kernel takes them as one more key.
  virtual std::pair<Var, Var> null_kv(DType dtype) const { return {}; }
  // Whether the fused kernel computes this strategy (every strategy of the table does today).
  virtual bool fused_supported() const { return true; }
  // (c) After attention, before c_proj: y (B,T,C) the heads side by side, x (B,T,C) the layer's normed input.
  // The identity except for gated attention, which scales each head by sigmoid(x W_g^T).
  virtual Var gate(const Var& y, const Var& x) const;
  // The names (relative to the attention module) and shapes of this strategy's parameters, known without
  // allocating them, so a loader can check a file first. Empty for causal and StableMask.
  virtual std::vector<std::pair<std::string, Shape>> parameter_shapes() const { return {}; }

 protected:
  const GPTConfig& config() const { return *config_; }

 private:
  std::unique_ptr<GPTConfig> config_;
  const StrategyInfo& info_;
  std::vector<double> slopes_;       // ALiBi position slopes (empty unless pos == alibi)
  std::vector<float> alibi_slopes_;  // the same, rounded for the fused kernel
};

// The strategy that config.mask names, for one layer (each layer owns its own).
std::unique_ptr<AttentionStrategy> make_attention_strategy(const GPTConfig& config);

}  // namespace gradlab
