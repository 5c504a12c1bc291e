#include "train/task_experiment.h"

#include <algorithm>
#include <cmath>

#include "train/evaluate.h"
#include "data/tasks.h"
#include "train/trainer.h"

namespace gradlab {

GPTConfig task_model_config(const TaskExperiment& e, std::int64_t vocab, PosKind pos, const std::string& mask) {
  GPTConfig c;
  c.vocab_size = vocab;
  c.block_size = e.T;
  c.n_layer = e.n_layer;
  c.n_head = e.n_head;
  c.n_embd = e.n_embd;
  c.pos = pos;
  c.mask = mask;
  return c;
}

TaskScore train_and_score_task(const TaskExperiment& e, const std::string& task_name, PosKind pos, const std::string& mask,
                               std::uint64_t seed) {
  auto task = make_task(task_name, e.T);
  GPT model(task_model_config(e, task->vocab_size(), pos, mask), seed);
  TrainConfig tc;
  tc.batch_size = e.batch;
  tc.max_iters = e.steps;
  tc.eval_interval = 0;  // only the final evaluation, which the score below replaces
  tc.eval_iters = 1;
  tc.seed = seed;
  tc.schedule.learning_rate = e.lr;
  tc.schedule.min_lr = e.lr / 10;
  tc.schedule.warmup_iters = std::min<std::int64_t>(30, e.steps / 5);
  tc.schedule.lr_decay_iters = e.steps;
  tc.progress = Progress::Mode::Quiet;
  Trainer trainer(model, *task, tc);
  TrainResult r = trainer.run();
  TaskScore score;
  score.final_loss = r.losses.empty() ? NAN : r.losses.back();
  EvalOptions eo;
  eo.accuracy = true;
  score.accuracy = evaluate(model, task->eval_windows(Split::Val, e.T), eo).accuracy;
  return score;
}

}  // namespace gradlab
