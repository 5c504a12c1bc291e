// fma_peak: the FP32 FMA peak of this machine (AVX2), measured, for each thread count asked for.
// MFU figures in docs/performance.md divide model FLOPs/s by this number.
//
//   fma_peak [threads ...] [--seconds S] [--pin] [--avx512]   (default threads: 1 and all hardware threads; S = 0.5)
//
// Each thread runs 12 independent chains of 8-lane vfmadd (acc = acc * m + a): an FMA has a latency of 4-5
// cycles and 2 issue ports on the cores we target, so at least 2 x 5 = 10 chains are needed to fill both
// ports; 12 leaves room. Every FMA counts 16 FLOPs (8 lanes x multiply + add). The chains stay finite (m < 1
// and a small a: they converge to a / (1 - m)), and their sum is printed so that nothing is optimised away.
// --avx512 measures 16-lane AVX-512 FMAs instead (32 FLOPs each). --pin binds thread t to the t-th CPU of the process's affinity mask (use taskset to choose the CPUs).
// Output: one JSON object per thread count on stdout: {"threads": n, "isa": "avx2", "gflops": x, ...}.
// Exit codes: 0 ok, 1 runtime failure (no AVX2/FMA), 2 bad usage.
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kChains = 12;
constexpr long kInner = 1 << 16;  // FMAs per chain between clock reads

// One thread's work: `blocks` rounds of kInner x kChains FMAs. Returns a sum of the accumulators.
__attribute__((target("avx2,fma"))) float fma_chains(long blocks) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(1.0f + 0.01f * float(c));
  const __m256 m = _mm256_set1_ps(0.999f), a = _mm256_set1_ps(0.001f);
  for (long b = 0; b < blocks; ++b) {
    for (long i = 0; i < kInner; ++i) {
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, a);
    }
  }
  __m256 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

// The same with 16-lane AVX-512 FMAs (32 FLOPs each), to state the peak of a machine whose wider units
// gradlab's AVX2 kernels do not use but its peer's libraries (MKL, oneDNN) do.
__attribute__((target("avx512f"))) float fma_chains_512(long blocks) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(1.0f + 0.01f * float(c));
  const __m512 m = _mm512_set1_ps(0.999f), a = _mm512_set1_ps(0.001f);
  for (long b = 0; b < blocks; ++b) {
    for (long i = 0; i < kInner; ++i) {
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    }
  }
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0] + out[15];
}

bool g_avx512 = false;
float run_chains(long blocks) { return g_avx512 ? fma_chains_512(blocks) : fma_chains(blocks); }

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Runs n threads for about `seconds`; returns GFLOP/s over the slowest thread's wall time.
double measure(int n, double seconds, bool pin, float* sink) {
  // Calibrate blocks on one thread: about seconds of work.
  long blocks = 1;
  for (;;) {
    const double t0 = now();
    *sink += run_chains(blocks);
    const double dt = now() - t0;
    if (dt > 0.05) {
      blocks = std::max(1L, long(double(blocks) * seconds / dt));
      break;
    }
    blocks *= 2;
  }
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (pin && sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> t_end(size_t(n), 0.0);
  std::vector<float> sums(size_t(n), 0.0f);
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t) {
    pool.emplace_back([&, t] {
      if (!cpus.empty()) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[size_t(t) % cpus.size()], &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
      }
      ready.fetch_add(1);
      while (!go.load()) {
      }
      sums[size_t(t)] = run_chains(blocks);
      t_end[size_t(t)] = now();
    });
  }
  while (ready.load() < n) {
  }
  const double t0 = now();
  go.store(true);
  for (auto& th : pool) th.join();
  const double dt = *std::max_element(t_end.begin(), t_end.end()) - t0;
  for (float s : sums) *sink += s;
  const double flops = double(n) * double(blocks) * double(kInner) * kChains * (g_avx512 ? 32.0 : 16.0);
  return flops / dt * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads;
  double seconds = 0.5;
  bool pin = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--avx512")) {
      g_avx512 = true;
    } else if (!std::strcmp(argv[i], "--pin")) {
      pin = true;
    } else {
      char* end = nullptr;
      const long n = std::strtol(argv[i], &end, 10);
      if (!end || *end || n < 1 || n > 1024) {
        std::fprintf(stderr, "fma_peak: bad argument '%s': expected a thread count 1..1024, --seconds S or --pin\n",
                     argv[i]);
        return 2;
      }
      threads.push_back(int(n));
    }
  }
  if (!(seconds > 0.0 && seconds < 600.0)) {
    std::fprintf(stderr, "fma_peak: --seconds %g: expected 0 < S < 600\n", seconds);
    return 2;
  }
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::fprintf(stderr, "fma_peak: this CPU has no AVX2+FMA; the probe measures only that path\n");
    return 1;
  }
  if (g_avx512 && !__builtin_cpu_supports("avx512f")) {
    std::fprintf(stderr, "fma_peak: --avx512 asked for, but this CPU has no AVX-512F\n");
    return 1;
  }
  if (threads.empty()) {
    threads.push_back(1);
    const int hw = int(std::thread::hardware_concurrency());
    if (hw > 1) threads.push_back(hw);
  }
  float sink = 0.0f;
  for (int n : threads) {
    // Best of 3: the probe measures what the cores can do, so a descheduled run is discarded, not averaged.
    double best = 0.0;
    for (int r = 0; r < 3; ++r) best = std::max(best, measure(n, seconds, pin, &sink));
    std::printf("{\"threads\": %d, \"isa\": \"%s\", \"gflops\": %.1f, \"per_thread\": %.1f, \"seconds\": %.2f}\n", n,
                g_avx512 ? "avx512" : "avx2", best, best / n, seconds);
  }
  std::fprintf(stderr, "fma_peak: checksum %g\n", double(sink));
  return 0;
}
