// Times one GPT forward + backward (no optimizer) for the tiny and small benchmark configs, causal and
// StableMask, and prints tokens/s. For profiling the model itself; the full training throughput (with AdamW)
// is measured by `gradlab train` and recorded in docs/performance.md.
//   model_step [tiny|small] [causal|stablemask] [steps]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "nn/gpt.h"
#include "tensor/cpu.h"
#include "tensor/rng.h"

using namespace gradlab;

int main(int argc, char** argv) {
  print_build_info();
  std::string which = argc > 1 ? argv[1] : "tiny";
  std::string mask = argc > 2 ? argv[2] : "causal";
  int steps = argc > 3 ? std::atoi(argv[3]) : 20;
  GPTConfig c;
  std::int64_t B = 12;
  if (which == "small") {
    c.n_layer = 6; c.n_head = 6; c.n_embd = 384; c.block_size = 256; B = 8;
  } else {
    c.n_layer = 4; c.n_head = 4; c.n_embd = 128; c.block_size = 64;
  }
  c.vocab_size = 65;
  c.mask = strategy_info(mask).name;
  GPT model(c, 1);
  const std::int64_t T = c.block_size;
  Rng rng(2);
  std::vector<std::int32_t> idx(B * T), tgt(B * T);
  for (auto& v : idx) v = static_cast<std::int32_t>(rng.below(65));
  for (auto& v : tgt) v = static_cast<std::int32_t>(rng.below(65));
  double best = 1e30;
  for (int s = 0; s < steps; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    model.zero_grad();
    Var loss = model.loss(model.forward(idx, B, T), tgt);
    loss.backward();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s >= 2) best = std::min(best, dt);
  }
  std::printf("%s %s: best fwd+bwd %.2f ms, %.0f tok/s\n", which.c_str(), mask.c_str(), best * 1e3, B * T / best);
}
