#include "train/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "train/diagnose.h"
#include "train/evaluate.h"
#include "tensor/error.h"

namespace gradlab {

void SampleOptions::validate(std::int64_t vocab_size) const {
  if (max_new_tokens < 0) throw_error("sample: got max_new_tokens ", max_new_tokens, ", expected >= 0");
  if (!(temperature >= 0.0) || !std::isfinite(temperature))
    throw_error("sample: got temperature ", temperature, ", expected a finite value >= 0 (0 = greedy)");
  if (top_k < 0 || top_k > vocab_size)
    throw_error("sample: got top_k ", top_k, ", expected 0 (all) .. the vocabulary size ", vocab_size);
}

std::int32_t sample_token(const std::vector<double>& logits, double temperature, std::int64_t top_k, Rng& rng) {
  // logits is (V)
  const std::int64_t V = static_cast<std::int64_t>(logits.size());
  if (V < 1) throw_error("sample_token: got no logits");
  for (std::int64_t c = 0; c < V; ++c)
    if (!std::isfinite(logits[c]))
      throw NonFiniteError("the logit of token " + std::to_string(c) + " is " + nonfinite_name(logits[c]));
  std::int64_t best = 0;
  for (std::int64_t c = 1; c < V; ++c)
    if (logits[c] > logits[best]) best = c;
  if (temperature == 0.0) return static_cast<std::int32_t>(best);
  // the k-th largest logit is the cut-off; everything below it gets probability 0
  double cutoff = -std::numeric_limits<double>::infinity();
  if (top_k > 0 && top_k < V) {
    std::vector<double> sorted(logits);
    std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<double>());
    cutoff = sorted[static_cast<std::size_t>(top_k - 1)];
  }
  // softmax(logits / temperature) over the kept tokens, shifted by the maximum for stability
  std::vector<double> p(static_cast<std::size_t>(V), 0.0);
  double total = 0.0;
  for (std::int64_t c = 0; c < V; ++c) {
    if (logits[c] < cutoff) continue;
    p[c] = std::exp((logits[c] - logits[best]) / temperature);
    total += p[c];
  }
  const double u = rng.uniform() * total;
  double acc = 0.0;
  std::int64_t last_kept = best;
  for (std::int64_t c = 0; c < V; ++c) {
    if (p[c] == 0.0) continue;
    acc += p[c];
    last_kept = c;
    if (u < acc) return static_cast<std::int32_t>(c);
  }
  return static_cast<std::int32_t>(last_kept);  // u landed on the rounding error at the very end
}

std::vector<std::int32_t> generate(GPT& model, const std::vector<std::int32_t>& prompt, const SampleOptions& opt,
                                   const std::function<void(std::int32_t)>& on_token) {
  // prompt is (P) -> new tokens (max_new_tokens)
  const GPTConfig& cfg = model.config();
  opt.validate(cfg.vocab_size);
  if (prompt.empty()) throw_error("generate: the prompt is empty; give at least one token");
  for (std::size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= cfg.vocab_size)
      throw_error("generate: prompt token ", prompt[i], " at position ", i, " outside the vocabulary [0, ",
                  cfg.vocab_size, ")");
  struct Restore {  // the model's train/eval mode, also when an error leaves early
    GPT& m;
    bool on;
    ~Restore() { m.train(on); }
  } restore{model, model.training()};
  model.eval();
  Rng rng(opt.seed);
  const std::int64_t L = cfg.block_size, V = cfg.vocab_size;
  const bool bounded = !cfg.positions_extrapolate();  // past L: re-read the last L tokens from position 0
  std::vector<std::int32_t> seq(prompt), out;

  // the logits of the last position of a fresh read of seq's last L tokens from position 0
  auto cropped_logits = [&]() {
    NoGrad no_grad;
    const std::int64_t n = std::min<std::int64_t>(L, static_cast<std::int64_t>(seq.size()));
    std::vector<std::int32_t> ids(seq.end() - n, seq.end());
    std::vector<double> all = model.forward(ids, 1, n).data().to_vector();
    return std::vector<double>(all.end() - V, all.end());
  };

  KVDecoder dec(model, bounded ? 0 : L);
  std::vector<double> last;
  if (bounded && static_cast<std::int64_t>(seq.size()) > L) {
    last = cropped_logits();
  } else {
    std::vector<double> all = dec.feed(seq).to_vector();
    last.assign(all.end() - V, all.end());
  }
  for (std::int64_t s = 0; s < opt.max_new_tokens; ++s) {
    const std::int32_t next = sample_token(last, opt.temperature, opt.top_k, rng);
    out.push_back(next);
    seq.push_back(next);
    if (on_token) on_token(next);
    if (s + 1 == opt.max_new_tokens) break;
    if (bounded && static_cast<std::int64_t>(seq.size()) > L) {
      last = cropped_logits();
    } else {
      last = dec.feed({next}).to_vector();
    }
  }
  return out;
}

}  // namespace gradlab
