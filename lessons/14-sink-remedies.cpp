// Lesson 14: ways to stop the sink. Every attention strategy of the table (causal, StableMask, softmax1,
// learned-sink, null-kv, gated) is trained on lesson 09's bigram-backcopy corpus with lesson 09's model, budget and seed. We
// measure the sink metrics (nn/sink_metrics.h), the mass each remedy diverts to its sink key and the validation
// loss, draw the same head under every strategy in one figure, and report over --seeds N seeds.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "data/bigram_backcopy.h"
#include "lessons/lesson.h"
#include "lessons/sink_lesson.h"
#include "lessons/plot.h"
#include "nn/sink_metrics.h"
#include "train/evaluate.h"
#include "train/trainer.h"
#include "viz/attention.h"
#include "viz/heatmap.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;
using gradlab::lesson::mean_sd;
using gradlab::lesson::MeanSd;
using gradlab::lesson::token_labels;

namespace {

struct Strategy {
  std::string name, label;
  bool sink = false;
};

struct Run {
  std::uint64_t seed = 0;
  std::size_t strategy = 0;
  std::unique_ptr<GPT> model;
  TrainResult result;
  double seconds = 0;
  SinkReport sinks;
  MassiveActivations massive;  // per layer: max |h| of the residual stream over its median (Sun et al. 2024)
  std::vector<double> learned_tau;  // learned-sink: tau_h of every layer and head after training
  double window_k0 = NAN, window_k1 = NAN;  // sliding window W = L on 4L-token documents: loss past L, keep 0 / 1
};

// The mean of v over positions [a, b): the documents all have targets at every position, so each counts once.
double mean_range(const std::vector<double>& v, std::size_t a, std::size_t b) {
  double m = 0;
  for (std::size_t t = a; t < b; ++t) m += v[t] / static_cast<double>(b - a);
  return m;
}

std::string pm(const MeanSd& m, const char* f = "%.3f") { return lesson::plus_minus(m, f); }

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{14, "sink-remedies", "Ways to stop the sink: causal, StableMask, softmax1, learned sink, null-kv, gated", 1337};
  auto declare = [](cli::ArgParser& a) {
    a.add_int("seeds", 1, 1, 1000, "seeds to train (each: every strategy); seed, seed+1, ...");
    a.add_int("iters", 1000, 1, 1'000'000, "optimizer steps per model (default 1000; --quick: 20)").no_default();
    a.add_int("n_layer", 1, 1, 64, "transformer blocks");
    a.add_int("n_head", 2, 1, 64, "heads per block");
    a.add_int("n_embd", 64, 8, 4096, "model width");
    a.add_int("block_size", 64, 16, 4096, "training context length L (default 64; --quick: 32)").no_default();
    a.add_int("batch_size", 32, 1, 4096, "sequences per step (default 32; --quick: 4)").no_default();
    a.add_double("lr", 3e-3, 1e-6, 1.0, "peak learning rate (warmup, then cosine decay to lr/10)");
    a.add_int("probes", 32, 1, 100000, "validation documents the sink metrics average over (default 32; --quick: 4)")
        .no_default();
    a.add_int("min_row", 8, 1, 4096, "late rows: i >= min_row enter the first-token share");
    a.add_double("eps", 0.3, 0.0, 1.0, "sink threshold (Gu et al. 2024) on the normalised key-0 share of rows i >= 1");
    a.add_int("documents", 8000, 10, 10'000'000, "bigram-backcopy: documents in the corpus (--quick: 600)").no_default();
    a.add_int("data_seed", 1, 0, 1'000'000'000, "bigram-backcopy: seed of the bigram table and the documents");
    a.add_int("long_docs", 16, 1, 100000,
              "documents of 4L letters read through a sliding window of W = L (default 16; --quick: 2)")
        .no_default();
  };
  return lesson::run(argc, argv, info, declare, [](Lesson& L) {
    cli::ArgParser& a = L.args();
    const bool quick = L.quick();
    const std::int64_t iters = a.given("iters") ? a.get_int64("iters") : (quick ? 20 : 1000);
    const std::int64_t block = a.given("block_size") ? a.get_int64("block_size") : (quick ? 32 : 64);
    const std::int64_t batch = a.given("batch_size") ? a.get_int64("batch_size") : (quick ? 4 : 32);
    const std::int64_t n_probes = a.given("probes") ? a.get_int64("probes") : (quick ? 4 : 32);
    const std::int64_t n_seeds = a.get_int64("seeds");
    SinkOptions so;
    so.min_row = std::min<std::int64_t>(a.get_int64("min_row"), block - 1);
    so.eps = a.get_double("eps");

    // ------------------------------------------------------------------------------------------------------
    L.step("The remedies");
    L.say("The tau family: one extra key per row whose value is 0 and whose logit is tau_i:");
    L.say("  Attn_ij = e^a_ij / (sum_k<=i e^a_ik + e^tau_i)   (docs/sink_remedies.md)");
    L.say("  causal        no extra key: each row's real mass is 1");
    L.say("  StableMask    tau_i = log Z(i), fixed by the position (docs/stablemask.md)");
    L.say("  softmax1      tau_i = 0: 1 added to the denominator");
    L.say("  learned sink  tau_h, one trained logit per layer and head (starts at 0 = softmax1)");
    L.say("null-kv adds one learned key and value per head (its value is not 0, so it is not a tau):");
    L.say("  null-kv       Attn_i,null = e^(q_i.k0/sqrt D) / (e^(q_i.k0/sqrt D) + sum_k e^a_ik), output + Attn_i,null v0");
    L.say("and gated attention, which leaves the softmax alone (rows sum to 1) and scales each head's output:");
    L.say("  gated         y'_th = sigmoid(x_t . W_g[h]) * y_th, x the layer's normed input, W_g from 0");
    std::vector<Strategy> strategies;
    for (const std::string& n : strategy_names()) {
      const StrategyInfo& si = strategy_info(n);
      strategies.push_back({si.name, si.label, si.has_sink});
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("The data (lesson 09's corpus)");
    BigramBackcopyCorpus corpus;
    BigramBackcopyOptions o;
    o.seed = static_cast<std::uint64_t>(a.get_int64("data_seed"));
    o.documents = a.given("documents") ? a.get_int64("documents") : (quick ? 600 : 8000);
    o.doc_length = block;
    std::unique_ptr<TextDataset> data = make_bigram_backcopy_dataset(o, &corpus);
    L.say(corpus.describe());
    data->check_length(block);
    const std::int64_t used_probes = std::min(n_probes, data->eval_window_count(Split::Val, block));
    if (used_probes < 1) throw_error("lesson 14: the validation split has no window of length ", block);
    std::vector<std::vector<std::int32_t>> probes;
    {
      Batch b = data->eval_windows(Split::Val, block, 0, used_probes);
      for (std::int64_t k = 0; k < used_probes; ++k)
        probes.emplace_back(b.inputs.begin() + k * block, b.inputs.begin() + (k + 1) * block);
    }
    so.bos = data->bos();
    const std::vector<std::string> labels = token_labels(*data, probes[0], &corpus);
    std::string probe_text;
    for (const auto& s : labels) probe_text += s;
    // past L (lesson 11's reader): the BOS and 4L letters from the same bigram table, read through a sliding
    // window of W = L keys that evicts the BOS (keep 0) or keeps it (keep 1); positions counted inside the window
    BigramBackcopyOptions lo = o;
    lo.doc_length = 4 * block;
    lo.documents = a.given("long_docs") ? a.get_int64("long_docs") : (quick ? 2 : 16);
    const BigramBackcopyCorpus long_corpus = generate_bigram_backcopy(lo);
    if (long_corpus.table != corpus.table) throw_error("lesson 14: the long documents use another bigram table");
    const Batch long_docs =
        make_document_eval_windows(data->tokenizer()->encode(long_corpus.text), 4 * block, data->bos());
    L.sayf("Past L: %lld documents of the BOS + %lld letters from the same table, read through a window of W = L = %lld "
           "keys.",
           (long long)long_docs.B, (long long)(4 * block), (long long)block);

    // ------------------------------------------------------------------------------------------------------
    L.step("One model per strategy and seed");
    GPTConfig cfg;
    cfg.vocab_size = data->vocab_size();
    cfg.block_size = block;
    cfg.n_layer = a.get_int64("n_layer");
    cfg.n_head = a.get_int64("n_head");
    cfg.n_embd = a.get_int64("n_embd");
    cfg.bias = false;
    cfg.pos = PosKind::Learned;
    cfg.validate();
    const std::size_t S = strategies.size();
    std::vector<Run> runs;  // seed-major: runs[s * S + k]
    for (std::int64_t s = 0; s < n_seeds; ++s)
      for (std::size_t k = 0; k < S; ++k) {
        Run r;
        r.seed = L.seed() + static_cast<std::uint64_t>(s);
        r.strategy = k;
        GPTConfig c = cfg;
        c.mask = strategies[k].name;
        r.model = std::make_unique<GPT>(c, r.seed);
        runs.push_back(std::move(r));
      }
    auto run_of = [&](std::int64_t s, std::size_t k) -> Run& { return runs[static_cast<std::size_t>(s) * S + k]; };
    L.sayf("GPT: %lld layers x %lld heads, width %lld, L = %lld, learned positions; %zu strategies x %lld seeds.",
           (long long)cfg.n_layer, (long long)cfg.n_head, (long long)cfg.n_embd, (long long)block, S,
           (long long)n_seeds);
    {
      // the strategies share every weight they have in common (learned-sink adds its tau_h, drawn from no rng)
      auto base = run_of(0, 0).model->state_dict();
      bool same = true;
      std::size_t extra = 0;
      for (std::size_t k = 1; k < S; ++k)
        for (auto& named : run_of(0, k).model->state_dict()) {
          const auto& name = named.first;  // not a structured binding: clang 14 cannot capture one
          auto& t = named.second;
          auto it = std::find_if(base.begin(), base.end(), [&](const auto& p) { return p.first == name; });
          if (it == base.end()) ++extra;
          else same = same && it->second.to_floats() == t.to_floats();
        }
      L.check(same, "with the same seed every strategy starts from the same shared weights",
              fmt("%zu strategy-only tensors", extra));
    }
    // untrained: learned-sink starts as softmax1, and every sink strategy's rows keep less than 1
    for (std::size_t k = 0; k < S; ++k) {
      const SinkReport r = measure_sinks(*run_of(0, k).model, {probes[0]}, so);
      if (strategies[k].sink)
        L.check(r.mean.real_mass < 0.999, strategies[k].label + ", untrained: rows keep less than 1 of real mass",
                fmt("mean R = %.4f", r.mean.real_mass));
      else
        L.check(std::abs(r.mean.real_mass - 1) < 1e-5, strategies[k].label + ", untrained: every row's real mass is 1",
                fmt("mean R = %.6f", r.mean.real_mass));
    }
    {
      std::size_t i1 = S, il = S;
      for (std::size_t k = 0; k < S; ++k) {
        if (strategies[k].name == "softmax1") i1 = k;
        if (strategies[k].name == "learned-sink") il = k;
      }
      if (i1 < S && il < S) {
        const Tensor a1 = record_attention(*run_of(0, i1).model, probes[0]);
        const Tensor al = record_attention(*run_of(0, il).model, probes[0]);
        L.check(a1.to_floats() == al.to_floats(), "untrained, learned sink (tau_h = 0) draws exactly softmax1's maps");
      }
    }

    // ------------------------------------------------------------------------------------------------------
    TrainConfig tc;
    tc.batch_size = batch;
    tc.max_iters = iters;
    tc.eval_interval = 0;
    tc.eval_iters = quick ? 2 : 8;
    tc.log_interval = std::max<std::int64_t>(1, iters / 4);
    tc.schedule.learning_rate = a.get_double("lr");
    tc.schedule.min_lr = tc.schedule.learning_rate / 10;
    tc.schedule.warmup_iters = std::min<std::int64_t>(50, iters / 10);
    tc.schedule.lr_decay_iters = iters;
    tc.adamw.weight_decay = 0.1;
    tc.grad_clip = 1.0;
    tc.out_dir = "";
    tc.progress = Progress::Mode::Quiet;
    L.step("Train");
    L.sayf("%lld steps of AdamW per model, batch %lld x %lld tokens, lr %.0e (lesson 09's recipe).", (long long)iters,
           (long long)batch, (long long)block, tc.schedule.learning_rate);
    for (Run& r : runs) {
      const Strategy& st = strategies[r.strategy];
      tc.seed = r.seed;
      const double t0 = lesson::now_seconds();
      Trainer trainer(*r.model, *data, tc);
      r.result = trainer.run();
      r.seconds = lesson::now_seconds() - t0;
      L.check(r.result.status == TrainStatus::Completed && std::isfinite(r.result.val_loss),
              fmt("seed %llu, %s: training completed with a finite loss", (unsigned long long)r.seed, st.label.c_str()),
              r.result.message);
      r.sinks = measure_sinks(*r.model, probes, so);
      r.massive = massive_activations(*r.model, probes);
      for (std::int64_t keep : {0, 1}) {
        EvalOptions eo;
        eo.window = block;
        eo.keep_first = keep;
        eo.window_positions = true;  // learned positions exist for 0..L-1 only
        const EvalResult er = evaluate(*r.model, long_docs, eo);
        (keep == 0 ? r.window_k0 : r.window_k1) = mean_range(er.per_position, block, 4 * block);
      }
      for (auto& [name, p] : r.model->named_parameters())
        if (name.size() > 10 && name.substr(name.size() - 10) == "sink_logit")
          for (double x : p.data().to_vector()) r.learned_tau.push_back(x);
      L.sayf("seed %llu %-12s val loss %.4f (%.1f s): normalised key-0 share %.3f, sink ratio %.2f, diverted mass %.3f; "
             "window loss past L %.4f (keep 0), %.4f (keep 1)",
             (unsigned long long)r.seed, st.label.c_str(), r.result.val_loss, r.seconds, r.sinks.mean.late_norm,
             r.sinks.sink_ratio, std::max(0.0, r.sinks.mean.pseudo_mass()), r.window_k0, r.window_k1);
      if (!r.learned_tau.empty()) {
        std::string t;
        for (double x : r.learned_tau) t += fmt(" %.2f", x);
        L.say("  learned tau_h (layer-major):" + t);
      }
    }
    const double uniform = runs[0].sinks.uniform_late;

    // ------------------------------------------------------------------------------------------------------
    L.step("The table");
    std::vector<std::vector<double>> share(S), raw(S), ratio(S), strongest(S), diverted(S), loss(S), massive(S),
        window0(S), window1(S);
    for (std::int64_t s = 0; s < n_seeds; ++s)
      for (std::size_t k = 0; k < S; ++k) {
        const Run& r = run_of(s, k);
        share[k].push_back(r.sinks.mean.late_norm);
        raw[k].push_back(r.sinks.mean.late_raw);
        ratio[k].push_back(r.sinks.sink_ratio);
        strongest[k].push_back(r.sinks.strongest.late_norm);
        diverted[k].push_back(std::max(0.0, r.sinks.mean.pseudo_mass()));  // causal: 0 up to rounding (-1e-8)
        loss[k].push_back(r.result.val_loss);
        massive[k].push_back(r.massive.ratio.back());  // after the last block
        window0[k].push_back(r.window_k0);
        window1[k].push_back(r.window_k1);
      }
    L.sayf("%lld seed%s (%llu..%llu), %lld steps, %lld probes, rows i >= %lld, eps = %.2f; mean ± sd over seeds. "
           "Uniform rows would give key 0 %.4f.",
           (long long)n_seeds, n_seeds > 1 ? "s" : "", (unsigned long long)L.seed(),
           (unsigned long long)(L.seed() + n_seeds - 1), (long long)iters, (long long)used_probes, (long long)so.min_row,
           so.eps, uniform);
    L.sayf("%-12s | %-15s | %-15s | %-15s | %-15s | %-15s | %-15s | %-17s | %-17s | %s", "strategy", "key-0 norm.",
           "key-0 raw", "sink ratio", "strongest head", "diverted mass", "max/median |h|", "val loss",
           "window, keep 0", "window, keep 1");
    std::string table_csv = "strategy,seeds,norm_mean,norm_sd,raw_mean,raw_sd,ratio_mean,ratio_sd,strongest_mean,"
                            "strongest_sd,diverted_mean,diverted_sd,val_loss_mean,val_loss_sd,massive_mean,massive_sd,"
                            "window_keep0_mean,window_keep0_sd,window_keep1_mean,window_keep1_sd\n";
    for (std::size_t k = 0; k < S; ++k) {
      L.sayf("%-12s | %-15s | %-15s | %-15s | %-15s | %-15s | %-15s | %-17s | %-17s | %s", strategies[k].label.c_str(),
             pm(mean_sd(share[k])).c_str(), pm(mean_sd(raw[k])).c_str(), pm(mean_sd(ratio[k]), "%.2f").c_str(),
             pm(mean_sd(strongest[k])).c_str(), pm(mean_sd(diverted[k])).c_str(), pm(mean_sd(massive[k]), "%.1f").c_str(),
             pm(mean_sd(loss[k]), "%.4f").c_str(), pm(mean_sd(window0[k]), "%.4f").c_str(),
             pm(mean_sd(window1[k]), "%.4f").c_str());
      table_csv += strategies[k].name + fmt(",%lld", (long long)n_seeds);
      for (const auto* v : {&share[k], &raw[k], &ratio[k], &strongest[k], &diverted[k], &loss[k], &massive[k],
                            &window0[k], &window1[k]})
        table_csv += fmt(",%.6f,%.6f", mean_sd(*v).mean, mean_sd(*v).sd);
      table_csv += "\n";
    }
    L.save_text("table.csv", table_csv);
    L.say("key-0 norm.: the share of each row's real attention on token 0 (the BOS), rows i >= min_row; raw: before");
    L.say("dividing by the real mass. Sink ratio: fraction of heads whose normalised key-0 share (rows i >= 1)");
    L.say("exceeds eps. Diverted mass: 1 - R_i, what the sink key took (0 under causal). max/median |h|: the largest");
    L.say("|activation| of the residual stream after the last block over its median, on the probes (Sun et al. 2024).");
    L.say("window, keep K: the loss past L (positions L..4L-1) of the long documents read through a sliding window of");
    L.say("W = L keys, positions 0..W-1 inside it; keep 0 evicts the BOS (no kept sink), keep 1 keeps it (StreamingLLM).");
    std::string csv = sink_csv_header("seed,strategy,");
    for (const Run& r : runs)
      csv += sink_csv_rows(r.sinks, fmt("%llu,%s,", (unsigned long long)r.seed, strategies[r.strategy].name.c_str()));
    L.save_text("sinks.csv", csv);
    {
      lesson::BarChart bc;
      bc.title = fmt("Sink metrics per strategy (%lld seed%s%s)", (long long)n_seeds, n_seeds > 1 ? "s" : "",
                     n_seeds > 1 ? ", mean" : "");
      bc.y_label = "share / fraction";
      bc.series = {"key-0 share, normalised", "key-0 share, raw", "sink ratio", "diverted mass"};
      bc.width = 1000;
      for (std::size_t k = 0; k < S; ++k) {
        bc.groups.push_back(strategies[k].label);
        bc.values.push_back({mean_sd(share[k]).mean, mean_sd(raw[k]).mean, mean_sd(ratio[k]).mean,
                             mean_sd(diverted[k]).mean});
      }
      L.wrote(lesson::save_bar_chart(bc, L.stem("metrics")));
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("The same head under every strategy");
    {
      const HeadSink best = run_of(0, 0).sinks.strongest;
      std::vector<viz::AttentionMaps> maps;
      for (std::size_t k = 0; k < S; ++k)
        maps.push_back(viz::AttentionMaps::from_tensor(record_attention(*run_of(0, k).model, probes[0]),
                                                       strategies[k].label, strategies[k].sink));
      L.sayf("Seed %llu: layer %lld, head %lld is the strongest causal sink head (%.3f of each late row on token 0).",
             (unsigned long long)L.seed(), (long long)best.layer, (long long)best.head, best.late_norm);
      for (std::size_t k = 0; k < S; ++k) {
        const HeadSink& h = run_of(0, k).sinks.at(best.layer, best.head);
        L.sayf("  %-12s the same head: %.3f normalised, %.3f raw, diverted mass %.3f", strategies[k].label.c_str(),
               h.late_norm, h.late_raw, std::max(0.0, h.pseudo_mass()));
      }
      viz::HeatmapOptions ho;
      ho.cell_values = false;
      ho.max_width = 1200;
      ho.max_height = 2400;
      ho.stats_min_row = so.min_row;
      ho.subtitle = probe_text + "   (* = trigger)";
      ho.title = fmt("Layer %lld, head %lld under each strategy (seed %llu, %lld steps)", (long long)best.layer,
                     (long long)best.head, (unsigned long long)L.seed(), (long long)iters);
      std::vector<const viz::AttentionMaps*> ptrs;
      for (const auto& m : maps) ptrs.push_back(&m);
      viz::Canvas fig = viz::heatmap_stack(ptrs, labels, best.layer, best.head, ho);
      L.wrote(viz::save_attention_figure(L.stem("remedies"), fig, ptrs, labels, ho));
      L.say("Panels with a sink key carry an extra column on the right: the mass 1 - R_i each row diverted to it.");
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("What this run shows");
    const MeanSd c = mean_sd(share[0]);
    for (std::size_t k = 1; k < S; ++k) {
      int lower = 0;
      for (std::int64_t s = 0; s < n_seeds; ++s) lower += share[k][static_cast<std::size_t>(s)] < share[0][static_cast<std::size_t>(s)];
      const MeanSd m = mean_sd(share[k]);
      L.sayf("%-12s normalised key-0 share lower than causal in %d of %lld seeds (%s vs %s); diverted mass %s; val loss "
             "%s vs %s.",
             strategies[k].label.c_str(), lower, (long long)n_seeds, pm(m).c_str(), pm(c).c_str(),
             pm(mean_sd(diverted[k])).c_str(), pm(mean_sd(loss[k]), "%.4f").c_str(),
             pm(mean_sd(loss[0]), "%.4f").c_str());
    }
    if (c.mean < 2 * uniform)
      L.sayf("The causal models formed no clear sink here (%.1fx uniform): the comparison says little.", c.mean / uniform);
    if (quick) L.say("(--quick: the models are barely trained; these numbers mean nothing, the full run is the lesson.)");
    if (n_seeds < 3) L.say("With fewer than 3 seeds this is a hint, not a result: run --seeds 3 for the table.");
    {
      std::string j = fmt("{\"seeds\": %lld, \"first_seed\": %llu, \"iters\": %lld, \"block_size\": %lld, \"n_layer\": "
                          "%lld, \"n_head\": %lld, \"n_embd\": %lld, \"batch_size\": %lld, \"probes\": %lld, "
                          "\"min_row\": %lld, \"eps\": %g, \"uniform\": %.6f,\n \"runs\": [",
                          (long long)n_seeds, (unsigned long long)L.seed(), (long long)iters, (long long)block,
                          (long long)cfg.n_layer, (long long)cfg.n_head, (long long)cfg.n_embd, (long long)batch,
                          (long long)used_probes, (long long)so.min_row, so.eps, uniform);
      for (std::size_t k = 0; k < runs.size(); ++k) {
        const Run& r = runs[k];
        std::string tau, ma;
        for (double x : r.learned_tau) tau += (tau.empty() ? "" : ", ") + fmt("%.6f", x);
        for (double x : r.massive.ratio) ma += (ma.empty() ? "" : ", ") + fmt("%.4f", x);
        j += fmt("%s\n  {\"seed\": %llu, \"strategy\": \"%s\", \"val_loss\": %.6f, \"seconds\": %.1f, "
                 "\"window_loss_keep0\": %.6f, \"window_loss_keep1\": %.6f, "
                 "\"learned_tau\": [%s], \"massive_ratio\": [%s], \"sinks\": %s}",
                 k ? "," : "", (unsigned long long)r.seed, strategies[r.strategy].name.c_str(), r.result.val_loss,
                 r.seconds, r.window_k0, r.window_k1, tau.c_str(), ma.c_str(), sink_json(r.sinks).c_str());
      }
      j += "]}\n";
      L.save_text("summary.json", j);
    }
  });
}
