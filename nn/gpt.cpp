// The GPT: layers in the order data flows through them, each forward readable top to bottom.
#include "nn/gpt.h"

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "autograd/attention.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

namespace gradlab {

// ---------------------------------------------------------------------------------------------------------
// Config

namespace {
template <typename E>
E parse_enum(const char* what, const std::string& s, std::initializer_list<std::pair<const char*, E>> names) {
  std::string valid;
  for (auto& [n, e] : names) {
    if (s == n) return e;
    valid += (valid.empty() ? "" : ", ") + std::string(n);
  }
  throw_error("unknown ", what, " '", s, "', expected one of: ", valid);
}
}  // namespace

const char* to_string(NormKind k) { return k == NormKind::LayerNorm ? "layernorm" : "rmsnorm"; }
const char* to_string(MlpKind k) {
  switch (k) {
    case MlpKind::Gelu: return "gelu";
    case MlpKind::GeluExact: return "gelu_exact";
    default: return "swiglu";
  }
}
const char* to_string(PosKind k) {
  switch (k) {
    case PosKind::Learned: return "learned";
    case PosKind::Sinusoidal: return "sinusoidal";
    case PosKind::Rope: return "rope";
    case PosKind::Alibi: return "alibi";
    default: return "none";
  }
}
const char* to_string(GammaKind k) { return k == GammaKind::Alibi ? "alibi" : "constant"; }
const char* to_string(StableMaskTail k) { return k == StableMaskTail::Finite ? "finite" : "infinite"; }
const char* to_string(GateKind k) { return k == GateKind::Head ? "head" : "full"; }
NormKind parse_norm(const std::string& s) {
  return parse_enum<NormKind>("norm", s, {{"layernorm", NormKind::LayerNorm}, {"rmsnorm", NormKind::RMSNorm}});
}
MlpKind parse_mlp(const std::string& s) {
  return parse_enum<MlpKind>("mlp", s,
                             {{"gelu", MlpKind::Gelu}, {"gelu_exact", MlpKind::GeluExact}, {"swiglu", MlpKind::SwiGLU}});
}
PosKind parse_pos(const std::string& s) {
  return parse_enum<PosKind>("pos", s,
                             {{"learned", PosKind::Learned},
                              {"sinusoidal", PosKind::Sinusoidal},
                              {"rope", PosKind::Rope},
                              {"alibi", PosKind::Alibi},
                              {"none", PosKind::None}});
}
GammaKind parse_gamma(const std::string& s) {
  return parse_enum<GammaKind>("gamma", s, {{"alibi", GammaKind::Alibi}, {"constant", GammaKind::Constant}});
}
StableMaskTail parse_tail(const std::string& s) {
  return parse_enum<StableMaskTail>("tail", s, {{"finite", StableMaskTail::Finite}, {"infinite", StableMaskTail::Infinite}});
}
GateKind parse_gate(const std::string& s) {
  return parse_enum<GateKind>("gate", s, {{"head", GateKind::Head}, {"full", GateKind::Full}});
}

void GPTConfig::validate() const {
  auto need = [](bool ok, const char* field, auto value, const char* rule) {
    if (!ok) throw_error("config: ", field, " = ", value, " is invalid: ", rule);
  };
  need(vocab_size >= 1 && vocab_size <= (1 << 24), "vocab_size", vocab_size, "expected 1 to 16777216");
  need(block_size >= 1 && block_size <= (1 << 20), "block_size", block_size, "expected 1 to 1048576");
  need(n_layer >= 1 && n_layer <= 1024, "n_layer", n_layer, "expected 1 to 1024");
  need(n_head >= 1 && n_head <= 1024, "n_head", n_head, "expected 1 to 1024");
  need(n_embd >= 1 && n_embd <= (1 << 16), "n_embd", n_embd, "expected 1 to 65536");
  if (n_embd % n_head != 0)
    throw_error("config: n_head = ", n_head, " does not divide n_embd = ", n_embd, "; choose n_embd a multiple of n_head");
  if (pos == PosKind::Sinusoidal && n_embd % 2 != 0)
    throw_error("config: pos = sinusoidal needs an even n_embd (sine and cosine pairs), got ", n_embd);
  if (pos == PosKind::Rope && head_size() % 2 != 0)
    throw_error("config: pos = rope needs an even head size, got n_embd / n_head = ", head_size());
  need(dropout >= 0.0 && dropout < 1.0, "dropout", dropout, "expected 0 <= dropout < 1");
  need(std::isfinite(gamma_value) && gamma_value > 0, "gamma", gamma_value, "expected a finite gamma > 0");
  strategy_info(mask);  // throws listing the strategies
}

void GPTConfig::check_positions(const std::string& who, std::int64_t first, std::int64_t T) const {
  if (positions_extrapolate() || first + T <= block_size) return;
  throw_error(who, ": positions up to ", first + T - 1, " go past the training length L = ", block_size,
              " of a model with learned positions; learned position embeddings exist only for positions 0..",
              block_size - 1, " and cannot extrapolate (rope, alibi, sinusoidal and none can)");
}

std::vector<double> GPTConfig::gammas() const {
  if (gamma == GammaKind::Constant) return std::vector<double>(static_cast<std::size_t>(n_head), gamma_value);
  return alibi_slopes(n_head);
}

std::string GPTConfig::to_json() const {
  nlohmann::json j = {{"vocab_size", vocab_size}, {"block_size", block_size}, {"n_layer", n_layer},
                      {"n_head", n_head},         {"n_embd", n_embd},         {"bias", bias},
                      {"norm", to_string(norm)},  {"mlp", to_string(mlp)},    {"pos", to_string(pos)},
                      {"dropout", dropout},       {"mask", mask},  {"gamma", to_string(gamma)},
                      {"gamma_value", gamma_value}, {"tail", to_string(tail)}};
  if (gate != GateKind::Head) j["gate"] = to_string(gate);  // absent = head: configs from before read back the same
  return j.dump();
}

namespace {
// A value for an error message. Never dump() containers: a hostile, deeply nested value would recurse once
// per level (a fuzzer found the stack overflow).
std::string describe(const nlohmann::json& v) {
  if (v.is_primitive()) {
    std::string s = v.dump();
    return s.size() > 40 ? s.substr(0, 40) + "..." : s;
  }
  return std::string("a JSON ") + v.type_name();
}
}  // namespace

GPTConfig GPTConfig::from_json(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw_error("config: the JSON is not an object: ", nlohmann::json(text.substr(0, 80)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  GPTConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    auto integer = [&]() -> std::int64_t {
      if (!v.is_number_integer()) throw_error("config: ", key, " must be an integer, got ", describe(v));
      return v.get<std::int64_t>();
    };
    auto number = [&]() -> double {
      if (!v.is_number()) throw_error("config: ", key, " must be a number, got ", describe(v));
      return v.get<double>();
    };
    auto text_of = [&]() -> std::string {
      if (!v.is_string()) throw_error("config: ", key, " must be a string, got ", describe(v));
      return v.get<std::string>();
    };
    if (key == "vocab_size") c.vocab_size = integer();
    else if (key == "block_size") c.block_size = integer();
    else if (key == "n_layer") c.n_layer = integer();
    else if (key == "n_head") c.n_head = integer();
    else if (key == "n_embd") c.n_embd = integer();
    else if (key == "bias") {
      if (!v.is_boolean()) throw_error("config: bias must be true or false, got ", describe(v));
      c.bias = v.get<bool>();
    } else if (key == "norm") c.norm = parse_norm(text_of());
    else if (key == "mlp") c.mlp = parse_mlp(text_of());
    else if (key == "pos") c.pos = parse_pos(text_of());
    else if (key == "dropout") c.dropout = number();
    else if (key == "mask") c.mask = strategy_info(text_of()).name;
    else if (key == "gamma") c.gamma = parse_gamma(text_of());
    else if (key == "gamma_value") c.gamma_value = number();
    else if (key == "tail") c.tail = parse_tail(text_of());
    else if (key == "gate") c.gate = parse_gate(text_of());
    else throw_error("config: unknown key '", key, "'");
  }
  c.validate();
  return c;
}

// ---------------------------------------------------------------------------------------------------------
// Layers

namespace {

Tensor normal_tensor(const Shape& shape, double std, Rng& rng) {
  std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) x = static_cast<float>(rng.normal(0.0, std));
  return Tensor::from_floats(shape, v);
}

class Linear : public Module {
 public:
  // weight is (out, in) as in PyTorch; init normal(0, std), bias zero
  Linear(std::int64_t in, std::int64_t out, bool bias, double std, Rng& rng) {
    weight = register_parameter("weight", normal_tensor({out, in}, std, rng));
    if (bias) this->bias = register_parameter("bias", Tensor::zeros({out}));
  }
  // x is (..., in) -> (..., out):  y = x @ W^T + b
  Var forward(const Var& x) const {
    return linear(x, weight, bias);  // one fused op: gradients come out contiguous, no transpose copies
  }
  Var weight, bias;
};

class Norm : public Module {
 public:
  Norm(std::int64_t C, NormKind kind, bool bias) : kind_(kind) {
    weight = register_parameter("weight", Tensor::ones({C}));
    if (bias && kind == NormKind::LayerNorm) this->bias = register_parameter("bias", Tensor::zeros({C}));
  }
  // x is (B,T,C)
  Var forward(const Var& x) const {
    return kind_ == NormKind::LayerNorm ? layernorm(x, weight, bias) : rmsnorm(x, weight);
  }
  Var weight, bias;

 private:
  NormKind kind_;
};

class Mlp : public Module {
 public:
  Mlp(const GPTConfig& c, Rng& rng) : kind_(c.mlp) {
    const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer));
    c_fc = &register_module("c_fc", std::make_unique<Linear>(c.n_embd, 4 * c.n_embd, c.bias, 0.02, rng));
    if (kind_ == MlpKind::SwiGLU)
      c_gate = &register_module("c_gate", std::make_unique<Linear>(c.n_embd, 4 * c.n_embd, c.bias, 0.02, rng));
    c_proj = &register_module("c_proj", std::make_unique<Linear>(4 * c.n_embd, c.n_embd, c.bias, proj_std, rng));
  }
  // x is (B,T,C) -> (B,T,C)
  Var forward(const Var& x) const {
    if (kind_ == MlpKind::Gelu) return c_proj->forward(gelu(c_fc->forward(x)));
    if (kind_ == MlpKind::GeluExact) return c_proj->forward(gelu_exact(c_fc->forward(x)));
    // SwiGLU: c_proj( silu(c_gate(x)) * c_fc(x) ), silu(g) = g * sigmoid(g)
    Var g = c_gate->forward(x);
    return c_proj->forward(mul(mul(g, sigmoid(g)), c_fc->forward(x)));
  }
  Linear *c_fc = nullptr, *c_gate = nullptr, *c_proj = nullptr;

 private:
  MlpKind kind_;
};

}  // namespace

Tensor sinusoidal_positions(std::int64_t first, std::int64_t T, std::int64_t C, DType dtype) {
  // out is (T,C)
  if (first < 0 || T < 1 || C < 2 || C % 2 != 0)
    throw_error("sinusoidal_positions: got first = ", first, ", T = ", T, ", C = ", C,
                "; expected first >= 0, T >= 1 and an even C >= 2");
  std::vector<double> table(static_cast<std::size_t>(T * C));
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t i = 0; i < C / 2; ++i) {
      const double angle = static_cast<double>(first + t) * std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(C));
      table[t * C + 2 * i] = std::sin(angle);
      table[t * C + 2 * i + 1] = std::cos(angle);
    }
  return Tensor::from_values({T, C}, table, dtype);
}

namespace {

class Attention : public Module {
 public:
  Attention(const GPTConfig& c, Rng& rng) : cfg_(c) {
    const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer));
    c_attn = &register_module("c_attn", std::make_unique<Linear>(c.n_embd, 3 * c.n_embd, c.bias, 0.02, rng));
    c_proj = &register_module("c_proj", std::make_unique<Linear>(c.n_embd, c.n_embd, c.bias, proj_std, rng));
    // registered without a name prefix of its own: a strategy's parameters sit beside c_attn and c_proj
    strategy_ = &register_module("", make_attention_strategy(c));
  }

  // x is (B,T,C) -> (B,T,C). Three paths, one meaning: fused (training), KV-cached (generation), materialized
  // (the recorder for heatmaps, and float64 for gradient checks and the PyTorch fixtures).
  Var forward(const Var& x, const ForwardOptions& opt, std::int64_t layer) const {
    // qkv = c_attn(x): q, k, v in that order along the output dimension (B,T,3C); RoPE rotates q and k in place
    // of that layout (rope_qkv; tests/autograd/test_rope_qkv.cpp keeps the composite version as its oracle)
    Var qkv = c_attn->forward(x);
    if (cfg_.pos == PosKind::Rope) qkv = rope_qkv(qkv, cfg_.n_head, opt.first_position);
    Var y;
    if (opt.cache) y = forward_cached(qkv, opt, layer);
    else if (opt.fused_attention && !opt.recorder && x.dtype() == DType::F32 && strategy_->fused_supported())
      y = forward_fused(qkv, opt.first_position);
    else y = forward_materialized(qkv, opt);
    return c_proj->forward(strategy_->gate(y, x));
  }
  Linear *c_attn = nullptr, *c_proj = nullptr;

 private:
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(cfg_.head_size())); }

  // The flash kernel reads the heads straight out of qkv (B,T,3C) and writes y (B,T,C) with the heads side by
  // side: no split, permute or copy either way.
  Var forward_fused(const Var& qkv, std::int64_t q0) const {
    const Var tau = strategy_->tau_var(qkv.size(1), q0, DType::F32);
    auto [null_k, null_v] = strategy_->null_kv(DType::F32);
    return attention_fused_qkv(qkv, cfg_.n_head, tau, strategy_->alibi_slopes(), scale(), null_k, null_v);
  }

  // Generation (B = 1): this call's keys and values are appended to the layer's cache, and the queries attend
  // over all of it. The cached keys sit at the positions just before q0.
  Var forward_cached(const Var& qkv, const ForwardOptions& opt, std::int64_t layer) const {
    if (qkv.size(0) != 1) throw_error("attention: a KV cache needs batch size 1, got ", qkv.size(0));
    Heads h = split_heads(qkv);
    auto& ck = opt.cache->k;
    auto& cv = opt.cache->v;
    if (static_cast<std::int64_t>(ck.size()) <= layer) {
      ck.resize(static_cast<std::size_t>(layer + 1));
      cv.resize(static_cast<std::size_t>(layer + 1));
    }
    // exercise 12.1 begin: KV-cache append: prepend the cached keys and values, then store the new ones
    if (ck[layer].defined()) {
      h.k = concat({Var::leaf(ck[layer]), h.k}, 2);
      h.v = concat({Var::leaf(cv[layer]), h.v}, 2);
    }
    ck[layer] = h.k.data().contiguous();
    cv[layer] = h.v.data().contiguous();
    // exercise 12.1 end
    const std::int64_t k0 = opt.first_position - (h.k.size(2) - qkv.size(1));
    return attend(h, opt.first_position, k0, opt.recorder);
  }

  // The (B,H,T,T) probabilities built from elementary ops, handed to the recorder when there is one.
  Var forward_materialized(const Var& qkv, const ForwardOptions& opt) const {
    return attend(split_heads(qkv), opt.first_position, opt.first_position, opt.recorder);
  }

  struct Heads {
    Var q, k, v;  // (B,H,T,D) each
  };
  Heads split_heads(const Var& qkv) const {
    // qkv is (B,T,3C) -> three (B,H,T,D)
    const std::int64_t B = qkv.size(0), T = qkv.size(1), C = cfg_.n_embd, H = cfg_.n_head, D = C / H;
    auto parts = split(qkv, {C, C, C}, -1);
    auto heads = [&](const Var& t) { return permute(reshape(t, {B, T, H, D}), {0, 2, 1, 3}); };
    return {heads(parts[0]), heads(parts[1]), heads(parts[2])};
  }

  // Materialized attention of queries at positions q0.. over keys at k0..; returns y (B,T,C), heads re-assembled.
  Var attend(const Heads& h, std::int64_t q0, std::int64_t k0, AttentionRecorder* recorder) const {
    const std::int64_t B = h.q.size(0), T = h.q.size(2), Tk = h.k.size(2);
    const DType dtype = h.q.dtype();
    Tensor probs;
    Tensor bias = strategy_->bias(T, Tk, q0, k0, dtype);
    auto [null_k, null_v] = strategy_->null_kv(dtype);
    Var y;
    if (null_k.defined()) {
      // null-kv: the learned key and value go in front of the real keys, always visible (bias 0); the recorder
      // keeps the real keys only, so the null key's mass shows as 1 - R_i like a sink's
      const std::int64_t H = cfg_.n_head, D = cfg_.head_size();
      // k0, v0 (H,D) -> (B,H,1,D): broadcast over the batch, so their gradients sum over it
      auto expand = [&](const Var& p) {
        return add(Var::leaf(Tensor::zeros({B, H, 1, D}, dtype)), reshape(p, {1, H, 1, D}));
      };
      Tensor full = Tensor::zeros({H, T, Tk + 1}, dtype);
      full.narrow(2, 1, Tk).copy_(bias);
      y = attention_materialized(h.q, concat({expand(null_k), h.k}, 2), concat({expand(null_v), h.v}, 2), full,
                                 strategy_->tau_var(T, q0, dtype), scale(), recorder ? &probs : nullptr);
      if (recorder) probs = probs.narrow(3, 1, Tk).contiguous();
    } else {
      y = attention_materialized(h.q, h.k, h.v, bias, strategy_->tau_var(T, q0, dtype), scale(),
                                 recorder ? &probs : nullptr);
    }
    if (recorder) recorder->layers.push_back(probs);
    // (B,H,T,D) -> (B,T,C)
    return reshape(permute(y, {0, 2, 1, 3}), {B, T, cfg_.n_embd});
  }

  GPTConfig cfg_;
  AttentionStrategy* strategy_ = nullptr;
};

class Block : public Module {
 public:
  Block(const GPTConfig& c, Rng& rng) {
    ln_1 = &register_module("ln_1", std::make_unique<Norm>(c.n_embd, c.norm, c.bias));
    attn = &register_module("attn", std::make_unique<Attention>(c, rng));
    ln_2 = &register_module("ln_2", std::make_unique<Norm>(c.n_embd, c.norm, c.bias));
    mlp = &register_module("mlp", std::make_unique<Mlp>(c, rng));
  }
  Norm* ln_1;
  Attention* attn;
  Norm* ln_2;
  Mlp* mlp;
};

class Transformer : public Module {
 public:
  Transformer(const GPTConfig& c, Rng& rng) {
    wte = register_parameter("wte.weight", normal_tensor({c.vocab_size, c.n_embd}, 0.02, rng));
    if (c.pos == PosKind::Learned) wpe = register_parameter("wpe.weight", normal_tensor({c.block_size, c.n_embd}, 0.02, rng));
    for (std::int64_t i = 0; i < c.n_layer; ++i)
      h.push_back(&register_module("h." + std::to_string(i), std::make_unique<Block>(c, rng)));
    ln_f = &register_module("ln_f", std::make_unique<Norm>(c.n_embd, c.norm, c.bias));
  }
  Var wte, wpe;
  std::vector<Block*> h;
  Norm* ln_f;
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// GPT

struct GPT::Impl {
  explicit Impl(std::uint64_t seed) : init_rng(seed), dropout_rng(seed ^ 0x9e3779b97f4a7c15ULL) {}
  Rng init_rng, dropout_rng;
  Transformer* transformer = nullptr;
};

GPT::GPT(const GPTConfig& config, std::uint64_t seed) : config_(config) {
  config_.validate();
  impl_ = std::make_unique<Impl>(seed);
  impl_->transformer = &register_module("transformer", std::make_unique<Transformer>(config_, impl_->init_rng));
}

GPT::~GPT() = default;

Var GPT::forward(const std::vector<std::int32_t>& idx, std::int64_t B, std::int64_t T, const ForwardOptions& opt) {
  // idx is (B,T) token ids
  if (B < 1 || T < 1 || static_cast<std::int64_t>(idx.size()) != B * T)
    throw_error("GPT::forward: got ", idx.size(), " token ids for B = ", B, ", T = ", T, ", expected B*T >= 1 ids");
  if (opt.first_position < 0) throw_error("GPT::forward: got first_position ", opt.first_position, ", expected >= 0");
  Transformer& tr = *impl_->transformer;
  config_.check_positions("GPT::forward", opt.first_position, T);
  // x = wte[idx] + wpe[pos]      (B,T,C)
  Var x = embedding(tr.wte, idx, B, T);
  if (config_.pos == PosKind::Learned) x = add(x, slice(tr.wpe, 0, opt.first_position, opt.first_position + T));
  if (config_.pos == PosKind::Sinusoidal)
    x = add(x, Var::leaf(sinusoidal_positions(opt.first_position, T, config_.n_embd, dtype_)));
  x = dropout(x, config_.dropout, impl_->dropout_rng, training());
  if (opt.recorder) opt.recorder->layers.clear(), opt.recorder->residual.clear();
  for (std::size_t l = 0; l < tr.h.size(); ++l) {
    Block& blk = *tr.h[l];
    // x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    x = add(x, dropout(blk.attn->forward(blk.ln_1->forward(x), opt, static_cast<std::int64_t>(l)), config_.dropout,
                       impl_->dropout_rng, training()));
    x = add(x, dropout(blk.mlp->forward(blk.ln_2->forward(x)), config_.dropout, impl_->dropout_rng, training()));
    if (opt.recorder) opt.recorder->residual.push_back(x.data().contiguous());
  }
  x = tr.ln_f->forward(x);
  // logits = x @ wte^T        (B,T,V), lm_head tied to the token embedding
  return linear(x, tr.wte);
}

Var GPT::loss(const Var& logits, const std::vector<std::int32_t>& targets) const {
  return cross_entropy(logits, targets, -1);
}

std::vector<std::pair<std::string, Tensor>> GPT::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, v] : named_parameters()) out.emplace_back(name, v.data());
  return out;
}

std::vector<std::pair<std::string, Shape>> GPT::parameter_shapes(const GPTConfig& c) {
  c.validate();
  const std::int64_t C = c.n_embd;
  std::vector<std::pair<std::string, Shape>> out;
  auto linear = [&](const std::string& name, std::int64_t in, std::int64_t outf) {
    out.emplace_back(name + ".weight", Shape{outf, in});
    if (c.bias) out.emplace_back(name + ".bias", Shape{outf});
  };
  auto norm = [&](const std::string& name) {
    out.emplace_back(name + ".weight", Shape{C});
    if (c.bias && c.norm == NormKind::LayerNorm) out.emplace_back(name + ".bias", Shape{C});
  };
  out.emplace_back("transformer.wte.weight", Shape{c.vocab_size, C});
  if (c.pos == PosKind::Learned) out.emplace_back("transformer.wpe.weight", Shape{c.block_size, C});
  const auto strategy_shapes = make_attention_strategy(c)->parameter_shapes();  // the same in every layer
  for (std::int64_t i = 0; i < c.n_layer; ++i) {
    const std::string h = "transformer.h." + std::to_string(i);
    norm(h + ".ln_1");
    linear(h + ".attn.c_attn", C, 3 * C);
    linear(h + ".attn.c_proj", C, C);
    for (const auto& [name, shape] : strategy_shapes) out.emplace_back(h + ".attn." + name, shape);
    norm(h + ".ln_2");
    linear(h + ".mlp.c_fc", C, 4 * C);
    if (c.mlp == MlpKind::SwiGLU) linear(h + ".mlp.c_gate", C, 4 * C);
    linear(h + ".mlp.c_proj", 4 * C, C);
  }
  norm("transformer.ln_f");
  return out;
}

// Resolves the tied-embedding alias and returns the tensors by parameter name, after every check.
static std::map<std::string, Tensor> resolve_state_dict(const GPTConfig& config,
                                                         const std::vector<std::pair<std::string, Tensor>>& tensors,
                                                         const std::string& source) {
  std::map<std::string, Tensor> incoming;
  for (auto& [name, t] : tensors) {
    if (incoming.count(name)) throw_error(source, ": tensor '", name, "' appears twice");
    incoming[name] = t;
  }
  // The tied embedding may come as lm_head.weight (what PyTorch's save_model keeps), or under both names.
  const std::string wte = "transformer.wte.weight", head = "lm_head.weight";
  if (incoming.count(head)) {
    if (incoming.count(wte)) {
      if (incoming[head].shape() != incoming[wte].shape() || ops::max_abs_diff(incoming[head], incoming[wte]) != 0.0)
        throw_error(source, ": lm_head.weight differs from transformer.wte.weight, but gradlab ties them");
    } else {
      incoming[wte] = incoming[head];
    }
    incoming.erase(head);
  }
  std::map<std::string, Shape> expected;
  for (auto& [name, shape] : GPT::parameter_shapes(config)) expected[name] = shape;
  for (auto& [name, t] : incoming)
    if (!expected.count(name)) throw_error(source, ": unexpected tensor '", name, "' (not a parameter of this config)");
  for (auto& [name, shape] : expected) {
    auto it = incoming.find(name);
    if (it == incoming.end()) throw_error(source, ": missing tensor '", name, "'");
    if (it->second.shape() != shape)
      throw_error(source, ": tensor '", name, "' has shape ", shape_str(it->second.shape()), " but the config needs ",
                  shape_str(shape));
  }
  return incoming;
}

void GPT::check_state_dict(const GPTConfig& config, const std::vector<std::pair<std::string, Tensor>>& tensors,
                           const std::string& source) {
  resolve_state_dict(config, tensors, source);
}

void GPT::load_state_dict(const std::vector<std::pair<std::string, Tensor>>& tensors, const std::string& source) {
  std::map<std::string, Tensor> incoming = resolve_state_dict(config_, tensors, source);
  for (auto& [name, p] : named_parameters()) p.data() = incoming.at(name).to(dtype_).contiguous().clone();
}

Rng::State GPT::dropout_rng_state() const { return impl_->dropout_rng.get_state(); }
void GPT::set_dropout_rng_state(const Rng::State& state) { impl_->dropout_rng.set_state(state); }

void GPT::to_double() {
  for (auto& [name, p] : named_parameters()) p.data() = p.data().to(DType::F64);
  dtype_ = DType::F64;
}

Tensor AttentionRecorder::stacked(std::int64_t b) const {
  if (layers.empty()) throw_error("AttentionRecorder: nothing recorded (run a forward pass with the recorder set)");
  const Shape& s = layers[0].shape();  // (B,H,T,T)
  if (b < 0 || b >= s[0]) throw_error("AttentionRecorder: batch row ", b, " out of range for batch ", s[0]);
  Tensor out = Tensor::empty({static_cast<std::int64_t>(layers.size()), s[1], s[2], s[3]});
  for (std::size_t l = 0; l < layers.size(); ++l) out.select(0, static_cast<std::int64_t>(l)).copy_(layers[l].select(0, b));
  return out;
}

}  // namespace gradlab
