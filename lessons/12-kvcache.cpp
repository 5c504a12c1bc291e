// Lesson 12: the KV cache, and why StableMask needs its inference form (SM-I) to keep one.
// A KV-cached decode must give the same logits as a full forward pass; with the training-form StableMask tied
// to the current length n, every new token would change all earlier rows; with SM-I (Z(i) computed with the
// training length L, docs/stablemask.md#kv-cache-and-training-length) no earlier row changes.
#include <cmath>
#include <string>
#include <vector>

#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "train/generate.h"
#include "nn/gpt.h"
#include "data/grammar.h"
#include "nn/stablemask.h"
#include "tensor/ops.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

// Logits (T, V) of one sequence in a single forward pass.
Tensor full_logits(GPT& m, const std::vector<std::int32_t>& ids) {
  NoGrad ng;
  const std::int64_t T = static_cast<std::int64_t>(ids.size());
  return m.forward(ids, 1, T).data().reshape({T, -1});
}

// Logits (T, V), one token at a time through the KV cache.
Tensor cached_logits(GPT& m, const std::vector<std::int32_t>& ids, KVCache& cache) {
  NoGrad ng;
  const std::int64_t T = static_cast<std::int64_t>(ids.size());
  Tensor out;
  cache.clear();
  for (std::int64_t t = 0; t < T; ++t) {
    ForwardOptions opt;
    opt.cache = &cache;
    opt.first_position = t;
    Tensor row = m.forward({ids[t]}, 1, 1, opt).data().reshape({1, -1});
    if (!out.defined()) out = Tensor::zeros({T, row.size(1)});
    out.narrow(0, t, 1).copy_(row);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{12, "kvcache", "The KV cache, and why StableMask needs SM-I to keep one", 12};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    const bool quick = L.quick();
    GrammarOptions go;
    go.target_chars = 20000;
    auto data = make_grammar_dataset(go);
    const std::int64_t block = 32, T = quick ? 16 : 32;
    Batch b = data->eval_windows(Split::Val, T, 0, 1);
    const std::vector<std::int32_t>& ids = b.inputs;

    GPTConfig cfg;
    cfg.vocab_size = data->vocab_size();
    cfg.block_size = block;
    cfg.n_layer = 2;
    cfg.n_head = 4;
    cfg.n_embd = 32;
    cfg.pos = PosKind::Rope;  // no position table: the weights do not depend on block_size (used below)

    // ------------------------------------------------------------------------------------------------------
    L.step("Generation re-reads the past");
    L.say("To generate token t+1 the model needs row t of every layer. Row t attends to the keys and values of");
    L.say("rows 0..t. Those were already computed for the earlier steps: keep them (the KV cache) and each new");
    L.say("token costs one row instead of a whole forward pass. This is only correct if rows 0..t-1 of every");
    L.say("layer would come out exactly the same when recomputed with the new token present.");
    L.say("For the causal mask that holds: row i never sees j > i.");

    // ------------------------------------------------------------------------------------------------------
    L.step("KV cache = full forward pass");
    for (const std::string& mk : strategy_names()) {
      GPTConfig c = cfg;
      c.mask = mk;
      GPT m(c, L.seed());
      m.eval();
      KVCache cache;
      Tensor full = full_logits(m, ids), cached = cached_logits(m, ids, cache);
      const double d = ops::max_abs_diff(full, cached);
      L.check(d < 1e-4, mk + ": logits from the cache equal the full forward pass",
              fmt("%lld tokens, max |diff| %.1e, cache holds %lld keys per layer", (long long)T, d,
                  (long long)cache.length()));
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("Plain StableMask would invalidate the cache");
    const double gamma = cfg.gammas()[3];  // the smallest decay: the largest effect
    L.say("In the training form, row i's pseudo slots are the columns j = i+1 .. n-1 of the current length n,");
    L.say("so its sink mass Z_n(i) = sum_{j=i+1}^{n-1} e^{-j gamma} grows with every token that follows.");
    L.sayf("Head 3 (gamma = %.4f), row i = 2, uniform scores: real mass R = 3 / (3 + Z):", gamma);
    L.sayf("  %6s %12s %14s %12s", "n", "Z_n(2)", "R (plain SM)", "R (SM-I)");
    const double z_smi = std::exp(stablemask_tau(gamma, block, 2, StableMaskTail::Finite));
    std::vector<double> ns, r_plain, r_smi;
    for (std::int64_t n = 4; n <= block; n += (n < 8 ? 1 : 4)) {
      const double z = std::exp(stablemask_tau(gamma, n, 2, StableMaskTail::Finite));
      ns.push_back(static_cast<double>(n));
      r_plain.push_back(3.0 / (3.0 + z));
      r_smi.push_back(3.0 / (3.0 + z_smi));
      L.sayf("  %6lld %12.4f %14.4f %12.4f", (long long)n, z, r_plain.back(), r_smi.back());
    }
    L.say("Every new token changes row 2's output, hence its layer-1 output, hence the keys and values that");
    L.say("layer 2 cached for row 2: the cache is stale after every step.");

    L.say("\nMeasured on the model: 'plain StableMask' = the training formula at the current length n (a model");
    L.say("with block_size = n, same weights). Logits of row 2 for growing n, against the first prefix:");
    std::vector<double> drift_plain, drift_smi;
    Tensor first_plain, first_smi;
    GPTConfig smi = cfg;
    smi.mask = "stablemask";
    GPT m_smi(smi, L.seed());
    m_smi.eval();
    for (std::int64_t n = 4; n <= T; n += 4) {
      std::vector<std::int32_t> prefix(ids.begin(), ids.begin() + n);
      GPTConfig pc = smi;
      pc.block_size = n;
      GPT m_plain(pc, L.seed());
      m_plain.eval();
      Tensor lp = full_logits(m_plain, prefix).narrow(0, 2, 1).contiguous();
      Tensor ls = full_logits(m_smi, prefix).narrow(0, 2, 1).contiguous();
      if (!first_plain.defined()) first_plain = lp, first_smi = ls;
      drift_plain.push_back(ops::max_abs_diff(lp, first_plain));
      drift_smi.push_back(ops::max_abs_diff(ls, first_smi));
      L.sayf("  n = %3lld   plain SM: row-2 logits moved by %.2e     SM-I: moved by %.2e", (long long)n,
             drift_plain.back(), drift_smi.back());
    }
    {
      // same weights? (the plain models differ from m_smi only in block_size)
      GPTConfig pc = smi;
      pc.block_size = 4;
      GPT a(pc, L.seed());
      auto s0 = a.state_dict(), s1 = m_smi.state_dict();
      bool same = s0.size() == s1.size();
      for (std::size_t k = 0; same && k < s0.size(); ++k) same = s0[k].second.to_floats() == s1[k].second.to_floats();
      L.check(same, "the 'plain' models have exactly SM-I's weights (RoPE: nothing depends on block_size)");
    }
    double max_smi = 0, max_plain = 0;
    for (double d : drift_smi) max_smi = std::max(max_smi, d);
    for (double d : drift_plain) max_plain = std::max(max_plain, d);
    L.check(max_smi < 1e-5, "SM-I: an earlier row never changes when tokens are appended", fmt("max %.1e", max_smi));
    L.check(max_plain > 1e-3, "plain StableMask: the earlier row changes as the sequence grows", fmt("max %.2e", max_plain));
    lesson::LinePlot lp;
    lp.title = fmt("Row 2's real mass as the sequence grows (gamma = %.4f, uniform scores)", gamma);
    lp.x_label = "current length n";
    lp.y_label = "R_2";
    lp.series.push_back({"plain StableMask (pseudo columns up to n-1)", ns, r_plain});
    lp.series.push_back({fmt("SM-I (Z with the training length L = %lld)", (long long)block), ns, r_smi});
    L.wrote(lesson::save_line_plot(lp, L.stem("row_mass_vs_length")));

    // ------------------------------------------------------------------------------------------------------
    L.step("SM-I: one definition, every length");
    L.say("gradlab computes Z(i) with the training length L always (docs/stablemask.md#kv-cache-and-training-length). For sequences of length L it");
    L.say("is exactly the paper's training formula; for shorter prefixes every row gets its training value; a row's");
    L.say("output never depends on how many tokens follow it, so the cache stays valid. Past L, Z(i) = 0 and the");
    L.say("row is plain softmax (the cache keeps the L most recent keys: a sliding window).");
    SampleOptions so;
    so.max_new_tokens = quick ? 16 : 64;
    so.temperature = 0.0;
    std::vector<std::int32_t> prompt(ids.begin(), ids.begin() + 4);
    const double t0 = lesson::now_seconds();
    std::vector<std::int32_t> out = generate(m_smi, prompt, so);
    const double t_cached = lesson::now_seconds() - t0;
    // the same greedy decode without a cache: a full forward pass for every new token
    std::vector<std::int32_t> seq = prompt;
    const double t1 = lesson::now_seconds();
    for (std::int64_t k = 0; k < so.max_new_tokens; ++k) {
      std::vector<std::int32_t> window(seq.end() - std::min<std::ptrdiff_t>(seq.size(), block), seq.end());
      const std::int64_t first = static_cast<std::int64_t>(seq.size() - window.size());
      Tensor logits;
      {
        NoGrad ng;
        ForwardOptions fo;
        fo.first_position = first;
        logits = m_smi.forward(window, 1, static_cast<std::int64_t>(window.size()), fo).data();
      }
      const std::int64_t V = logits.size(2), last = logits.size(1) - 1;
      std::int32_t best = 0;
      for (std::int64_t v = 1; v < V; ++v)
        if (logits.at({0, last, v}) > logits.at({0, last, best})) best = static_cast<std::int32_t>(v);
      seq.push_back(best);
    }
    const double t_full = lesson::now_seconds() - t1;
    std::vector<std::int32_t> out_full(seq.begin() + 4, seq.end());
    L.sayf("Greedy decode of %lld tokens (untrained model, so the text is noise): cached %.1f ms, recomputing %.1f ms.",
           (long long)so.max_new_tokens, t_cached * 1e3, t_full * 1e3);
    L.check(out == out_full, "the cached and the uncached decode choose the same tokens");
  });
}
