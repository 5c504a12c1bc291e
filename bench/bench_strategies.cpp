// bench_strategies: the fused attention op's cost under each strategy of the table, forward + backward, as
// the GPT runs it (nn/gpt.cpp's fused path): y = attention_fused_qkv(qkv, tau_var), then the strategy's gate,
// loss = sum(y * w), backward. Plain program, no Google Benchmark.
//
//   bench_strategies [T] [reps] [B]      (default T = 256, reps = 21, B = 4; H = 6, D = 64, one thread)
//
// Each round times every strategy once, in an order rotated by the round (interleaved repetitions), so drifts
// of a shared machine fall on all of them alike. Prints one markdown row per strategy: median wall ms, median
// CPU ms, and both as a ratio to causal's median.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "autograd/attention.h"
#include "autograd/ops.h"
#include "nn/attention_strategy.h"
#include "nn/gpt.h"
#include "tensor/cpu.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e3 * static_cast<double>(ts.tv_sec) + 1e-6 * static_cast<double>(ts.tv_nsec);
}

Tensor random_tensor(const Shape& shape, Rng& rng) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n *= s;
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& e : x) e = static_cast<float>(rng.normal(0.0, 1.0));
  return Tensor::from_floats(shape, x);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t T = argc > 1 ? std::atoll(argv[1]) : 256;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 21;
  const std::int64_t B = argc > 3 ? std::atoll(argv[3]) : 4;
  const std::int64_t H = 6, D = 64, C = H * D;
  if (T < 1 || reps < 1 || B < 1) {
    std::fprintf(stderr, "bench_strategies: got T = %lld, reps = %d, B = %lld, expected all >= 1\n", (long long)T, reps,
                 (long long)B);
    return 2;
  }
  set_num_threads(1);
  Rng rng(7);
  const Tensor qkv0 = random_tensor({B, T, 3 * C}, rng), x0 = random_tensor({B, T, C}, rng),
               w0 = random_tensor({B, T, C}, rng);
  struct Entry {
    std::string name;
    std::unique_ptr<AttentionStrategy> strategy;
    std::vector<double> wall, cpu;
  };
  std::vector<Entry> entries;
  for (const std::string& n : strategy_names()) {
    GPTConfig c;
    c.n_layer = 1;
    c.n_head = H;
    c.n_embd = C;
    c.block_size = T;
    c.mask = n;
    c.pos = PosKind::Rope;
    auto s = make_attention_strategy(c);
    if (!s->fused_supported()) {  // null-kv: no fused path to time
      std::printf("(%s: no fused path, not timed)\n", n.c_str());
      continue;
    }
    entries.push_back({n, std::move(s), {}, {}});
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  auto step = [&](const AttentionStrategy& s) {
    for (auto& [name, p] : s.named_parameters()) p.zero_grad();
    Var qkv = Var::leaf(qkv0, true), x = Var::leaf(x0, true);
    auto [null_k, null_v] = s.null_kv(DType::F32);
    Var y = attention_fused_qkv(qkv, H, s.tau_var(T, 0, DType::F32), s.alibi_slopes(), scale, null_k, null_v);
    y = s.gate(y, x);
    sum(mul(y, Var::leaf(w0))).backward();
  };
  for (Entry& e : entries) step(*e.strategy);  // warm-up
  const std::size_t n = entries.size();
  for (int r = 0; r < reps; ++r)
    for (std::size_t k = 0; k < n; ++k) {
      Entry& e = entries[(k + static_cast<std::size_t>(r)) % n];
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_ms();
      step(*e.strategy);
      e.cpu.push_back(cpu_ms() - c0);
      e.wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  const double base_wall = median(entries[0].wall), base_cpu = median(entries[0].cpu);
  std::printf("B = %lld, T = %lld, H = %lld, D = %lld, one thread, %d interleaved rounds (fused forward + backward)\n\n",
              (long long)B, (long long)T, (long long)H, (long long)D, reps);
  std::printf("| strategy | wall ms (median) | CPU ms (median) | wall / causal | CPU / causal |\n|---|---|---|---|---|\n");
  for (const Entry& e : entries)
    std::printf("| %s | %.2f | %.2f | %.3f | %.3f |\n", e.name.c_str(), median(e.wall), median(e.cpu),
                median(e.wall) / base_wall, median(e.cpu) / base_cpu);
  return 0;
}
