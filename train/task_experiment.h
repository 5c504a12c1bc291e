#pragma once
// One cell of the position experiments (docs/stablemask.md#claims-the-course-measures): train a fresh GPT on a position task and score it on
// the task's fixed evaluation set. Lesson 10 and bench/position_tasks run the same recipe through this one
// function, so the lesson's numbers and docs/science.md's table come from the same code.
//
// Recipe: AdamW with the trainer's defaults (betas 0.9/0.99, weight decay 0.1, clip 1.0), warmup over
// min(30, steps/5) steps, cosine decay from lr to lr/10 at `steps`; no evaluation during training.
#include <cstdint>
#include <string>

#include "nn/gpt.h"

namespace gradlab {

struct TaskExperiment {
  std::int64_t T = 32;  // sequence length = block_size = number of position classes
  std::int64_t n_layer = 2, n_head = 4, n_embd = 64;
  std::int64_t steps = 300, batch = 16;
  double lr = 3e-3;
};

struct TaskScore {
  double accuracy = 0.0;    // fraction of target positions predicted right on Split::Val
  double final_loss = 0.0;  // the training loss of the last step
};

// The GPT the experiment trains for a task of `vocab` ids (other fields keep GPTConfig's defaults).
GPTConfig task_model_config(const TaskExperiment& e, std::int64_t vocab, PosKind pos, const std::string& mask);

// Trains on the named task (make_task's names) with `seed` for the initialisation and the batches.
TaskScore train_and_score_task(const TaskExperiment& e, const std::string& task, PosKind pos, const std::string& mask,
                               std::uint64_t seed);

}  // namespace gradlab
