#pragma once
// The training loop: seeded batches, AdamW with warmup + cosine decay, gradient clipping and accumulation,
// periodic evaluation, a CSV log, atomic checkpoints, resume, Ctrl-C and non-finite-loss handling.
//
//   for it = start .. max_iters-1:
//     if it % eval_interval == 0: estimate train/val loss (fixed batches, model in eval mode)
//     lr = schedule(it)
//     grad_accum times: batch <- data(train, rng); loss = CE(model(batch)) / grad_accum; backward
//     non-finite loss or gradient -> stop (no checkpoint written; the last good one stays)
//     clip the gradient norm; AdamW step; log; every checkpoint_interval steps: checkpoint
//     Ctrl-C seen -> checkpoint and stop
//
// Determinism: all randomness comes from Rngs seeded by `seed` (the model's initialisation, the data windows,
// dropout), the evaluation batches come from their own Rng re-seeded at every evaluation (so evaluation never
// shifts the training stream), and the kernels reduce in a fixed order: the same build and seed give the same
// losses bit for bit, and a resumed run continues the uninterrupted one's loss curve exactly. The checkpoint
// holds everything that takes part: the data Rng, the model's dropout Rng (GPT::dropout_rng_state), the AdamW
// moments and the step (tests/train: "resume ... without and with dropout").
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/checkpoint.h"
#include "data/dataset.h"
#include "nn/gpt.h"
#include "autograd/profile.h"
#include "nn/optim.h"
#include "train/progress.h"

namespace gradlab {

struct TrainConfig {
  std::int64_t batch_size = 12;  // sequences per micro-batch
  std::int64_t grad_accum = 1;   // micro-batches per optimizer step
  std::int64_t max_iters = 2000;
  std::int64_t eval_interval = 250;       // evaluate every N iterations (and at the end); 0: only at the end
  std::int64_t eval_iters = 20;           // batches per split per evaluation
  std::int64_t log_interval = 10;         // plain progress line every N steps (non-terminal stderr)
  std::int64_t checkpoint_interval = 0;   // checkpoint every N steps (and always at the end); 0: only at the end
  std::uint64_t seed = 1337;
  LrSchedule schedule;
  AdamWConfig adamw;
  double grad_clip = 1.0;  // 0: no clipping
  std::string out_dir;     // checkpoints and log.csv go here; "" writes nothing (tests, lessons)
  Progress::Mode progress = Progress::Mode::Auto;
  bool profile = false;    // time each phase of a step and each op (autograd/profile.h); not saved

  void validate() const;
  std::string to_json() const;  // everything above except out_dir and progress
  static TrainConfig from_json(const std::string& json);
};

enum class TrainStatus { Completed, Interrupted, NonFinite };

struct TrainResult {
  TrainStatus status = TrainStatus::Completed;
  std::string message;          // why training stopped early ("" when completed)
  std::int64_t start_step = 0;  // the step this run started from (> 0 after a resume)
  std::int64_t steps = 0;       // optimizer steps completed in total (the checkpoint's step)
  std::int64_t tokens = 0;      // tokens trained on in this run: batch_size * block_size * grad_accum per step
  double seconds = 0.0;         // wall time of the timed steps (this run's steps after the first 5 warm-up steps)
  double tokens_per_second = 0.0;
  double train_loss = NAN, val_loss = NAN;  // the final evaluation
  std::vector<double> losses;               // the training loss of each step of this run
  std::vector<double> grad_norms;           // the pre-clip gradient norm of each step of this run
  std::vector<profile::Entry> profile;      // with TrainConfig::profile: the timed steps (all steps if <= 5)
  std::int64_t profiled_steps = 0;
};

// Refuses a train_state that cannot continue this run: its step beyond max_iters, or a data RNG state that is
// not on the stream of the run's seed (another run's train_state). Trainer::resume calls it; the CLI calls it
// first, so that the refusal is a bad-input error (exit code 2).
void check_resume_state(const TrainConfig& config, const TrainState& state);

// The stop flag raised by SIGINT (or by a test). Async-signal-safe to set.
void request_training_stop();
bool training_stop_requested();
void clear_training_stop();

// Hooks for tests and lessons.
struct TrainHooks {
  std::function<void(std::int64_t it, GPT& model)> before_step;  // before iteration `it` draws its batch
  std::function<void(std::int64_t it, double loss)> after_step;  // after a successful optimizer step
};

class Trainer {
 public:
  // The model is trained in place. data_source: a JSON description of the data (stored in checkpoints so that
  // a resume can reload it); may be "{}".
  Trainer(GPT& model, const Dataset& data, TrainConfig config, std::string data_source = "{}");
  ~Trainer();

  // Continue from a checkpoint's training state (the model's weights must already be loaded).
  void resume(const TrainState& state);

  // Runs until max_iters, Ctrl-C (SIGINT is caught while run() is active) or a non-finite loss.
  TrainResult run();

  // One optimizer step on the given micro-batches (each one's loss is divided by their count, so gradients
  // accumulate to the mean). Returns the mean loss. Exposed for tests; run() uses it.
  struct StepResult {
    double loss = 0.0;
    double grad_norm = 0.0;
    std::string nonfinite;  // non-empty: the step was not applied; says what and which parameter
  };
  StepResult train_step(const std::vector<Batch>& micro_batches, double lr);

  // Mean loss over eval_iters fixed batches of a split (model in eval mode, no graph).
  double estimate_loss(Split split);

  TrainState state() const;  // what a checkpoint would hold now
  std::int64_t step() const { return step_; }
  AdamW& optimizer() { return *opt_; }
  Rng& data_rng() { return rng_; }
  TrainHooks hooks;

 private:
  void write_checkpoint();
  void open_log(bool resuming);
  void log_row(std::int64_t it, double lr, double loss, double val, double tps, double gnorm, double eval_train);

  GPT& model_;
  const Dataset& data_;
  TrainConfig config_;
  std::string data_source_;
  std::unique_ptr<AdamW> opt_;
  Rng rng_;
  std::int64_t step_ = 0;
  bool resumed_ = false;
  std::FILE* log_ = nullptr;
};

}  // namespace gradlab
