#pragma once
// A small GPT (nanoGPT names and initialisation) whose attention takes a mask strategy
// (nn/attention_strategy.h: the standard causal mask, StableMask, ...), with learned, sinusoidal, RoPE, ALiBi or no positions.
//
//   idx (B,T) -> wte + wpe -> n_layer x [ x += attn(norm(x)); x += mlp(norm(x)) ] -> ln_f -> logits (B,T,V)
//   (lm_head is tied to wte: logits = x @ wte^T)
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "nn/attention_strategy.h"
#include "nn/module.h"
#include "nn/stablemask.h"
#include "tensor/rng.h"

namespace gradlab {

enum class NormKind { LayerNorm, RMSNorm };
// Gelu: GELU with the tanh approximation (GPT-2, the default; "gelu"). GeluExact: the erf form
// 0.5 x (1 + erf(x / sqrt 2)) of PyTorch's nn.GELU(), which nanoGPT's model.py uses ("gelu_exact"), so a nanoGPT
// checkpoint is reproduced exactly. SwiGLU: c_proj(silu(c_gate(x)) * c_fc(x)).
enum class MlpKind { Gelu, GeluExact, SwiGLU };
// Learned: a trained (block_size, C) table added to the token embeddings (GPT-2). Sinusoidal: the fixed table of
// Vaswani et al. 2017 added the same way (no parameters, so it extends past block_size). Rope / Alibi act inside
// attention. None: no position signal at all.
enum class PosKind { Learned, Sinusoidal, Rope, Alibi, None };
enum class GammaKind { Alibi, Constant };
// gated attention's gate (docs/sink_remedies.md#gated-attention): Head = one gate per head and token, W_g (H, C),
// the default; Full = one gate per channel and token, W_g (C, C) (the paper's elementwise variant).
enum class GateKind { Head, Full };

struct GPTConfig {
  // sizes
  std::int64_t vocab_size = 65;
  std::int64_t block_size = 64;  // the training length L (StableMask's Z(i) uses it)
  std::int64_t n_layer = 4;
  std::int64_t n_head = 4;
  std::int64_t n_embd = 128;
  // architecture
  bool bias = true;
  NormKind norm = NormKind::LayerNorm;
  MlpKind mlp = MlpKind::Gelu;
  PosKind pos = PosKind::Learned;
  double dropout = 0.0;
  // attention
  std::string mask = "causal";         // an attention strategy's name (nn/attention_strategy.h)
  GammaKind gamma = GammaKind::Alibi;  // StableMask decay per head: ALiBi slopes, or one constant
  double gamma_value = 0.5;            // used when gamma == Constant
  StableMaskTail tail = StableMaskTail::Finite;
  GateKind gate = GateKind::Head;      // used by mask = gated; in the JSON only when full (old configs read back the same)

  void validate() const;  // throws naming the field, its value and the rule
  std::string to_json() const;
  static GPTConfig from_json(const std::string& json);  // validates; unknown keys are an error
  std::vector<double> gammas() const;                   // (n_head) decay per head
  std::int64_t head_size() const { return n_embd / n_head; }
  // Whether the model reads positions at and past block_size: every encoding but learned, whose table ends
  // there. The one statement of this rule; check_positions enforces it.
  bool positions_extrapolate() const { return pos != PosKind::Learned; }
  // Throws, naming who asked, when positions first .. first+T-1 go past what the model can read.
  void check_positions(const std::string& who, std::int64_t first, std::int64_t T) const;
};

const char* to_string(NormKind k);
const char* to_string(MlpKind k);
const char* to_string(PosKind k);
const char* to_string(GammaKind k);
const char* to_string(StableMaskTail k);
const char* to_string(GateKind k);
NormKind parse_norm(const std::string& s);  // each throws listing the valid names
MlpKind parse_mlp(const std::string& s);
PosKind parse_pos(const std::string& s);
GammaKind parse_gamma(const std::string& s);
StableMaskTail parse_tail(const std::string& s);
GateKind parse_gate(const std::string& s);

// The fixed sinusoidal table of Vaswani et al. for absolute positions first..first+T-1, shape (T, C), C even:
//   PE[t, 2i] = sin(p w_i),  PE[t, 2i+1] = cos(p w_i),  p = first + t,  w_i = 10000^(-2i/C)
// Amplitude 1, as published, although GPT-2's token embeddings start at std 0.02: a fixed table cannot grow
// while the token embeddings do, and scaled down to the learned table's 0.02 it was drowned. Measured on the
// position tasks (bench/position_tasks, T = 32, 300 steps, 2 seeds): parity 53% (causal) and 56% (StableMask)
// at RMS 0.02, 98% and 100% at amplitude 1 (the paper reports 96%).
Tensor sinusoidal_positions(std::int64_t first, std::int64_t T, std::int64_t C, DType dtype = DType::F32);

// Receives each layer's attention probabilities (B, H, T, T) during a forward pass that asks for them.
struct AttentionRecorder {
  std::vector<Tensor> layers;
  std::vector<Tensor> residual;  // the residual stream (B,T,C) after each block (massive activations)
  // The recorded maps of batch row b as (n_layer, n_head, T, T), float32.
  Tensor stacked(std::int64_t b = 0) const;
};

// Per-layer key/value cache for generation: keys and values (H, T_cached, hs) of batch row 0.
struct KVCache {
  std::vector<Tensor> k, v;  // one per layer, (1, H, T_cached, hs) after rotary embedding
  std::int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  void clear() {
    k.clear();
    v.clear();
  }
};

struct ForwardOptions {
  AttentionRecorder* recorder = nullptr;  // record probabilities (forces the materialized attention path)
  std::int64_t first_position = 0;        // absolute position of token 0 (for sliding windows / KV cache)
  bool fused_attention = true;            // use the flash kernel when allowed (float32, no recorder)
  KVCache* cache = nullptr;               // append this call's keys/values and attend over the cache (B = 1)
};

class GPT : public Module {
 public:
  GPT(const GPTConfig& config, std::uint64_t seed);
  ~GPT() override;
  const GPTConfig& config() const { return config_; }

  // idx holds B*T token ids, row-major. Returns logits (B, T, vocab) as a Var (graph recorded unless NoGrad).
  Var forward(const std::vector<std::int32_t>& idx, std::int64_t B, std::int64_t T, const ForwardOptions& opt = {});
  // Mean cross-entropy over positions whose target is not -1.
  Var loss(const Var& logits, const std::vector<std::int32_t>& targets) const;

  // Parameter tensors under nanoGPT names (the tied token embedding once, as transformer.wte.weight).
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  // Copies values in by name; checks names and shapes (lm_head.weight is accepted as an alias of
  // transformer.wte.weight; both may be present when equal). Any other unknown or missing name is an error.
  void load_state_dict(const std::vector<std::pair<std::string, Tensor>>& tensors, const std::string& source);

  // The parameter names and shapes a config implies, computed without building the model, so a loader can
  // reject a file whose tensors do not fit before it allocates anything. (A test keeps it equal to the
  // constructed model's named_parameters.)
  static std::vector<std::pair<std::string, Shape>> parameter_shapes(const GPTConfig& config);
  // The checks of load_state_dict, without a model: names (with the lm_head.weight alias) and shapes.
  static void check_state_dict(const GPTConfig& config, const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::string& source);

  // The dropout stream, so a resumed run draws the same masks as an uninterrupted one.
  Rng::State dropout_rng_state() const;
  void set_dropout_rng_state(const Rng::State& state);

  // The model in float64 (same values), for gradient checks and reference tests.
  void to_double();
  DType dtype() const { return dtype_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  GPTConfig config_;
  DType dtype_ = DType::F32;
};

}  // namespace gradlab
