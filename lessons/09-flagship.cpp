// Lesson 09, the flagship: the attention sink, and what StableMask does to it.
//
// The same small GPT (same seed, same initial weights, same batches) is trained twice, once with each mask, on
// the built-in bigram-backcopy corpus (Guo et al. 2024; or --data FILE [--bos CHAR]). Every training window
// starts at a document's BOS, so the BOS sits at position 0. On this data causal heads that only copy after a
// trigger learn to park their attention on the BOS when they have nothing to do: an attention sink. We measure
// it with the engine's sink metrics (nn/sink_metrics.h, docs/stablemask.md#statistics) on probe texts, watch it emerge during training, draw
// the strongest sink head beside the same head under StableMask, and report over --seeds N seeds whether
// StableMask lowers the sink on this data.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "data/bigram_backcopy.h"
#include "data/textfile.h"
#include "lessons/attention_viewer.h"
#include "lessons/lesson.h"
#include "lessons/sink_lesson.h"
#include "lessons/plot.h"
#include "nn/sink_metrics.h"
#include "tensor/cpu.h"
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

// The masks the lesson compares, in drawing order (left, right).
struct MaskChoice {
  std::string name;   // the strategy's label: "causal", "StableMask"
  std::string file;   // the strategy's name, also in file names: "causal", "stablemask"
  bool sink = false;  // rows may keep less than 1 of real mass (a sink key)
};
std::vector<MaskChoice> masks_to_compare() {
  std::vector<MaskChoice> out;
  for (const std::string& name : compared_strategies()) {
    const StrategyInfo& info = strategy_info(name);
    out.push_back({info.label, info.name, info.has_sink});
  }
  return out;
}

// One point of the emergence curve: the sink metrics on the probe texts before step `step`.
struct EmergencePoint {
  std::int64_t step = 0;
  double mean_late_norm = 0, strongest = 0, sink_ratio = 0, sink_ratio_late = 0;
  std::vector<double> layer_late_norm;
};

struct Run {
  std::uint64_t seed = 0;
  MaskChoice mask;
  std::unique_ptr<GPT> model;
  TrainResult result;
  double seconds = 0;
  SinkReport sinks;  // after training, on all probe texts
  std::vector<EmergencePoint> emergence;
};

EmergencePoint point(std::int64_t step, const SinkReport& r) {
  EmergencePoint p;
  p.step = step;
  p.mean_late_norm = r.mean.late_norm;
  p.strongest = r.strongest.late_norm;
  p.sink_ratio = r.sink_ratio;
  p.sink_ratio_late = r.sink_ratio_late;
  for (const HeadSink& l : r.layers) p.layer_late_norm.push_back(l.late_norm);
  return p;
}

std::string pm(const MeanSd& m, const char* f = "%.4f") { return lesson::plus_minus(m, f); }

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{9, "flagship", "Flagship: the attention sink, causal against StableMask", 1337};
  auto declare = [](cli::ArgParser& a) {
    a.add_string("data", "", "train on this text file (default: the built-in bigram-backcopy corpus)", "FILE")
        .no_default();
    a.add_string("bos", "", "--data: this character starts every document (windows then start at it)", "CHAR")
        .no_default();
    a.add_int("seeds", 1, 1, 1000, "seeds to train (each: both masks); seed, seed+1, ...");
    a.add_int("iters", 1000, 1, 1'000'000, "optimizer steps per model (default 1000; --quick: 20)").no_default();
    a.add_int("n_layer", 1, 1, 64, "transformer blocks");
    a.add_int("n_head", 2, 1, 64, "heads per block");
    a.add_int("n_embd", 64, 8, 4096, "model width");
    a.add_int("block_size", 64, 16, 4096, "training context length L (default 64; --quick: 32)").no_default();
    a.add_int("batch_size", 32, 1, 4096, "sequences per step (default 32; --quick: 4)").no_default();
    a.add_double("lr", 3e-3, 1e-6, 1.0, "peak learning rate (warmup, then cosine decay to lr/10)");
    a.add_int("probes", 32, 1, 100000, "validation documents the sink metrics average over (default 32; --quick: 4)")
        .no_default();
    a.add_int("emerge_every", 25, 1, 1'000'000, "measure the sinks every N steps during training (--quick: 5)")
        .no_default();
    a.add_int("min_row", 8, 1, 4096, "late rows: i >= min_row enter the first-token share");
    a.add_double("eps", 0.3, 0.0, 1.0, "sink threshold: a head whose normalised first-token share (rows i >= 1, as Gu "
                 "et al. 2024) exceeds it is a sink head");
    a.add_int("documents", 8000, 10, 10'000'000, "bigram-backcopy: documents in the corpus (--quick: 600)").no_default();
    a.add_int("letters", 32, 4, 52, "bigram-backcopy: alphabet size, triggers x y z included");
    a.add_double("alpha", 0.2, 1e-3, 1000.0, "bigram-backcopy: Dirichlet concentration of the bigram rows");
    a.add_int("data_seed", 1, 0, 1'000'000'000, "bigram-backcopy: seed of the bigram table and the documents");
  };
  return lesson::run(argc, argv, info, declare, [](Lesson& L) {
    cli::ArgParser& a = L.args();
    const bool quick = L.quick();
    const std::int64_t iters = a.given("iters") ? a.get_int64("iters") : (quick ? 20 : 1000);
    const std::int64_t block = a.given("block_size") ? a.get_int64("block_size") : (quick ? 32 : 64);
    const std::int64_t batch = a.given("batch_size") ? a.get_int64("batch_size") : (quick ? 4 : 32);
    const std::int64_t n_probes = a.given("probes") ? a.get_int64("probes") : (quick ? 4 : 32);
    const std::int64_t every = a.given("emerge_every") ? a.get_int64("emerge_every") : (quick ? 5 : 25);
    const std::int64_t n_seeds = a.get_int64("seeds");
    SinkOptions so;
    so.min_row = std::min<std::int64_t>(a.get_int64("min_row"), block - 1);
    so.eps = a.get_double("eps");

    // ------------------------------------------------------------------------------------------------------
    L.step("The data");
    std::unique_ptr<TextDataset> data;
    BigramBackcopyCorpus corpus;
    const bool bb = !a.given("data");
    if (!bb) {
      const std::string file = a.get_string("data");
      data = TextDataset::from_text(file, read_text_file(file), TokenizerKind::Char);
      if (a.given("bos")) data->set_bos_character(a.get_string("bos"));
      L.say("Training text: " + file + " (character-level tokens)" +
            (data->document_aligned() ? ", documents start at " + a.get_string("bos") + "." : "."));
    } else {
      if (a.given("bos")) throw_error("--bos: the bigram-backcopy corpus declares its own BOS '^'");
      BigramBackcopyOptions o;
      o.seed = static_cast<std::uint64_t>(a.get_int64("data_seed"));
      o.documents = a.given("documents") ? a.get_int64("documents") : (quick ? 600 : 8000);
      o.doc_length = block;  // '^' + L letters: every document is exactly one training window
      o.letters = a.get_int64("letters");
      o.alpha = a.get_double("alpha");
      data = make_bigram_backcopy_dataset(o, &corpus);
      L.say("The built-in bigram-backcopy corpus (Guo et al. 2024), generated in code:");
      L.say(corpus.describe());
      L.say("Each document is the BOS '^' and letters drawn from a fixed random bigram table, except that after a");
      L.say("trigger (" + corpus.alphabet.substr(corpus.alphabet.size() - 3) +
            ") the next letter copies the letter before the trigger. Only the copy needs attention.");
      L.sayf("No model can beat the entropy rate on fresh documents: %.3f nats/token is the floor of the loss.",
             corpus.nats_per_token());
    }
    data->check_length(block);
    L.say(data->describe());
    if (data->document_aligned())
      L.say("Document-aligned training: every window starts at a BOS, so position 0 always holds the BOS.");
    else
      L.say("No BOS declared: windows start anywhere (give --bos CHAR if the text has document starts).");
    // the probe texts: the first validation windows (with documents: whole documents, BOS first)
    const std::int64_t available = data->eval_window_count(Split::Val, block);
    const std::int64_t used_probes = std::min(n_probes, available);
    if (used_probes < 1) throw_error("lesson 09: the validation split has no window of length ", block);
    std::vector<std::vector<std::int32_t>> probes;
    {
      Batch b = data->eval_windows(Split::Val, block, 0, used_probes);
      for (std::int64_t k = 0; k < used_probes; ++k)
        probes.emplace_back(b.inputs.begin() + k * block, b.inputs.begin() + (k + 1) * block);
    }
    so.bos = data->bos();
    const std::vector<std::string> labels = token_labels(*data, probes[0], bb ? &corpus : nullptr);
    std::string probe_text;
    for (const auto& s : labels) probe_text += s;
    L.sayf("Probe texts: the first %lld validation windows of %lld tokens. The first one:", (long long)used_probes,
           (long long)block);
    L.say("  " + probe_text + (bb ? "   (* marks a trigger)" : ""));

    // ------------------------------------------------------------------------------------------------------
    L.step("Two models per seed");
    GPTConfig cfg;
    cfg.vocab_size = data->vocab_size();
    cfg.block_size = block;
    cfg.n_layer = a.get_int64("n_layer");
    cfg.n_head = a.get_int64("n_head");
    cfg.n_embd = a.get_int64("n_embd");
    cfg.bias = false;
    cfg.pos = PosKind::Learned;
    cfg.validate();
    const std::vector<MaskChoice> masks = masks_to_compare();
    std::vector<Run> runs;  // seed-major: runs[s * masks + m]
    for (std::int64_t s = 0; s < n_seeds; ++s)
      for (const MaskChoice& m : masks) {
        Run r;
        r.seed = L.seed() + static_cast<std::uint64_t>(s);
        r.mask = m;
        GPTConfig c = cfg;
        c.mask = m.file;
        r.model = std::make_unique<GPT>(c, r.seed);
        runs.push_back(std::move(r));
      }
    auto run_of = [&](std::int64_t s, std::size_t m) -> Run& { return runs[static_cast<std::size_t>(s) * masks.size() + m]; };
    L.sayf("GPT: %lld layers x %lld heads (%lld heads in all), width %lld, L = %lld, learned positions, %lld "
           "parameters; seeds %llu..%llu.",
           (long long)cfg.n_layer, (long long)cfg.n_head, (long long)(cfg.n_layer * cfg.n_head), (long long)cfg.n_embd,
           (long long)block, (long long)runs[0].model->num_parameters(), (unsigned long long)L.seed(),
           (unsigned long long)(L.seed() + n_seeds - 1));
    {
      auto a0 = run_of(0, 0).model->state_dict(), a1 = run_of(0, 1).model->state_dict();
      bool same = a0.size() == a1.size();
      for (std::size_t i = 0; same && i < a0.size(); ++i)
        same = a0[i].first == a1[i].first && a0[i].second.to_floats() == a1[i].second.to_floats();
      L.check(same, "the mask has no parameters: with the same seed both models start from identical weights",
              std::to_string(a0.size()) + " tensors");
    }
    // Mechanical claims about the masks, on the untrained models.
    for (std::size_t m = 0; m < masks.size(); ++m) {
      const SinkReport r = measure_sinks(*run_of(0, m).model, {probes[0]}, so);
      double lo = 1e9, hi = 0;
      for (const HeadSink& h : r.heads) lo = std::min(lo, h.real_mass), hi = std::max(hi, h.real_mass);
      if (!masks[m].sink)
        L.check(hi < 1 + 1e-5 && lo > 1 - 1e-5, "causal, untrained: every row's real mass R_i is 1",
                fmt("mean R in [%.6f, %.6f]", lo, hi));
      else
        L.check(hi < 1 + 1e-5 && lo < 0.999, "StableMask, untrained: rows keep less than 1 (the pseudo key took mass)",
                fmt("mean R in [%.4f, %.4f]", lo, hi));
    }
    L.say("Under StableMask the raw first-token share falls by construction (R_i < 1). The sink metrics therefore");
    L.say("also divide by R_i: the normalised share A_i0 / R_i says how the real attention is spread.");

    // ------------------------------------------------------------------------------------------------------
    TrainConfig tc;
    tc.batch_size = batch;
    tc.max_iters = iters;
    tc.eval_interval = 0;  // evaluate once, at the end
    tc.eval_iters = quick ? 2 : 8;
    tc.log_interval = std::max<std::int64_t>(1, iters / 4);
    tc.schedule.learning_rate = a.get_double("lr");
    tc.schedule.min_lr = tc.schedule.learning_rate / 10;
    tc.schedule.warmup_iters = std::min<std::int64_t>(50, iters / 10);
    tc.schedule.lr_decay_iters = iters;
    tc.adamw.weight_decay = 0.1;
    tc.grad_clip = 1.0;
    tc.out_dir = "";  // nothing on disk: the lesson writes its own files
    tc.progress = Progress::Mode::Quiet;
    L.step("Train");
    L.sayf("%lld steps of AdamW per model, batch %lld x %lld tokens, lr %.0e with warmup and cosine decay. Every %lld",
           (long long)iters, (long long)batch, (long long)block, tc.schedule.learning_rate, (long long)every);
    L.say("steps the sink metrics are measured on the probe texts (for the emergence plot).");
    for (Run& r : runs) {
      tc.seed = r.seed;
      const double t0 = lesson::now_seconds();
      Trainer trainer(*r.model, *data, tc);
      trainer.hooks.before_step = [&](std::int64_t it, GPT& model) {
        if (it % every == 0) r.emergence.push_back(point(it, measure_sinks(model, probes, so)));
      };
      r.result = trainer.run();
      r.seconds = lesson::now_seconds() - t0;
      L.check(r.result.status == TrainStatus::Completed && std::isfinite(r.result.val_loss),
              fmt("seed %llu, %s: training completed with a finite loss", (unsigned long long)r.seed, r.mask.name.c_str()),
              r.result.message);
      r.sinks = measure_sinks(*r.model, probes, so);
      r.emergence.push_back(point(iters, r.sinks));
      L.sayf("seed %llu %-10s val loss %.4f (%.1f s): normalised first-token share %.4f (%.1fx uniform), sink ratio "
             "%.3f (rows >= %lld: %.3f), strongest head L%lld/H%lld %.3f, real mass %.3f",
             (unsigned long long)r.seed, r.mask.name.c_str(), r.result.val_loss, r.seconds, r.sinks.mean.late_norm,
             r.sinks.mean.late_norm / r.sinks.uniform_late, r.sinks.sink_ratio, (long long)so.min_row,
             r.sinks.sink_ratio_late, (long long)r.sinks.strongest.layer,
             (long long)r.sinks.strongest.head, r.sinks.strongest.late_norm, r.sinks.mean.real_mass);
    }
    const double uniform = runs[0].sinks.uniform_late;

    // ------------------------------------------------------------------------------------------------------
    L.step("Loss curves");
    {
      std::string csv = "seed,mask,step,loss\n";
      lesson::LinePlot plot;
      plot.title = fmt("Training loss, causal vs StableMask (seed %llu)", (unsigned long long)L.seed());
      plot.x_label = "step";
      plot.y_label = "loss (nats/token)";
      for (const Run& r : runs) {
        for (std::size_t i = 0; i < r.result.losses.size(); ++i)
          csv += fmt("%llu,%s,%zu,%.6f\n", (unsigned long long)r.seed, r.mask.file.c_str(), i, r.result.losses[i]);
        if (r.seed == L.seed()) plot.series.push_back({r.mask.name, {}, r.result.losses});
      }
      if (bb) plot.hlines.push_back({"entropy rate of the corpus", corpus.nats_per_token()});
      plot.smooth = std::max<std::size_t>(1, static_cast<std::size_t>(iters) / 40);
      L.save_text("loss.csv", csv);
      L.wrote(lesson::save_line_plot(plot, L.stem("loss")));
      for (std::size_t m = 0; m < masks.size(); ++m) {
        std::vector<double> v;
        for (std::int64_t s = 0; s < n_seeds; ++s) v.push_back(run_of(s, m).result.val_loss);
        L.sayf("%-10s validation loss over %lld seeds: %s nats/token", masks[m].name.c_str(), (long long)n_seeds,
               pm(mean_sd(v)).c_str());
      }
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("The sink metrics");
    L.sayf("Averaged over %lld probe texts, rows i >= %lld (eps = %.2f). Uniform rows would give key 0 a share of %.4f.",
           (long long)used_probes, (long long)so.min_row, so.eps, uniform);
    L.say("Seed " + std::to_string(L.seed()) + ", per head:");
    for (std::size_t m = 0; m < masks.size(); ++m) {
      L.say(masks[m].name + ":");
      L.say(format_sink_report(run_of(0, m).sinks));
    }
    std::string csv = sink_csv_header("seed,mask,");
    for (const Run& r : runs) csv += sink_csv_rows(r.sinks, fmt("%llu,%s,", (unsigned long long)r.seed, r.mask.file.c_str()));
    L.save_text("sinks.csv", csv);
    // per layer, mean over seeds: causal (raw = normalised), StableMask raw and normalised, uniform rows
    {
      lesson::BarChart bc;
      bc.title = fmt("First-token share per layer (rows i >= %lld, %lld probes, %lld seed%s)", (long long)so.min_row,
                     (long long)used_probes, (long long)n_seeds, n_seeds > 1 ? "s, mean" : "");
      bc.y_label = "share of attention on token 0";
      bc.series = {"causal (raw = normalised)", "StableMask raw", "StableMask normalised", "uniform rows"};
      bc.width = 1000;
      std::string lcsv = "layer,causal_raw,causal_norm,stablemask_raw,stablemask_norm,stablemask_real_mass,uniform\n";
      for (std::int64_t l = 0; l < cfg.n_layer; ++l) {
        double v[5] = {0, 0, 0, 0, 0};
        for (std::int64_t s = 0; s < n_seeds; ++s) {
          const HeadSink& c = run_of(s, 0).sinks.layers[l];
          const HeadSink& st = run_of(s, 1).sinks.layers[l];
          v[0] += c.late_raw / n_seeds, v[1] += c.late_norm / n_seeds, v[2] += st.late_raw / n_seeds;
          v[3] += st.late_norm / n_seeds, v[4] += st.real_mass / n_seeds;
        }
        bc.groups.push_back(fmt("layer %lld", (long long)l));
        bc.values.push_back({v[1], v[2], v[3], uniform});
        lcsv += fmt("%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", (long long)l, v[0], v[1], v[2], v[3], v[4], uniform);
      }
      L.save_text("first_token_share.csv", lcsv);
      L.wrote(lesson::save_bar_chart(bc, L.stem("first_token_share")));
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("Sink emergence over training");
    {
      std::string ecsv = "seed,mask,step,mean_late_norm,strongest_late_norm,sink_ratio,sink_ratio_late";
      for (std::int64_t l = 0; l < cfg.n_layer; ++l) ecsv += fmt(",layer%lld_late_norm", (long long)l);
      ecsv += "\n";
      for (const Run& r : runs)
        for (const EmergencePoint& p : r.emergence) {
          ecsv += fmt("%llu,%s,%lld,%.6f,%.6f,%.6f,%.6f", (unsigned long long)r.seed, r.mask.file.c_str(),
                      (long long)p.step, p.mean_late_norm, p.strongest, p.sink_ratio, p.sink_ratio_late);
          for (double v : p.layer_late_norm) ecsv += fmt(",%.6f", v);
          ecsv += "\n";
        }
      L.save_text("emergence.csv", ecsv);
      // the mean over seeds at each measured step (every run measures at the same steps)
      lesson::LinePlot lp;
      lp.title = fmt("Sink emergence: first-token share during training (%lld seed%s, rows i >= %lld)",
                     (long long)n_seeds, n_seeds > 1 ? "s, mean" : "", (long long)so.min_row);
      lp.x_label = "training step";
      lp.y_label = "normalised share of attention on token 0";
      for (std::size_t m = 0; m < masks.size(); ++m) {
        const std::size_t n_points = run_of(0, m).emergence.size();
        std::vector<double> x(n_points), mean(n_points, 0.0), strongest(n_points, 0.0);
        for (std::size_t k = 0; k < n_points; ++k) {
          x[k] = static_cast<double>(run_of(0, m).emergence[k].step);
          for (std::int64_t s = 0; s < n_seeds; ++s) {
            mean[k] += run_of(s, m).emergence[k].mean_late_norm / n_seeds;
            strongest[k] += run_of(s, m).emergence[k].strongest / n_seeds;
          }
        }
        lp.series.push_back({masks[m].name + ", strongest head", x, strongest});
        lp.series.push_back({masks[m].name + ", mean of all heads", x, mean});
      }
      lp.hlines.push_back({"uniform rows", uniform});
      lp.hlines.push_back({fmt("eps = %.2f", so.eps), so.eps});
      L.wrote(lesson::save_line_plot(lp, L.stem("sink_emergence")));
      const Run& c0 = run_of(0, 0);
      std::int64_t first_above = -1;
      for (const EmergencePoint& p : c0.emergence)
        if (first_above < 0 && p.strongest > so.eps) first_above = p.step;
      if (first_above >= 0)
        L.sayf("Seed %llu, causal: the strongest head first exceeds eps = %.2f at step %lld of %lld.",
               (unsigned long long)c0.seed, so.eps, (long long)first_above, (long long)iters);
      else
        L.sayf("Seed %llu, causal: no head exceeds eps = %.2f during training.", (unsigned long long)c0.seed, so.eps);
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("The strongest causal sink head, beside the same head under StableMask");
    {
      const HeadSink best = run_of(0, 0).sinks.strongest;
      std::vector<viz::AttentionMaps> maps;
      for (std::size_t m = 0; m < masks.size(); ++m)
        maps.push_back(viz::AttentionMaps::from_tensor(record_attention(*run_of(0, m).model, probes[0]), masks[m].name,
                                                       masks[m].sink));
      const HeadSink& same = run_of(0, 1).sinks.at(best.layer, best.head);
      L.sayf("Seed %llu: layer %lld, head %lld puts %.3f of each row on the BOS at position 0 (causal); the same head",
             (unsigned long long)L.seed(), (long long)best.layer, (long long)best.head, best.late_norm);
      L.sayf("under StableMask: %.3f normalised (%.3f raw, real mass %.3f; the rest went to the pseudo key).",
             same.late_norm, same.late_raw, same.real_mass);
      viz::HeatmapOptions o;
      o.layers = {best.layer};
      o.heads = {best.head};
      o.cell_values = false;
      o.max_width = 1400;
      o.max_height = 900;
      o.stats_min_row = so.min_row;
      o.subtitle = probe_text + (bb ? "   (* = trigger)" : "");
      o.title = fmt("Attention sink: layer %lld, head %lld, causal vs StableMask (seed %llu, %lld steps)",
                    (long long)best.layer, (long long)best.head, (unsigned long long)L.seed(), (long long)iters);
      viz::Canvas fig = viz::heatmap_compare(maps[0], maps[1], labels, o);
      L.wrote(viz::save_attention_figure(L.stem("sink_side_by_side"), fig, {&maps[0], &maps[1]}, labels, o));
      L.say("StableMask's panel carries an extra column on the right: the pseudo mass 1 - R_i each row gave away.");
      viz::HeatmapOptions g;
      g.cell_values = false;
      g.max_width = 1600;
      g.max_height = 1600;
      g.stats_min_row = so.min_row;
      for (std::size_t m = 0; m < masks.size(); ++m) {
        g.title = "all heads, " + masks[m].name + fmt(" (seed %llu)", (unsigned long long)L.seed());
        viz::Canvas grid = viz::heatmap_grid(maps[m], labels, g);
        L.wrote(viz::save_attention_figure(L.stem("attention_grid_" + masks[m].file), grid, {&maps[m]}, labels, g));
      }
      // Both models in one image (each head a pair, one colour bar), and the offline viewer of both.
      lesson::save_attention_comparison(L, maps, labels, probe_text, so.min_row, "lesson 09");
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("Verdict");
    std::vector<double> share[2], ratio[2], ratio_late[2], strongest[2], mass[2], loss[2];
    int lower = 0, goal = 0;
    for (std::int64_t s = 0; s < n_seeds; ++s) {
      for (std::size_t m = 0; m < 2; ++m) {
        const Run& r = run_of(s, m);
        share[m].push_back(r.sinks.mean.late_norm);
        ratio[m].push_back(r.sinks.sink_ratio);
        ratio_late[m].push_back(r.sinks.sink_ratio_late);
        strongest[m].push_back(r.sinks.strongest.late_norm);
        mass[m].push_back(r.sinks.mean.real_mass);
        loss[m].push_back(r.result.val_loss);
      }
      lower += share[1].back() < share[0].back();
      goal += share[0].back() >= 4 * uniform && ratio[0].back() >= 0.25;
    }
    L.sayf("%lld seed%s (%llu..%llu), %lld steps, %lld probe texts, rows i >= %lld; mean ± sd over seeds:",
           (long long)n_seeds, n_seeds > 1 ? "s" : "", (unsigned long long)L.seed(),
           (unsigned long long)(L.seed() + n_seeds - 1), (long long)iters, (long long)used_probes, (long long)so.min_row);
    L.sayf("%-11s | %-17s | %-9s | %-15s | %-15s | %-15s | %-15s | %s", "mask", "normalised share", "x uniform",
           "sink ratio", "ratio, late", "strongest head", "real mass", "val loss");
    for (std::size_t m = 0; m < 2; ++m)
      L.sayf("%-11s | %-17s | %9.1f | %-15s | %-15s | %-15s | %-15s | %s", masks[m].name.c_str(),
             pm(mean_sd(share[m])).c_str(), mean_sd(share[m]).mean / uniform, pm(mean_sd(ratio[m]), "%.3f").c_str(),
             pm(mean_sd(ratio_late[m]), "%.3f").c_str(), pm(mean_sd(strongest[m]), "%.3f").c_str(),
             pm(mean_sd(mass[m]), "%.3f").c_str(), pm(mean_sd(loss[m])).c_str());
    L.sayf("Normalised share: rows i >= %lld. Sink ratio: the fraction of heads whose share on rows i >= 1 exceeds eps "
           "= %.2f (Gu et al. 2024); 'late': the same on rows i >= %lld.",
           (long long)so.min_row, so.eps, (long long)so.min_row);
    L.sayf("The causal goal of this lesson (normalised share >= 4x uniform = %.4f and eps = 0.3 sink ratio >= 0.25) is met in "
           "%d of %lld seeds.",
           4 * uniform, goal, (long long)n_seeds);
    const MeanSd c = mean_sd(share[0]), st = mean_sd(share[1]);
    const bool sink = c.mean >= 2 * uniform;
    if (!sink)
      L.sayf("The causal models formed no clear sink here (%.1fx uniform), so there is little for StableMask to "
             "remove: on this run the question cannot be answered.",
             c.mean / uniform);
    else if (lower == n_seeds)
      L.sayf("Yes: on this data StableMask lowers the sink. The normalised first-token share is lower under "
             "StableMask in every seed (%d of %lld; %s vs %s, %.0f%% lower on average).",
             lower, (long long)n_seeds, pm(st).c_str(), pm(c).c_str(), 100.0 * (1 - st.mean / c.mean));
    else if (lower == 0)
      L.sayf("No: on this data StableMask does not lower the sink. The normalised first-token share is higher under "
             "StableMask in every seed (%s vs %s).",
             pm(st).c_str(), pm(c).c_str());
    else
      L.sayf("Not clearly: StableMask lowers the normalised first-token share in %d of %lld seeds only (%s vs %s); "
             "the seeds disagree, so this run does not show that StableMask lowers the sink on this data.",
             lower, (long long)n_seeds, pm(st).c_str(), pm(c).c_str());
    L.sayf("The raw share is lower under StableMask partly by construction: %.0f%% of each row (rows i >= %lld) went "
           "to the pseudo key.",
           100 * (1 - mean_sd(mass[1]).mean), (long long)so.min_row);
    if (quick) L.say("(--quick: the models are barely trained; this verdict means nothing, the full run is the lesson.)");
    if (n_seeds < 3)
      L.sayf("With %lld seed%s this is a hint, not a result: run --seeds 5 for the table of docs/science.md.",
             (long long)n_seeds, n_seeds > 1 ? "s" : "");
    else if (n_seeds < 5)
      L.say("For the 5-seed table of docs/science.md run with --seeds 5.");
    {
      std::string j = fmt("{\"seeds\": %lld, \"first_seed\": %llu, \"iters\": %lld, \"block_size\": %lld, \"n_layer\": "
                          "%lld, \"n_head\": %lld, \"n_embd\": %lld, \"batch_size\": %lld, \"lr\": %g, \"probes\": %lld, "
                          "\"min_row\": %lld, \"eps\": %g, \"uniform\": %.6f, \"data\": %s,\n \"runs\": [",
                          (long long)n_seeds, (unsigned long long)L.seed(), (long long)iters, (long long)block,
                          (long long)cfg.n_layer, (long long)cfg.n_head, (long long)cfg.n_embd, (long long)batch,
                          tc.schedule.learning_rate, (long long)used_probes, (long long)so.min_row, so.eps, uniform,
                          bb ? corpus.options.to_json().c_str() : "\"file\"");
      for (std::size_t k = 0; k < runs.size(); ++k) {
        const Run& r = runs[k];
        j += fmt("%s\n  {\"seed\": %llu, \"mask\": \"%s\", \"val_loss\": %.6f, \"seconds\": %.1f, \"sinks\": %s}",
                 k ? "," : "", (unsigned long long)r.seed, r.mask.file.c_str(), r.result.val_loss, r.seconds,
                 sink_json(r.sinks).c_str());
      }
      j += fmt("],\n \"stablemask_lower_in\": %d, \"goal_met_in\": %d}\n", lower, goal);
      L.save_text("summary.json", j);
    }
    L.say("Try other seeds (--seed, --seeds), longer training (--iters), other data (--data FILE --bos CHAR, --alpha,");
    L.say("--letters): a claim that does not reproduce at this scale is a finding, not a bug to hide.");
  });
}
