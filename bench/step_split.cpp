// Where one training step's time goes: the phases of Trainer::train_step (forward + loss, backward, gradient
// norm, clipping scale, AdamW, zero_grad) and the batch sampling before it, on the `gradlab train` presets and
// the built-in grammar corpus (its defaults: no bias, dropout 0, seed 1337, clip 1.0). Medians over many steps
// of the wall time and of the process CPU time (all threads) of each phase; a table, then one line of JSON.
//   step_split [--config tiny|small] [--threads N] [--steps N] [--warmup N] [--mask causal|stablemask] [--bias]
// The scale runs every step (factor 1 when the norm is under the clip, which leaves the gradients unchanged),
// so its row is the cost of a clipped step; "clipped" counts the steps the trainer would have scaled.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "data/grammar.h"
#include "nn/gpt.h"
#include "nn/optim.h"
#include "tensor/cpu.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "step_split: %s\nusage: step_split [--config tiny|small] [--threads N] [--steps N] [--warmup N] "
               "[--mask causal|stablemask] [--bias]\n",
               why.c_str());
  std::exit(2);
}

long parse_count(const std::string& flag, const char* text, long lo, long hi) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < lo || v > hi)
    usage(flag + " " + text + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const std::size_t n = x.size();
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

double quantile(std::vector<double> x, double q) {  // nearest rank
  std::sort(x.begin(), x.end());
  return x[std::min(x.size() - 1, static_cast<std::size_t>(q * static_cast<double>(x.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = "tiny", mask = "causal";
  long threads = max_threads(), steps = 200, warmup = 10;
  bool bias = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--config") {
      which = value();
      if (which != "tiny" && which != "small") usage("--config " + which + ": expected tiny or small");
    } else if (a == "--threads") {
      threads = parse_count(a, value(), 1, 1024);
    } else if (a == "--steps") {
      steps = parse_count(a, value(), 1, 1000000);
    } else if (a == "--warmup") {
      warmup = parse_count(a, value(), 0, 1000000);
    } else if (a == "--mask") {
      mask = value();
    } else if (a == "--bias") {
      bias = true;
    } else {
      usage("unknown argument '" + a + "'");
    }
  }
  set_num_threads(static_cast<int>(threads));
  print_build_info();

  auto data = make_grammar_dataset();  // `gradlab train`'s default corpus
  GPTConfig c;
  std::int64_t B = 12;
  if (which == "small") {
    c.n_layer = 6; c.n_head = 6; c.n_embd = 384; c.block_size = 256; B = 8;
  } else {
    c.n_layer = 4; c.n_head = 4; c.n_embd = 128; c.block_size = 64;
  }
  c.vocab_size = data->vocab_size();
  c.bias = bias;
  c.mask = strategy_info(mask).name;
  const std::int64_t T = c.block_size;
  GPT model(c, 1337);
  AdamW opt(model.named_parameters());
  const auto& params = opt.params();
  Rng rng(1337);
  const double lr = 1e-3, clip = 1.0;

  enum Phase { kBatch, kForward, kBackward, kNorm, kScale, kAdamW, kZero, kPhases };
  const char* names[kPhases] = {"batch", "forward", "backward", "grad_norm", "scale", "adamw", "zero_grad"};
  std::vector<double> wall[kPhases], cpu[kPhases], wall_total, cpu_total;
  long clipped = 0;
  double load[3] = {-1, -1, -1};
  if (getloadavg(load, 3) < 0) load[0] = load[1] = load[2] = -1;

  for (long s = 0; s < warmup + steps; ++s) {
    double w[kPhases + 1], u[kPhases + 1];
    int k = 0;
    auto mark = [&] {
      w[k] = wall_seconds();
      u[k] = cpu_seconds();
      ++k;
    };
    opt.zero_grad();
    mark();
    Batch b = data->batch(Split::Train, B, T, rng);
    mark();
    Var loss = model.loss(model.forward(b.inputs, b.B, b.T), b.targets);
    const double value = loss.item();
    mark();
    loss.backward();
    mark();
    const double norm = grad_norm(params);
    mark();
    const bool clips = norm > clip;
    scale_gradients(params, clips ? clip / (norm + 1e-6) : 1.0);
    mark();
    const bool finite = opt.step(lr);
    mark();
    opt.zero_grad();
    mark();
    if (!std::isfinite(value) || !finite) {
      std::fprintf(stderr, "step_split: step %ld: loss %g, update finite %d: the run diverged\n", s, value, finite);
      return 1;
    }
    if (s < warmup) continue;
    clipped += clips;
    for (int p = 0; p < kPhases; ++p) {
      wall[p].push_back(1e3 * (w[p + 1] - w[p]));
      cpu[p].push_back(1e3 * (u[p + 1] - u[p]));
    }
    wall_total.push_back(1e3 * (w[kPhases] - w[0]));
    cpu_total.push_back(1e3 * (u[kPhases] - u[0]));
  }

  std::printf("step_split %s %s%s, %ld threads, B %lld T %lld, %ld steps after %ld warm-up; load average at start "
              "%.2f %.2f %.2f\n",
              which.c_str(), c.mask.c_str(), bias ? " bias" : "", threads, static_cast<long long>(B),
              static_cast<long long>(T), steps, warmup, load[0], load[1], load[2]);
  std::printf("| phase | wall median ms | wall p10 | wall p90 | CPU median ms |\n|---|---:|---:|---:|---:|\n");
  std::string json_wall, json_cpu;
  for (int p = 0; p <= kPhases; ++p) {
    const auto& wv = p < kPhases ? wall[p] : wall_total;
    const auto& cv = p < kPhases ? cpu[p] : cpu_total;
    const char* name = p < kPhases ? names[p] : "step";
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f |\n", name, median(wv), quantile(wv, 0.1), quantile(wv, 0.9),
                median(cv));
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s\"%s\":%.4f", p ? "," : "", name, median(wv));
    json_wall += buf;
    std::snprintf(buf, sizeof buf, "%s\"%s\":%.4f", p ? "," : "", name, median(cv));
    json_cpu += buf;
  }
  std::printf("clipped %ld of %ld steps\n", clipped, steps);
  std::printf("{\"bench\":\"step_split\",\"config\":\"%s\",\"mask\":\"%s\",\"bias\":%s,\"threads\":%ld,\"steps\":%ld,"
              "\"warmup\":%ld,\"kernels\":\"%s\",\"load1\":%.2f,\"clipped\":%ld,\"median_wall_ms\":{%s},"
              "\"median_cpu_ms\":{%s}}\n",
              which.c_str(), c.mask.c_str(), bias ? "true" : "false", threads, steps, warmup, simd_kernels(), load[0],
              clipped, json_wall.c_str(), json_cpu.c_str());
}
