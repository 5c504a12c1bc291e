#pragma once
// Evaluation of a GPT: the evaluation rule, the loss per position within the window, accuracy for the position
// tasks, evaluation past the training length, a sliding KV window, and the gradient of the evaluation loss.
//
// The rule (gradlab eval, README): the token stream is cut into consecutive non-overlapping windows of T+1
// tokens, window k covering tokens [k(T+1), (k+1)(T+1)), starting at token 0; the last partial window is
// dropped. Each window's first T tokens are the inputs, its last T the targets. The loss is the mean
// cross-entropy over all targets of all windows (natural log). per_position[t] is the mean over windows of the
// loss at position t of a window (the extrapolation curve). For the position tasks the windows are the task's
// fixed evaluation sequences and only positions with a target (>= 0) count, in the loss and in the accuracy.
//
// Positions inside a window are absolute and start at 0. T > L (the training length, block_size) is allowed for
// positions that extend (rope, alibi, none); learned positions give an error. Under StableMask a row past L-1
// has no pseudo mass left (Z(i) = 0, finite tail; docs/stablemask.md#tail).
//
// Sliding window (window W, 1 <= W <= T): query t attends to the W most recent tokens, keys
// max(0, t-W+1) .. t; the oldest key is evicted, no sink tokens are kept. Positions stay absolute and the
// StableMask sink logit uses each row's absolute position. Implemented exactly as a reader would run it: a KV
// cache (KVDecoder) trimmed to the last W-1 keys before each new token. Each token's keys/values are computed
// once, when it is read, as in streaming inference.
//
// Kept first tokens (keep_first K, 1 <= K < W; StreamingLLM, Xiao et al. 2023): the cache holds the first K
// tokens for good plus the W-K most recent, W keys in all (the sinks count against the budget, as in
// StreamingLLM). Positions stay absolute (StreamingLLM re-numbers positions inside the cache; here a kept token
// keeps its own position, so RoPE sees the true distances).
//
// Window positions (window_positions = true; StreamingLLM's scheme): positions are counted inside the window, not
// in the stream. Query t (t >= W) reads the window's W tokens (the K kept, then the W-K most recent) at positions
// 0..W-1 and is the last of them; its keys are recomputed for every query (a sliding window with re-computation),
// so learned positions work as long as W <= L. Queries t < W see the plain prefix 0..t.
//
// Documents (the document rule of data/dataset.h): make_document_eval_windows starts window 0 at the first BOS
// and window k at the first BOS at or after the end of window k-1.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "nn/gpt.h"

namespace gradlab {

// Number of complete windows of T+1 tokens in a stream of n tokens (the partial last one dropped). T >= 1.
std::int64_t eval_window_count(std::int64_t n_tokens, std::int64_t T);
// The windows of the rule as a Batch (B = window count, targets shifted by one). Throws when the stream holds
// fewer than T+1 tokens, saying how many it has and how many one window needs.
Batch make_eval_windows(const std::vector<std::int32_t>& tokens, std::int64_t T);
// The same under the document rule (windows start at a BOS). Throws when no BOS is followed by T+1 tokens.
Batch make_document_eval_windows(const std::vector<std::int32_t>& tokens, std::int64_t T, std::int32_t bos);

// Throws a one-line error unless the model can be evaluated on windows of T positions with a sliding window W
// (0 = none) keeping the first K tokens: T >= 1; 0 <= W <= T; 0 <= K < W when K > 0; learned positions need
// T <= block_size.
void check_eval_length(const GPTConfig& config, std::int64_t T, std::int64_t window, std::int64_t keep_first = 0,
                       bool window_positions = false);

struct EvalOptions {
  std::int64_t window = 0;      // sliding KV window W; 0 (or W >= T): full causal attention over the window
  std::int64_t keep_first = 0;  // K: the first K tokens stay in the window (StreamingLLM); needs 0 < K < W
  bool window_positions = false;  // positions 0..W-1 inside the window, keys recomputed (see above); needs W
  std::int64_t batch_size = 8;  // windows per forward pass on the full-attention path
  bool accuracy = false;        // count argmax(logits) == target (the position tasks)
  bool grads = false;           // accumulate d(mean loss)/d(parameter) into EvalResult::grads
};

struct EvalResult {
  double loss = 0.0;           // mean cross-entropy over every target
  std::int64_t tokens = 0;     // targets counted
  std::int64_t windows = 0;    // windows evaluated
  std::int64_t T = 0;          // positions per window
  std::int64_t window = 0;     // the sliding window asked for (0: none; W >= T is the same as none)
  std::int64_t keep_first = 0; // first tokens kept in the window
  std::vector<double> per_position;             // (T) mean loss at each position; NaN where no target
  std::vector<std::int64_t> per_position_count; // (T) targets at each position
  double accuracy = 0.0;                        // when EvalOptions::accuracy
  std::vector<double> per_position_accuracy;    // (T) when EvalOptions::accuracy; NaN where no target
  std::map<std::string, Tensor> grads;          // when EvalOptions::grads: parameter name -> gradient
};

// Evaluates the windows (inputs/targets (B, T), -1 = no target) with the model in eval mode (restored after).
// Throws when no window carries a target, when T or W are invalid for the model, or when a token id lies
// outside the vocabulary. grads with a sliding window (W < T) is refused: the cache holds values, not graphs.
EvalResult evaluate(GPT& model, const Batch& windows, const EvalOptions& opt = {});

// Streaming inference: reads tokens one after another through a KV cache (B = 1) that holds at most `window`
// keys per layer (0 = unbounded), the first keep_first of them kept for good, positions counted from 0 and
// absolute. feed() runs several tokens in one forward pass whenever that is exactly equivalent (all of them
// still see their full window), else one by one.
class KVDecoder {
 public:
  explicit KVDecoder(GPT& model, std::int64_t window = 0, std::int64_t keep_first = 0);
  // The logits (n, vocab) of each of the n tokens, in the model's dtype. No graph is recorded.
  Tensor feed(const std::vector<std::int32_t>& tokens);
  std::int64_t position() const { return position_; }  // tokens read so far = absolute position of the next one
  std::int64_t cached() const { return cache_.length(); }
  void reset();

 private:
  void trim_cache(std::int64_t keep);
  GPT& model_;
  std::int64_t window_;
  std::int64_t keep_first_;
  std::int64_t position_ = 0;
  KVCache cache_;
};

}  // namespace gradlab
