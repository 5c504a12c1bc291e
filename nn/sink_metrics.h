#pragma once
// Attention-sink metrics, in one place for the CLI, the lessons and the benchmarks: pure functions over
// recorded attention maps (n_layer, n_head, T, T) and the token ids they were recorded on.
//
// A[i, j] is query i's attention on key j (0 for j > i). Its real mass is R_i = sum_{j <= i} A[i, j]: 1 under
// the causal mask, below 1 under StableMask, whose pseudo key took 1 - R_i (the "pseudo mass").
// Per layer and head, averaged over the rows named and over every probe text (each row weighs the same):
//   first_raw, first_norm   rows i >= 1: A[i, 0] and A[i, 0] / R_i            (row 0 can only attend to key 0)
//   late_raw, late_norm     the same over rows i >= min_row (8): past the first few tokens
//   bos_raw, bos_norm       rows i >= 1 that see a BOS (some j <= i holds it): sum over those BOS keys of
//                           A[i, j] (/ R_i), wherever the BOS stands, key 0 included
//   mid_bos_norm            as bos_norm, counting only BOS keys j >= 1 (a BOS inside the text), over the rows
//                           that see one; NaN when no probe has a BOS after position 0
//   real_mass               mean R_i over rows i >= min_row; pseudo mass = 1 - real_mass
// Rows with R_i = 0 count as 0 in the normalised shares. The model-level numbers:
//   sink_ratio              the fraction of heads whose first_norm exceeds eps: Gu et al. 2024's sink ratio
//                           (they average a head's attention on the first token over the rows, eps = 0.3;
//                           here without row 0, which can only attend to key 0, and normalised by R_i)
//   sink_ratio_late         the same on late_norm (rows i >= min_row): stricter, the first rows do not count
//   strongest               the head with the largest late_norm
//   uniform_late            what late_norm would be if every row spread its mass evenly over keys 0..i:
//                           the mean of 1/(i+1) over the same rows (the baseline a sink is measured against)
#include <cstdint>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "tensor/tensor.h"

namespace gradlab {

struct SinkOptions {
  std::int64_t min_row = 8;  // late rows: i >= min_row (lowered to 1 for probes shorter than min_row + 1)
  double eps = 0.3;          // sink threshold on late_norm
  std::int32_t bos = -1;     // the BOS token id (-1: none; the bos_* metrics are then NaN)
};

struct HeadSink {
  std::int64_t layer = 0, head = 0;
  double first_raw = 0, first_norm = 0;
  double late_raw = 0, late_norm = 0;
  double bos_raw = 0, bos_norm = 0, mid_bos_norm = 0;
  double real_mass = 0;
  double pseudo_mass() const { return 1.0 - real_mass; }
};

// The per-layer mean over heads of each HeadSink field (head = -1).
struct SinkReport {
  std::int64_t n_layer = 0, n_head = 0;
  std::int64_t probes = 0;      // texts averaged
  std::int64_t min_row = 8;     // as used
  double eps = 0.3;
  std::vector<HeadSink> heads;   // layer-major, n_layer * n_head
  std::vector<HeadSink> layers;  // n_layer: means over the heads of each layer
  HeadSink mean;                 // the mean over all heads
  double sink_ratio = 0;         // fraction of heads with first_norm > eps (Gu et al.)
  std::int64_t sink_heads = 0;   // how many that is
  double sink_ratio_late = 0;    // fraction of heads with late_norm > eps
  std::int64_t sink_heads_late = 0;
  HeadSink strongest;            // the head with the largest late_norm
  double uniform_late = 0;       // late_norm of uniform rows (the baseline)
  const HeadSink& at(std::int64_t layer, std::int64_t head) const {
    return heads[static_cast<std::size_t>(layer * n_head + head)];
  }
};

// Sums the rows of probe texts and turns them into a report. maps: (n_layer, n_head, T, T) of one text, any
// float dtype; ids: its T token ids. Every text must have the same n_layer and n_head.
class SinkAccumulator {
 public:
  explicit SinkAccumulator(SinkOptions options = {});
  void add(const Tensor& maps, const std::vector<std::int32_t>& ids);
  SinkReport report() const;  // throws when no text was added
  const SinkOptions& options() const { return options_; }

 private:
  struct Sums {
    double first_raw = 0, first_norm = 0, late_raw = 0, late_norm = 0, bos_raw = 0, bos_norm = 0, mid_bos_norm = 0,
           real_mass = 0;
  };
  SinkOptions options_;
  std::int64_t n_layer_ = 0, n_head_ = 0, probes_ = 0;
  std::vector<Sums> sums_;  // per head
  std::int64_t first_rows_ = 0, late_rows_ = 0, bos_rows_ = 0, mid_bos_rows_ = 0;
  double uniform_sum_ = 0;
  std::int64_t min_row_used_ = 0;
};

// One text's report (an accumulator with one text).
SinkReport sink_metrics(const Tensor& maps, const std::vector<std::int32_t>& ids, const SinkOptions& options = {});

// Records the model's attention (eval mode, no graph; the mode is restored) on each probe text and averages.
SinkReport measure_sinks(GPT& model, const std::vector<std::vector<std::int32_t>>& probes,
                         const SinkOptions& options = {});
// The maps (n_layer, n_head, T, T) of one text, float32.
Tensor record_attention(GPT& model, const std::vector<std::int32_t>& ids);

// Massive activations (Sun et al. 2024): per layer, the largest |h| of the residual stream after that block
// over every token and channel of the probe texts, against the median |h| over the same elements.
struct MassiveActivations {
  std::vector<double> top, median, ratio;  // one per layer; ratio = top / median (inf when the median is 0)
};
MassiveActivations massive_activations(GPT& model, const std::vector<std::vector<std::int32_t>>& probes);

// One CSV row per head: layer,head,first_raw,first_norm,late_raw,late_norm,bos_raw,bos_norm,mid_bos_norm,
// real_mass,pseudo_mass,sink (first_norm > eps: 1 or 0),sink_late (late_norm > eps). `prefix` columns (e.g. "seed,mask,") are prepended to
// the header and `prefix_values` to each row.
std::string sink_csv_header(const std::string& prefix = "");
std::string sink_csv_rows(const SinkReport& report, const std::string& prefix_values = "");
// The report as a JSON object: the options, sink_ratio, sink_heads, sink_ratio_late, sink_heads_late, strongest,
// uniform_late, mean, layers, heads.
std::string sink_json(const SinkReport& report);
// A readable table: one line per head, then format_sink_summary's line.
std::string format_sink_report(const SinkReport& report);
// One line: the mean key-0 share against uniform, the sink ratio, the strongest head, the real/pseudo mass.
std::string format_sink_summary(const SinkReport& report);

}  // namespace gradlab
