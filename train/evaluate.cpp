#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "tensor/error.h"

namespace gradlab {

std::int64_t eval_window_count(std::int64_t n_tokens, std::int64_t T) {
  if (T < 1) throw_error("eval_window_count: got T = ", T, ", expected T >= 1");
  if (n_tokens < 0) throw_error("eval_window_count: got ", n_tokens, " tokens, expected >= 0");
  return n_tokens / (T + 1);
}

Batch make_eval_windows(const std::vector<std::int32_t>& tokens, std::int64_t T) {
  // tokens is (n) -> inputs, targets (B, T) with B = floor(n / (T+1))
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  const std::int64_t B = eval_window_count(n, T);
  if (B == 0)
    throw_error("evaluation windows: the text has ", n, " tokens, but one window of T = ", T, " needs ", T + 1,
                " (T inputs and the token after them); use a smaller --ctx or a longer text");
  Batch out;
  out.B = B, out.T = T;
  out.inputs.resize(static_cast<std::size_t>(B * T));
  out.targets.resize(static_cast<std::size_t>(B * T));
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int32_t* w = tokens.data() + b * (T + 1);
    std::copy(w, w + T, out.inputs.begin() + b * T);
    std::copy(w + 1, w + T + 1, out.targets.begin() + b * T);
  }
  return out;
}

Batch make_document_eval_windows(const std::vector<std::int32_t>& tokens, std::int64_t T, std::int32_t bos) {
  // tokens is (n) -> inputs, targets (B, T), window b starting at the b-th start of the document rule
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  const std::vector<std::int64_t> starts = document_window_starts(tokens.data(), n, T, bos);
  if (starts.empty())
    throw_error("evaluation windows: the text has ", n, " tokens but no BOS (id ", bos, ") followed by T+1 = ", T + 1,
                " tokens; use a smaller --ctx or longer documents");
  const std::int64_t B = static_cast<std::int64_t>(starts.size());
  Batch out;
  out.B = B, out.T = T;
  out.inputs.resize(static_cast<std::size_t>(B * T));
  out.targets.resize(static_cast<std::size_t>(B * T));
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int32_t* w = tokens.data() + starts[static_cast<std::size_t>(b)];
    std::copy(w, w + T, out.inputs.begin() + b * T);
    std::copy(w + 1, w + T + 1, out.targets.begin() + b * T);
  }
  return out;
}

void check_eval_length(const GPTConfig& config, std::int64_t T, std::int64_t window, std::int64_t keep_first,
                       bool window_positions) {
  if (T < 1) throw_error("evaluation: got context length T = ", T, ", expected T >= 1");
  if (window < 0) throw_error("evaluation: got sliding window W = ", window, ", expected W >= 1");
  if (window > T)
    throw_error("evaluation: got sliding window W = ", window, " larger than the context T = ", T,
                ", expected 1 <= W <= T");
  if (keep_first < 0) throw_error("evaluation: got keep_first K = ", keep_first, ", expected K >= 0");
  if (keep_first > 0 && window == 0)
    throw_error("evaluation: keep_first K = ", keep_first, " needs a sliding window W (the kept tokens are what a "
                "window would evict)");
  if (keep_first > 0 && keep_first >= window)
    throw_error("evaluation: got keep_first K = ", keep_first, " with window W = ", window,
                ", expected K < W (the window holds the K kept tokens and the W-K most recent)");
  if (window_positions && (window == 0 || window >= T))
    throw_error("evaluation: window positions need a sliding window W < T (got W = ", window, ", T = ", T, ")");
  // With window positions every window reads positions 0..W-1; otherwise the text's own 0..T-1.
  if (window_positions)
    config.check_positions("evaluation: window W = " + std::to_string(window) + " with window positions", 0, window);
  else
    config.check_positions("evaluation: context T = " + std::to_string(T), 0, T);
}

// ---------------------------------------------------------------------------------------------------------
// KVDecoder

KVDecoder::KVDecoder(GPT& model, std::int64_t window, std::int64_t keep_first)
    : model_(model), window_(window), keep_first_(keep_first) {
  if (window < 0) throw_error("KVDecoder: got window ", window, ", expected >= 0 (0 = unbounded)");
  if (keep_first < 0 || (keep_first > 0 && keep_first >= window))
    throw_error("KVDecoder: got keep_first ", keep_first, " with window ", window,
                ", expected 0, or 1 <= keep_first < window");
}

void KVDecoder::reset() {
  cache_.clear();
  position_ = 0;
}

void KVDecoder::trim_cache(std::int64_t keep) {
  // each layer's k, v (1, H, n, hs) -> (1, H, keep, hs): the first keep_first keys and the most recent others;
  // the evicted ones are the oldest after the kept ones
  const std::int64_t K = keep_first_;
  auto trim = [&](const Tensor& t, std::int64_t n) {
    if (K == 0) return t.narrow(2, n - keep, keep).contiguous();
    Shape s = t.shape();
    s[2] = keep;
    Tensor out = Tensor::empty(s, t.dtype());
    out.narrow(2, 0, K).copy_(t.narrow(2, 0, K));
    if (keep > K) out.narrow(2, K, keep - K).copy_(t.narrow(2, n - (keep - K), keep - K));
    return out;
  };
  for (std::size_t l = 0; l < cache_.k.size(); ++l) {
    const std::int64_t n = cache_.k[l].size(2);
    if (n <= keep) continue;
    cache_.k[l] = trim(cache_.k[l], n);
    cache_.v[l] = trim(cache_.v[l], n);
  }
}

Tensor KVDecoder::feed(const std::vector<std::int32_t>& tokens) {
  // tokens is (n) -> logits (n, V)
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  if (n < 1) throw_error("KVDecoder::feed: got no tokens, expected at least one");
  const std::int64_t V = model_.config().vocab_size;
  NoGrad no_grad;
  std::vector<double> logits;
  logits.reserve(static_cast<std::size_t>(n * V));
  std::int64_t done = 0;
  while (done < n) {
    // While every key read so far still fits in the window, a whole chunk can go through one forward pass:
    // query p sees keys 0..p, exactly its window. Past that, one token at a time, after evicting the oldest.
    std::int64_t chunk = n - done;
    if (window_ > 0) {
      if (position_ < window_) {
        chunk = std::min(chunk, window_ - position_);
      } else {
        chunk = 1;
        trim_cache(window_ - 1);
      }
    }
    std::vector<std::int32_t> ids(tokens.begin() + done, tokens.begin() + done + chunk);
    ForwardOptions fo;
    fo.cache = &cache_;
    fo.first_position = position_;
    Var out = model_.forward(ids, 1, chunk, fo);  // (1, chunk, V)
    std::vector<double> v = out.data().to_vector();
    logits.insert(logits.end(), v.begin(), v.end());
    position_ += chunk;
    done += chunk;
  }
  return Tensor::from_values({n, V}, logits, model_.dtype());
}

// ---------------------------------------------------------------------------------------------------------
// evaluate

namespace {

// Accumulates per-position loss and accuracy from logits rows.
struct Tally {
  std::vector<double> loss_sum, correct;
  std::vector<std::int64_t> count;
  double total_loss = 0.0, total_correct = 0.0;
  std::int64_t total = 0;

  explicit Tally(std::int64_t T)
      : loss_sum(static_cast<std::size_t>(T), 0.0), correct(static_cast<std::size_t>(T), 0.0),
        count(static_cast<std::size_t>(T), 0) {}

  // logits is (rows, V) row-major, whole windows of T rows back to back: row r sits at position r % T
  void add(const std::vector<double>& logits, std::int64_t V, const std::int32_t* targets, std::int64_t rows,
           std::int64_t T) {
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int32_t y = targets[r];
      if (y < 0) continue;
      const double* z = logits.data() + r * V;
      // cross-entropy = logsumexp(z) - z[y], in double
      double m = -std::numeric_limits<double>::infinity();
      std::int64_t best = 0;
      for (std::int64_t c = 0; c < V; ++c)
        if (z[c] > m) m = z[c], best = c;
      double s = 0.0;
      for (std::int64_t c = 0; c < V; ++c) s += std::exp(z[c] - m);
      const double ce = m + std::log(s) - z[y];
      const std::int64_t t = r % T;
      loss_sum[t] += ce;
      count[t] += 1;
      correct[t] += best == y ? 1.0 : 0.0;
      total_loss += ce;
      total_correct += best == y ? 1.0 : 0.0;
      total += 1;
    }
  }
};

void check_ids(const std::vector<std::int32_t>& ids, std::int64_t V, bool allow_ignore, const char* what) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int32_t id = ids[i];
    if ((allow_ignore && id == -1) || (id >= 0 && id < V)) continue;
    throw_error("evaluate: ", what, " id ", id, " at flat index ", i, " outside the vocabulary [0, ", V, ")",
                allow_ignore ? " (-1 marks no target)" : "");
  }
}

}  // namespace

EvalResult evaluate(GPT& model, const Batch& windows, const EvalOptions& opt) {
  // windows.inputs, windows.targets are (B, T)
  const GPTConfig& cfg = model.config();
  const std::int64_t B = windows.B, T = windows.T, V = cfg.vocab_size;
  if (B < 1 || T < 1 || static_cast<std::int64_t>(windows.inputs.size()) != B * T ||
      static_cast<std::int64_t>(windows.targets.size()) != B * T)
    throw_error("evaluate: got a batch B = ", B, ", T = ", T, " with ", windows.inputs.size(), " inputs and ",
                windows.targets.size(), " targets, expected B, T >= 1 and B*T of each");
  check_eval_length(cfg, T, opt.window, opt.keep_first, opt.window_positions);
  if (opt.batch_size < 1) throw_error("evaluate: got batch_size ", opt.batch_size, ", expected >= 1");
  check_ids(windows.inputs, V, false, "input");
  check_ids(windows.targets, V, true, "target");
  const std::int64_t total_targets = windows.target_count();
  if (total_targets == 0) throw_error("evaluate: no position of the ", B, " windows carries a target");
  const bool sliding = opt.window > 0 && opt.window < T;
  if (opt.grads && sliding)
    throw_error("evaluate: gradients with a sliding window (W = ", opt.window, " < T = ", T,
                ") are not supported: the KV cache keeps values, not the graph; drop --window or use W = T");

  const bool was_training = model.training();
  model.eval();
  struct Restore {
    GPT& m;
    bool on;
    ~Restore() { m.train(on); }
  } restore{model, was_training};
  if (opt.grads) model.zero_grad();

  Tally tally(T);
  if (sliding && opt.window_positions) {
    // per window: one pass over the prefix 0..W-1 (queries t < W), then one batch of T-W rows, row r holding the
    // window of query t = W + r (K kept tokens, then the W-K most recent) at positions 0..W-1
    const std::int64_t W = opt.window, K = opt.keep_first;
    NoGrad no_grad;
    for (std::int64_t b = 0; b < B; ++b) {
      const std::int32_t* in = windows.inputs.data() + b * T;
      std::vector<std::int32_t> prefix(in, in + W);
      Var head = model.forward(prefix, 1, W);  // (1, W, V)
      tally.add(head.data().to_vector(), V, windows.targets.data() + b * T, W, T);
      const std::int64_t rows = T - W;
      std::vector<std::int32_t> ctx(static_cast<std::size_t>(rows * W));
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t t = W + r;
        std::int32_t* c = ctx.data() + r * W;
        std::copy(in, in + K, c);
        std::copy(in + t - (W - K) + 1, in + t + 1, c + K);
      }
      std::vector<double> last;  // (rows, V): each row's last position
      for (std::int64_t r0 = 0; r0 < rows; r0 += opt.batch_size * 8) {
        const std::int64_t nr = std::min(opt.batch_size * 8, rows - r0);
        std::vector<std::int32_t> chunk(ctx.begin() + r0 * W, ctx.begin() + (r0 + nr) * W);
        const std::vector<double> lg = model.forward(chunk, nr, W).data().to_vector();  // (nr, W, V)
        for (std::int64_t r = 0; r < nr; ++r)
          last.insert(last.end(), lg.begin() + ((r * W) + W - 1) * V, lg.begin() + (r * W + W) * V);
      }
      // the targets of queries W..T-1 sit at positions W..T-1 of the window: tally them there
      std::vector<double> full(static_cast<std::size_t>(T * V), 0.0);
      std::copy(last.begin(), last.end(), full.begin() + W * V);
      std::vector<std::int32_t> tg(windows.targets.begin() + b * T, windows.targets.begin() + (b + 1) * T);
      std::fill(tg.begin(), tg.begin() + W, -1);  // already counted from the prefix pass
      tally.add(full, V, tg.data(), T, T);
    }
  } else if (sliding) {
    // one window at a time through a KV cache holding at most W keys
    for (std::int64_t b = 0; b < B; ++b) {
      KVDecoder dec(model, opt.window, opt.keep_first);
      std::vector<std::int32_t> ids(windows.inputs.begin() + b * T, windows.inputs.begin() + (b + 1) * T);
      Tensor logits = dec.feed(ids);  // (T, V)
      tally.add(logits.to_vector(), V, windows.targets.data() + b * T, T, T);
    }
  } else {
    for (std::int64_t b0 = 0; b0 < B; b0 += opt.batch_size) {
      const std::int64_t nb = std::min(opt.batch_size, B - b0);
      std::vector<std::int32_t> ids(windows.inputs.begin() + b0 * T, windows.inputs.begin() + (b0 + nb) * T);
      std::vector<std::int32_t> tg(windows.targets.begin() + b0 * T, windows.targets.begin() + (b0 + nb) * T);
      std::int64_t chunk_targets = 0;
      for (std::int32_t y : tg) chunk_targets += y >= 0;
      if (opt.grads) {
        Var logits = model.forward(ids, nb, T);  // (nb, T, V), graph recorded
        tally.add(logits.data().to_vector(), V, tg.data(), nb * T, T);
        if (chunk_targets > 0) {
          // this chunk's mean, weighted by its share of all targets: the gradients add up to d(mean)/d(param)
          Var loss = model.loss(logits, tg) * (static_cast<double>(chunk_targets) / static_cast<double>(total_targets));
          loss.backward();
        }
      } else {
        NoGrad no_grad;
        Var logits = model.forward(ids, nb, T);
        tally.add(logits.data().to_vector(), V, tg.data(), nb * T, T);
      }
    }
  }

  EvalResult r;
  r.T = T;
  r.window = opt.window;  // W >= T gives the same numbers as no window
  r.keep_first = sliding ? opt.keep_first : 0;
  r.windows = B;
  r.tokens = tally.total;
  r.loss = tally.total_loss / static_cast<double>(tally.total);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.per_position.assign(static_cast<std::size_t>(T), nan);
  r.per_position_count = tally.count;
  for (std::int64_t t = 0; t < T; ++t)
    if (tally.count[t] > 0) r.per_position[t] = tally.loss_sum[t] / static_cast<double>(tally.count[t]);
  if (opt.accuracy) {
    r.accuracy = tally.total_correct / static_cast<double>(tally.total);
    r.per_position_accuracy.assign(static_cast<std::size_t>(T), nan);
    for (std::int64_t t = 0; t < T; ++t)
      if (tally.count[t] > 0) r.per_position_accuracy[t] = tally.correct[t] / static_cast<double>(tally.count[t]);
  }
  if (opt.grads) {
    for (auto& [name, p] : model.named_parameters())
      r.grads[name] = p.grad().defined() ? p.grad().contiguous().clone() : Tensor::zeros(p.shape(), p.dtype());
    model.zero_grad();
  }
  return r;
}

}  // namespace gradlab
