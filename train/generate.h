#pragma once
// Sampling text (or any token stream) from a GPT with a KV cache, seeded.
//
//   for each new token:  logits of the last position -> / temperature -> keep the top_k largest
//                        -> softmax -> draw one id with the Rng -> feed it through the KV cache
//
// temperature 0 means greedy (argmax, the first of equal maxima). top_k 0 keeps every token; ties with the
// k-th largest logit are kept (as nanoGPT's `logits < v[-1]` rule). The same model, prompt, options and seed
// give the same tokens.
//
// Context: positions are absolute. For rope, alibi, sinusoidal and none the cache keeps the block_size (L) most
// recent keys, evicting the oldest (the sliding window of train/evaluate.h, so a long generation attends like
// training).
// Learned positions exist only for 0..L-1: once the sequence is L tokens long, each step re-reads the last L
// tokens from position 0 without a cache (nanoGPT's crop).
#include <cstdint>
#include <functional>
#include <vector>

#include "nn/gpt.h"
#include "tensor/rng.h"

namespace gradlab {

struct SampleOptions {
  std::int64_t max_new_tokens = 200;
  double temperature = 1.0;  // 0: greedy
  std::int64_t top_k = 0;    // 0: all tokens
  std::uint64_t seed = 1337;
  void validate(std::int64_t vocab_size) const;  // throws naming the field and its value
};

// One id drawn from logits (V) with the rule above.
std::int32_t sample_token(const std::vector<double>& logits, double temperature, std::int64_t top_k, Rng& rng);

// Returns the new tokens only (not the prompt). on_token, when set, sees each token as it is drawn.
// The prompt must be non-empty with ids in [0, vocab_size).
std::vector<std::int32_t> generate(GPT& model, const std::vector<std::int32_t>& prompt, const SampleOptions& opt,
                                   const std::function<void(std::int32_t)>& on_token = {});

}  // namespace gradlab
