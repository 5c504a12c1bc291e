// Replays a PyTorch training run recorded by bench/replay_pytorch.py: the same initial weights and the same
// batches go through gradlab's Trainer::train_step (float32, the training kernels), and the two runs are compared
// step by step, then by their final weights and their full-val loss. With the random draws taken out, what is
// left is the arithmetic: this shows whether a difference between two engines' results comes from the engine
// or from its seeds.
//
//   build/bench/replay_pytorch RUN.safetensors [--threads N] [--every K]
//
// Prints the loss of both engines every K steps (default 250), the largest loss difference over all steps, the
// final weights' max and RMS difference, and both val losses; exit 0 (it measures, it does not judge).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "data/dataset.h"
#include "train/evaluate.h"
#include "nn/gpt.h"
#include "train/safetensors.h"
#include "train/trainer.h"
#include "tensor/cpu.h"
#include "tensor/error.h"

using namespace gradlab;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("replay_pytorch: cannot read the data file ", path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int run(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: replay_pytorch RUN.safetensors [--threads N] [--every K]\n");
    return argc < 2 ? 2 : 0;
  }
  int threads = 1;
  std::int64_t every = 250;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--every") every = std::atoll(argv[i + 1]);
    else throw_error("replay_pytorch: unknown flag ", flag);
  }
  if (threads < 1 || every < 1) throw_error("replay_pytorch: --threads and --every must be >= 1");
  set_num_threads(threads);
  print_build_info(stdout);

  const SafetensorsFile run = read_safetensors(argv[1]);
  const GPTConfig config = GPTConfig::from_json(run.metadata.at("config"));
  std::vector<std::pair<std::string, Tensor>> initial;
  for (const auto& [name, t] : run.tensors)
    if (name.rfind("weights/", 0) == 0) initial.emplace_back(name.substr(8), t);
  GPT model(config, 0);
  model.load_state_dict(initial, argv[1]);

  // The dataset gives the vocabulary check and the val split; the training batches come from the file.
  const auto data = TextDataset::from_text("tinyshakespeare", read_text(run.metadata.at("data")), TokenizerKind::Char);
  TrainConfig tc;  // issue 4's recipe: the Trainer's defaults, with the cosine ending where PyTorch's did
  tc.schedule.lr_decay_iters = std::stoll(run.metadata.at("decay_iters"));
  tc.progress = Progress::Mode::Quiet;
  Trainer trainer(model, *data, tc);

  const Tensor& inputs = run.tensors.at("inputs");  // (steps, B, T) token ids as F64
  const Tensor& targets = run.tensors.at("targets");
  const Tensor& torch_losses = run.tensors.at("losses");
  const std::int64_t steps = inputs.size(0), B = inputs.size(1), T = inputs.size(2);
  double worst_loss_diff = 0;
  std::int64_t worst_step = 0;
  for (std::int64_t s = 0; s < steps; ++s) {
    Batch batch;
    batch.B = B;
    batch.T = T;
    const double* x = inputs.data<double>() + s * B * T;
    const double* y = targets.data<double>() + s * B * T;
    batch.inputs.assign(x, x + B * T);
    batch.targets.assign(y, y + B * T);
    const Trainer::StepResult r = trainer.train_step({batch}, tc.schedule.at(s));
    if (!r.nonfinite.empty()) throw_error("replay_pytorch: step ", s, ": ", r.nonfinite);
    const double torch_loss = torch_losses.data<double>()[s];
    if (std::abs(r.loss - torch_loss) > worst_loss_diff) worst_loss_diff = std::abs(r.loss - torch_loss), worst_step = s;
    if (s % every == 0 || s == steps - 1)
      std::printf("step %5lld  gradlab %.6f  pytorch %.6f  difference %+.1e\n", static_cast<long long>(s), r.loss,
                  torch_loss, r.loss - torch_loss);
  }
  double max_diff = 0, sum_sq = 0;
  std::int64_t count = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    const auto got = p.data().to_vector(), want = run.tensors.at("final/" + name).to_vector();
    for (std::size_t i = 0; i < got.size(); ++i) {
      max_diff = std::max(max_diff, std::abs(got[i] - want[i]));
      sum_sq += (got[i] - want[i]) * (got[i] - want[i]);
      ++count;
    }
  }
  const EvalResult val = evaluate(model, data->eval_windows(Split::Val, config.block_size));
  std::printf("largest loss difference over %lld steps: %.1e (step %lld)\n", static_cast<long long>(steps),
              worst_loss_diff, static_cast<long long>(worst_step));
  std::printf("final weights: max |difference| %.2e, RMS difference %.2e over %lld values\n", max_diff,
              std::sqrt(sum_sq / static_cast<double>(count)), static_cast<long long>(count));
  std::printf("val loss (full split): gradlab %.4f, pytorch %s\n", val.loss, run.metadata.at("val_full").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
