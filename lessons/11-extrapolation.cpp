// Lesson 11: extrapolation and StreamingLLM, where sinks exist. Train lesson 09's GPT (learned positions) at length
// L with each mask on bigram-backcopy documents (BOS at position 0, so causal heads form a sink on it), then read
// documents of 4L tokens, with a BOS only at their start, through a sliding window of W = L tokens whose positions
// are counted inside the window (0..W-1, as StreamingLLM does; --pos rope reads with absolute positions instead):
//   causal, window W, nothing kept         the first token (the sink) is evicted once the window slides
//   causal, window W, first K = 1, 2, 4 kept (StreamingLLM, Xiao et al. 2023)
//   StableMask, window W, nothing kept     (the paper's claim, docs/stablemask.md#claims-the-course-measures:
//                                          it needs no sink, so eviction costs little)
// and report the loss per block of L positions out to 4L, over --seeds N seeds. Measured and reported as found.
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "data/bigram_backcopy.h"
#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "nn/sink_metrics.h"
#include "train/evaluate.h"
#include "train/trainer.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

double mean_range(const std::vector<double>& v, std::size_t a, std::size_t b) {
  double s = 0;
  std::size_t n = 0;
  for (std::size_t i = a; i < b && i < v.size(); ++i)
    if (std::isfinite(v[i])) s += v[i], ++n;
  return n ? s / static_cast<double>(n) : NAN;
}

// One way of reading the long documents.
struct Reader {
  std::string name;      // "causal, W = L, keep 0"
  std::size_t model;     // 0 causal, 1 StableMask
  std::int64_t window;   // 0 = full attention
  std::int64_t keep;     // first tokens kept
};

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{11, "extrapolation", "Extrapolation and StreamingLLM: train at L, read 4L through a window", 11};
  auto declare = [](cli::ArgParser& a) {
    a.add_int("iters", 1000, 1, 1'000'000, "optimizer steps per model (default 1000; --quick: 20)").no_default();
    a.add_int("n_layer", 1, 1, 64, "transformer blocks (lesson 09's model)");
    a.add_int("n_head", 2, 1, 64, "heads per block");
    a.add_choice("pos", {"learned", "rope", "sinusoidal", "alibi", "none"}, "learned",
                 "position encoding; learned: positions inside the window (StreamingLLM), others: absolute positions");
    a.add_int("windows", 24, 1, 10000, "evaluation documents of 4L tokens (default 24; --quick: 2)").no_default();
    a.add_int("seeds", 1, 1, 1000, "seeds to train (each: both masks); seed, seed+1, ...");
    a.add_int("block_size", 64, 8, 1024, "training length L = the window W (default 64; --quick: 16)").no_default();
  };
  return lesson::run(argc, argv, info, declare, [](Lesson& L) {
    const bool quick = L.quick();
    cli::ArgParser& a = L.args();
    const std::int64_t iters = a.given("iters") ? a.get_int64("iters") : (quick ? 20 : 1000);
    const std::int64_t n_docs = a.given("windows") ? a.get_int64("windows") : (quick ? 2 : 24);
    const std::int64_t block = a.given("block_size") ? a.get_int64("block_size") : (quick ? 16 : 64);
    const std::int64_t T = 4 * block, n_seeds = a.get_int64("seeds");

    // ------------------------------------------------------------------------------------------------------
    L.step("Train at length L on documents");
    BigramBackcopyOptions go;
    go.doc_length = block;  // '^' + L letters: one training window per document
    go.documents = quick ? 600 : 8000;
    BigramBackcopyCorpus corpus;
    auto data = make_bigram_backcopy_dataset(go, &corpus);
    L.say(corpus.describe());
    // the long documents: the same bigram table (same seed), '^' + 4L letters, BOS only at the start
    BigramBackcopyOptions lo = go;
    lo.doc_length = T;
    lo.documents = n_docs;
    BigramBackcopyCorpus long_docs = generate_bigram_backcopy(lo);
    if (long_docs.table != corpus.table) throw_error("lesson 11: the long documents use another bigram table");
    const std::vector<std::int32_t> long_ids = data->tokenizer()->encode(long_docs.text);
    const Batch docs = make_document_eval_windows(long_ids, T, data->bos());
    L.sayf("Evaluation: %lld documents of '^' + %lld letters from the same bigram table (a BOS only at the start).",
           (long long)docs.B, (long long)T);
    GPTConfig cfg;
    cfg.vocab_size = data->vocab_size();
    cfg.block_size = block;
    cfg.n_layer = a.get_int64("n_layer");
    cfg.n_head = a.get_int64("n_head");
    cfg.n_embd = 64;
    cfg.bias = false;
    cfg.pos = parse_pos(a.get_choice("pos"));
    const bool window_positions = cfg.pos == PosKind::Learned;  // learned positions exist only for 0..L-1
    cfg.validate();
    TrainConfig tc;
    tc.batch_size = quick ? 4 : 32;
    tc.max_iters = iters;
    tc.eval_interval = 0;
    tc.eval_iters = quick ? 2 : 8;
    tc.log_interval = std::max<std::int64_t>(1, iters / 4);
    tc.schedule.learning_rate = 3e-3;
    tc.schedule.min_lr = 3e-4;
    tc.schedule.warmup_iters = std::min<std::int64_t>(50, iters / 10);
    tc.schedule.lr_decay_iters = iters;
    tc.progress = Progress::Mode::Quiet;
    L.sayf("GPT %lld layer(s) x %lld heads x 64, %s positions, trained at L = %lld for %lld steps of %lld documents; seeds "
           "%llu..%llu.",
           (long long)cfg.n_layer, (long long)cfg.n_head, to_string(cfg.pos), (long long)block, (long long)iters, (long long)tc.batch_size, (unsigned long long)L.seed(),
           (unsigned long long)(L.seed() + n_seeds - 1));
    std::vector<std::vector<std::int32_t>> probes;
    {
      Batch b = data->eval_windows(Split::Val, block, 0, std::min<std::int64_t>(16, data->eval_window_count(Split::Val, block)));
      for (std::int64_t k = 0; k < b.B; ++k) probes.emplace_back(b.inputs.begin() + k * block, b.inputs.begin() + (k + 1) * block);
    }
    SinkOptions so;
    so.bos = data->bos();
    so.min_row = std::min<std::int64_t>(8, block - 1);

    std::vector<Reader> readers = {
        {"causal, window W, keep 0", 0, block, 0},     {"causal, window W, keep 1", 0, block, 1},
        {"causal, window W, keep 2", 0, block, 2},     {"causal, window W, keep 4", 0, block, 4},
        {"StableMask, window W, keep 0", 1, block, 0}, {"StableMask, window W, keep 1", 1, block, 1},
    };
    if (!window_positions) {  // full attention over 4L needs positions past L
      readers.push_back({"causal, no window", 0, 0, 0});
      readers.push_back({"StableMask, no window", 1, 0, 0});
    }
    // results[seed][reader] = per-position loss
    std::vector<std::vector<std::vector<double>>> results;
    std::vector<double> sink_share[2];
    double uniform = NAN;
    for (std::int64_t s = 0; s < n_seeds; ++s) {
      const std::uint64_t seed = L.seed() + static_cast<std::uint64_t>(s);
      tc.seed = seed;
      std::vector<std::unique_ptr<GPT>> models;
      for (const std::string& mk : compared_strategies()) {
        GPTConfig c = cfg;
        c.mask = mk;
        models.push_back(std::make_unique<GPT>(c, seed));
        Trainer trainer(*models.back(), *data, tc);
        TrainResult r = trainer.run();
        L.check(r.status == TrainStatus::Completed, fmt("seed %llu %s: training completed", (unsigned long long)seed,
                                                        mk.c_str()), r.message);
        const SinkReport sr = measure_sinks(*models.back(), probes, so);
        sink_share[models.size() - 1].push_back(sr.mean.late_norm);
        uniform = sr.uniform_late;
        L.sayf("  seed %llu %-10s val loss at L: %.4f; first-token share %.4f normalised (%.1fx uniform), sink ratio %.3f",
               (unsigned long long)seed, mk.c_str(), r.val_loss, sr.mean.late_norm, sr.mean.late_norm / sr.uniform_late,
               sr.sink_ratio);
      }
      std::vector<std::vector<double>> per_reader;
      for (const Reader& rd : readers) {
        EvalOptions eo;
        eo.window = rd.window;
        eo.keep_first = rd.keep;
        eo.window_positions = window_positions && rd.window > 0;
        per_reader.push_back(evaluate(*models[rd.model], docs, eo).per_position);
      }
      results.push_back(std::move(per_reader));
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("Loss per block of L positions, reading 4L tokens");
    L.sayf("Window W = L = %lld keys; 'keep K': the first K tokens stay in the window (StreamingLLM), so the window",
           (long long)block);
    L.say("holds K kept tokens and the W-K most recent. " +
          std::string(window_positions ? "Positions are counted inside the window (0..W-1; keys recomputed for each "
                                         "query), as StreamingLLM does, so position 0 holds the first kept token, or "
                                         "the oldest recent one when nothing is kept."
                                       : "Positions stay absolute (RoPE rotates by the true position)."));
    L.sayf("Mean over %lld seed%s (sd over seeds in brackets), nats/token:", (long long)n_seeds, n_seeds > 1 ? "s" : "");
    L.sayf("  %-30s %16s %16s %16s %16s", "reader", "0..L", "L..2L", "2L..3L", "3L..4L");
    std::string csv = "seed,reader,block0,block1,block2,block3\n";
    std::vector<std::array<double, 4>> block_mean(readers.size());
    for (std::size_t k = 0; k < readers.size(); ++k) {
      std::string line = fmt("  %-30s", readers[k].name.c_str());
      for (std::size_t blk = 0; blk < 4; ++blk) {
        std::vector<double> v;
        for (std::int64_t s = 0; s < n_seeds; ++s)
          v.push_back(mean_range(results[s][k], blk * block, (blk + 1) * block));
        double m = 0, q = 0;
        for (double x : v) m += x / static_cast<double>(v.size());
        for (double x : v) q += (x - m) * (x - m);
        const double sd = v.size() > 1 ? std::sqrt(q / static_cast<double>(v.size() - 1)) : 0.0;
        block_mean[k][blk] = m;
        line += fmt(" %8.4f (%.3f)", m, sd);
      }
      L.say(line);
      for (std::int64_t s = 0; s < n_seeds; ++s) {
        csv += fmt("%llu,\"%s\"", (unsigned long long)(L.seed() + s), readers[k].name.c_str());
        for (std::size_t blk = 0; blk < 4; ++blk)
          csv += fmt(",%.6f", mean_range(results[s][k], blk * block, (blk + 1) * block));
        csv += "\n";
      }
    }
    L.save_text("loss_per_block.csv", csv);
    {
      std::string pcsv = "position";
      for (const Reader& rd : readers) pcsv += ",\"" + rd.name + "\"";
      pcsv += "\n";
      for (std::int64_t t = 0; t < T; ++t) {
        pcsv += std::to_string(t);
        for (std::size_t k = 0; k < readers.size(); ++k) pcsv += fmt(",%.6f", results[0][k][t]);
        pcsv += "\n";
      }
      L.save_text("loss_per_position.csv", pcsv);
    }
    lesson::LinePlot lp;
    lp.title = fmt("Loss per position, trained at L = %lld, window W = %lld (seed %llu)", (long long)block,
                   (long long)block, (unsigned long long)L.seed());
    lp.x_label = "position in the document";
    lp.y_label = "cross-entropy (nats/token)";
    lp.smooth = quick ? 1 : 8;
    for (std::size_t k = 0; k < 6; ++k) lp.series.push_back({readers[k].name, {}, results[0][k]});
    lp.hlines.push_back({"entropy rate of the corpus", corpus.nats_per_token()});
    L.wrote(lesson::save_line_plot(lp, L.stem("loss_per_position")));

    // ------------------------------------------------------------------------------------------------------
    L.step("What we found");
    double cs = 0, ss = 0;
    for (std::int64_t s = 0; s < n_seeds; ++s) cs += sink_share[0][s] / n_seeds, ss += sink_share[1][s] / n_seeds;
    L.sayf("The causal models put %.3f of each row on the first token (normalised, rows >= 8 of L-token documents),",
           cs);
    L.sayf("StableMask's %.3f: %s", ss,
           cs > 2 * uniform ? "the causal models have a sink to evict." : "no strong sink formed, eviction should cost little.");
    const double late_evict = (block_mean[0][2] + block_mean[0][3]) / 2;
    const double late_keep1 = (block_mean[1][2] + block_mean[1][3]) / 2;
    const double late_keep4 = (block_mean[3][2] + block_mean[3][3]) / 2;
    const double late_sm = (block_mean[4][2] + block_mean[4][3]) / 2;
    const double inside = block_mean[0][0];
    L.sayf("Past 2L with the window: causal %.4f with nothing kept, %.4f keeping 1, %.4f keeping 4; StableMask %.4f;",
           late_evict, late_keep1, late_keep4, late_sm);
    L.sayf("inside L (block 0, no eviction yet) causal reads %.4f.", inside);
    if (late_evict - late_keep1 > 0.05)
      L.say("Evicting the first token hurts the causal model and keeping it (StreamingLLM) recovers most of the loss.");
    else
      L.say("Keeping the first tokens changes the causal loss by less than 0.05 nats here: at this scale evicting the "
            "sink costs little.");
    if (late_sm < late_evict - 0.05)
      L.say("StableMask with the plain window is better than causal with the plain window past 2L.");
    else
      L.say("StableMask with the plain window is not better than causal with the plain window past 2L (by more than "
            "0.05 nats).");
    if (quick) L.say("(--quick: barely trained models; the verdict means nothing.)");
    L.say("Positions before L are read with the full past (the window is not yet full), so they match training.");
  });
}
