// bench_attention: attention forward + backward, fused (flash) against materialized (reference), causal
// against StableMask, with B = 1, H = 6, D = 64 (the setting). Plain program, no Google Benchmark.
//
//   bench_attention one T fused|materialized [reps]
//       One process, one T: warm-up, then reps rounds; each round times causal and StableMask once, in
//       alternating order (interleaved repetitions). Prints one line:
//       T mode causal_median_ms stablemask_median_ms ratio peak_MB baseline_MB
//       peak = VmHWM (resident high-water mark) of this process, baseline = VmHWM before any allocation.
//   bench_attention table [T ...]        (default T = 128 256 512 1024 2048 4096)
//       Re-executes itself once per (T, mode), so each peak belongs to that T alone, and prints a
//       markdown table.
// StableMask uses gamma_h = ALiBi slopes, training length L = T, finite tail. No ALiBi/RoPE (RoPE is applied
// before the kernel and costs the same in both modes).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "nn/stablemask.h"
#include "tensor/attention_kernel.h"
#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/rng.h"

using namespace gradlab;
using namespace gradlab::attention;

namespace {

constexpr std::int64_t kB = 1, kH = 6, kD = 64;

// VmHWM of this process in MB (peak resident set size), from /proc/self/status.
double peak_resident_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;  // the value is in kB
  return -1.0;
}

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const std::size_t n = x.size();
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

using Clock = std::chrono::steady_clock;

int run_one(std::int64_t T, const std::string& mode, int reps_wanted) {
  const double baseline_mb = peak_resident_mb();
  const bool fused = mode == "fused";
  if (!fused && mode != "materialized") throw_error("bench_attention: got mode '", mode, "', expected fused or materialized");
  const Geometry g{kB, kH, T, kD};
  const std::int64_t n = kB * kH * T * kD;
  std::vector<float> q(n), k(n), v(n), d_o(n), o(n), dq(n), dk(n), dv(n), lse(kB * kH * T);
  std::vector<float> probs(fused ? 0 : kB * kH * T * T);
  Rng rng(2024);
  for (auto* x : {&q, &k, &v, &d_o})
    for (float& e : *x) e = float(rng.normal());
  std::vector<float> tau(kH * T);
  stablemask_tau_table(alibi_slopes(kH), /*L*/ T, T, 0, StableMaskTail::Finite, tau.data());
  Bias causal{float(1.0 / std::sqrt(double(kD)))};
  Bias stable = causal;
  stable.tau = tau.data();

  auto step = [&](const Bias& bias) {
    const auto start = Clock::now();
    if (fused) {
      flash_forward(g, bias, q.data(), k.data(), v.data(), o.data(), lse.data());
      flash_backward(g, bias, q.data(), k.data(), v.data(), o.data(), lse.data(), d_o.data(), dq.data(), dk.data(),
                     dv.data());
    } else {
      reference_forward(g, bias, q.data(), k.data(), v.data(), probs.data(), o.data());
      reference_backward(g, bias, q.data(), k.data(), v.data(), probs.data(), d_o.data(), dq.data(), dk.data(),
                         dv.data());
    }
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  };
  // warm-up (page faults, caches), and a time estimate to pick the number of rounds: ~3 s per mask
  const double first = step(causal) + step(stable);
  const int reps = reps_wanted > 0 ? reps_wanted : std::clamp(int(6000.0 / first), 5, 41);
  std::vector<double> t_causal, t_stable;
  for (int r = 0; r < reps; ++r) {
    if (r % 2 == 0) {
      t_causal.push_back(step(causal));
      t_stable.push_back(step(stable));
    } else {
      t_stable.push_back(step(stable));
      t_causal.push_back(step(causal));
    }
  }
  const double mc = median(t_causal), ms = median(t_stable);
  std::printf("%lld %s %.3f %.3f %.4f %.1f %.1f %d\n", static_cast<long long>(T), mode.c_str(), mc, ms, ms / mc,
              peak_resident_mb(), baseline_mb, reps);
  return 0;
}

int run_table(std::vector<std::int64_t> lengths) {
  if (lengths.empty()) lengths = {128, 256, 512, 1024, 2048, 4096};
  std::printf("%s\n", build_info().c_str());
  std::printf("B=%lld H=%lld D=%lld, forward+backward, median over interleaved rounds (causal, StableMask)\n\n",
              static_cast<long long>(kB), static_cast<long long>(kH), static_cast<long long>(kD));
  std::printf("| T | mode | causal ms | StableMask ms | SM/causal | fused speed-up (causal) | peak RSS MB | rounds |\n");
  std::printf("|---:|---|---:|---:|---:|---:|---:|---:|\n");
  for (std::int64_t T : lengths) {
    double materialized_ms = 0.0;
    for (const char* mode : {"materialized", "fused"}) {
      const std::string command = "/proc/self/exe one " + std::to_string(T) + " " + mode;
      std::FILE* pipe = popen(command.c_str(), "r");
      if (!pipe) throw_error("bench_attention: could not run '", command, "'");
      char buffer[512] = {0};
      const bool got = std::fgets(buffer, sizeof buffer, pipe) != nullptr;
      const int status = pclose(pipe);
      long long t = 0;
      char m[32] = {0};
      double mc = 0, ms = 0, ratio = 0, peak = 0, base = 0;
      int reps = 0;
      if (!got || status != 0 || std::sscanf(buffer, "%lld %31s %lf %lf %lf %lf %lf %d", &t, m, &mc, &ms, &ratio, &peak, &base, &reps) != 8) {
        std::printf("| %lld | %s | failed (exit status %d) | | | | | |\n", static_cast<long long>(T), mode, status);
        std::fflush(stdout);
        continue;
      }
      if (std::strcmp(mode, "materialized") == 0) materialized_ms = mc;
      std::string speedup = "";
      if (std::strcmp(mode, "fused") == 0 && materialized_ms > 0) {
        char s[32];
        std::snprintf(s, sizeof s, "%.2fx", materialized_ms / mc);
        speedup = s;
      }
      std::printf("| %lld | %s | %.1f | %.1f | %.3f | %s | %.1f | %d |\n", t, m, mc, ms, ratio, speedup.c_str(), peak, reps);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string what = argc > 1 ? argv[1] : "table";
    if (what == "one" && argc >= 4) return run_one(std::atoll(argv[2]), argv[3], argc > 4 ? std::atoi(argv[4]) : 0);
    if (what == "table") {
      std::vector<std::int64_t> lengths;
      for (int a = 2; a < argc; ++a) lengths.push_back(std::atoll(argv[a]));
      return run_table(lengths);
    }
    std::fprintf(stderr, "usage: bench_attention table [T ...] | bench_attention one T fused|materialized [reps]\n");
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_attention: %s\n", e.what());
    return 2;
  }
}
