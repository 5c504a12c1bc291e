// bench_attention: attention forward + backward, fused (flash) against materialized, causal
// against StableMask, with B = 1, H = 6, D = 64 (the setting). Plain program, no Google Benchmark.
//
//   bench_attention one T fused|materialized|sgemm [reps]
//       One process, one T: warm-up, then reps rounds; each round times causal and StableMask once, in
//       alternating order (interleaved repetitions). Prints one line:
//       T mode causal_median_ms stablemask_median_ms ratio peak_MB baseline_MB rounds causal_cpu_ms stablemask_cpu_ms
//       peak = VmHWM (resident high-water mark) of this process, baseline = VmHWM before any allocation.
//   bench_attention table [T ...]        (default T = 128 256 512 1024 2048 4096)
//       Re-executes itself once per (T, mode), so each peak belongs to that T alone, and prints a
//       markdown table.
// Modes:
//   fused         flash_forward + flash_backward (tensor/attention_kernel.h): O and LSE only, tiles recomputed.
//   materialized  materialized_forward + materialized_backward: the (B,H,T,T) probabilities stored; row-by-row
//                 dot products and axpys (same AVX2 inner loops as the fused kernel).
//   sgemm         how a Tensor/autograd path materializes attention, written here with gemm::sgemm_batched:
//                 S = QK^T, softmax rows with sink in place, O = PV; backward dP = dO V^T, dS = P(dP - D),
//                 dV = P^T dO, dQ = dS K, dK = dS^T Q. Full T x T products (causality not exploited), two
//                 (B,H,T,T) buffers (P and dP/dS).
// StableMask uses gamma_h = ALiBi slopes, training length L = T, finite tail. No ALiBi/RoPE (RoPE is applied
// before the kernel and costs the same in both modes).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "nn/stablemask.h"
#include "tensor/attention_kernel.h"
#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/gemm.h"
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

double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

void exp_in_place(float* x, std::int64_t n) {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
  if (use_avx2()) return detail::exp_avx2(x, n);
#endif
  detail::exp_portable(x, n);
}

// The materialized path on batched sgemm. P and dP are (B*H, T, T).
void sgemm_forward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v, float* P,
                   float* o) {
  const std::int64_t BH = g.B * g.H, T = g.T, D = g.D, TD = T * D, TT = T * T;
  gemm::sgemm_batched(BH, false, true, T, T, D, bias.scale, q, D, TD, k, D, TD, 0.0f, P, T, TT);  // S = scale QK^T
#pragma omp parallel for schedule(static)
  for (std::int64_t row = 0; row < BH * T; ++row) {
    const std::int64_t i = row % T, h = (row / T) % g.H;
    float* p = P + row * T;
    const float tau = bias.tau ? bias.tau[h * T + i] : -INFINITY;
    float m = tau;
    for (std::int64_t j = 0; j <= i; ++j) m = std::max(m, p[j]);
    for (std::int64_t j = 0; j <= i; ++j) p[j] -= m;
    exp_in_place(p, i + 1);
    float sum = std::exp(tau - m);
    for (std::int64_t j = 0; j <= i; ++j) sum += p[j];
    for (std::int64_t j = 0; j <= i; ++j) p[j] /= sum;
    std::fill(p + i + 1, p + T, 0.0f);
  }
  gemm::sgemm_batched(BH, false, false, T, D, T, 1.0f, P, T, TT, v, D, TD, 0.0f, o, D, TD);  // O = P V
}

void sgemm_backward(const Geometry& g, const Bias& bias, const float* q, const float* k, const float* v,
                    const float* P, const float* d_o, float* dP, float* dq, float* dk, float* dv) {
  const std::int64_t BH = g.B * g.H, T = g.T, D = g.D, TD = T * D, TT = T * T;
  gemm::sgemm_batched(BH, false, true, T, T, D, 1.0f, d_o, D, TD, v, D, TD, 0.0f, dP, T, TT);  // dP = dO V^T
#pragma omp parallel for schedule(static)
  for (std::int64_t row = 0; row < BH * T; ++row) {
    const float* p = P + row * T;
    float* ds = dP + row * T;
    float row_dot = 0.0f;
    for (std::int64_t j = 0; j < T; ++j) row_dot += p[j] * ds[j];
    for (std::int64_t j = 0; j < T; ++j) ds[j] = p[j] * (ds[j] - row_dot);  // dS = P (dP - D)
  }
  gemm::sgemm_batched(BH, true, false, T, D, T, 1.0f, P, T, TT, d_o, D, TD, 0.0f, dv, D, TD);         // dV = P^T dO
  gemm::sgemm_batched(BH, false, false, T, D, T, bias.scale, dP, T, TT, k, D, TD, 0.0f, dq, D, TD);  // dQ = dS K
  gemm::sgemm_batched(BH, true, false, T, D, T, bias.scale, dP, T, TT, q, D, TD, 0.0f, dk, D, TD);   // dK = dS^T Q
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
  return m;
}

int run_one(std::int64_t T, const std::string& mode, int reps_wanted) {
  const double baseline_mb = peak_resident_mb();
  const bool fused = mode == "fused", blas = mode == "sgemm";
  if (!fused && !blas && mode != "materialized")
    throw_error("bench_attention: got mode '", mode, "', expected fused, materialized or sgemm");
  const Geometry g{kB, kH, T, kD};
  const std::int64_t n = kB * kH * T * kD;
  std::vector<float> q(n), k(n), v(n), d_o(n), o(n), dq(n), dk(n), dv(n), lse(kB * kH * T);
  std::vector<float> probs(fused ? 0 : kB * kH * T * T), d_probs(blas ? kB * kH * T * T : 0);
  Rng rng(2024);
  for (auto* x : {&q, &k, &v, &d_o})
    for (float& e : *x) e = float(rng.normal());
  std::vector<float> tau(kH * T);
  stablemask_tau_table(alibi_slopes(kH), /*L*/ T, T, 0, StableMaskTail::Finite, tau.data());
  Bias causal{float(1.0 / std::sqrt(double(kD)))};
  Bias stable = causal;
  stable.tau = tau.data();

  // Each step returns wall-clock ms; its process CPU time (all threads) goes to cpu_ms. On a machine shared
  // with other jobs the wall time includes waiting for a core, CPU time does not (but counts spinning threads).
  double cpu_ms = 0.0;
  auto step = [&](const Bias& bias) {
    const double cpu_start = process_cpu_ms();
    const auto start = Clock::now();
    if (fused) {
      flash_forward(g, bias, q.data(), k.data(), v.data(), o.data(), lse.data());
      flash_backward(g, bias, q.data(), k.data(), v.data(), o.data(), lse.data(), d_o.data(), dq.data(), dk.data(),
                     dv.data());
    } else if (blas) {
      sgemm_forward(g, bias, q.data(), k.data(), v.data(), probs.data(), o.data());
      sgemm_backward(g, bias, q.data(), k.data(), v.data(), probs.data(), d_o.data(), d_probs.data(), dq.data(),
                     dk.data(), dv.data());
    } else {
      materialized_forward(g, bias, q.data(), k.data(), v.data(), probs.data(), o.data());
      materialized_backward(g, bias, q.data(), k.data(), v.data(), probs.data(), d_o.data(), dq.data(), dk.data(),
                         dv.data());
    }
    const double wall = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    cpu_ms = process_cpu_ms() - cpu_start;
    return wall;
  };
  // warm-up (page faults, caches), and a time estimate to pick the number of rounds: ~3 s per mask
  const double first = step(causal) + step(stable);
  if (blas && T <= 1024) {
    // the sgemm path is written here, so check it once against the fused kernel (StableMask was run last)
    std::vector<float> o2(n), lse2(kB * kH * T), dq2(n), dk2(n), dv2(n);
    flash_forward(g, stable, q.data(), k.data(), v.data(), o2.data(), lse2.data());
    flash_backward(g, stable, q.data(), k.data(), v.data(), o2.data(), lse2.data(), d_o.data(), dq2.data(), dk2.data(),
                   dv2.data());
    const double err = std::max({max_abs_difference(o, o2), max_abs_difference(dq, dq2), max_abs_difference(dk, dk2),
                                 max_abs_difference(dv, dv2)});
    std::fprintf(stderr, "sgemm path vs fused at T=%lld: max |difference| %.2e\n", static_cast<long long>(T), err);
    if (err > 1e-3) throw_error("bench_attention: the sgemm path disagrees with the fused kernel by ", err);
  }
  const int reps = reps_wanted > 0 ? reps_wanted : std::clamp(int(6000.0 / first), 3, 41);
  std::vector<double> t_causal, t_stable, c_causal, c_stable;
  for (int r = 0; r < reps; ++r) {
    for (int which = 0; which < 2; ++which) {
      const bool run_stable = (which == 0) == (r % 2 == 1);  // causal first on even rounds, StableMask on odd
      (run_stable ? t_stable : t_causal).push_back(step(run_stable ? stable : causal));
      (run_stable ? c_stable : c_causal).push_back(cpu_ms);
    }
  }
  const double mc = median(t_causal), ms = median(t_stable), cc = median(c_causal), cs = median(c_stable);
  std::printf("%lld %s %.3f %.3f %.4f %.1f %.1f %d %.3f %.3f\n", static_cast<long long>(T), mode.c_str(), mc, ms,
              ms / mc, peak_resident_mb(), baseline_mb, reps, cc, cs);
  return 0;
}

int run_table(std::vector<std::int64_t> lengths) {
  if (lengths.empty()) lengths = {128, 256, 512, 1024, 2048, 4096};
  // this program's own path (popen runs a shell, for which /proc/self/exe would be the shell)
  char self[4096] = {0};
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) throw_error("bench_attention: cannot read /proc/self/exe");
  std::printf("%s\n", build_info().c_str());
  std::printf("B=%lld H=%lld D=%lld, forward+backward, median over interleaved rounds (causal, StableMask)\n\n",
              static_cast<long long>(kB), static_cast<long long>(kH), static_cast<long long>(kD));
  std::printf("| T | mode | causal ms | StableMask ms | SM/causal | causal CPU ms | SM CPU ms | fused speed-up vs "
              "materialized / sgemm (causal, wall; CPU) | peak RSS MB | rounds |\n");
  std::printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (std::int64_t T : lengths) {
    double materialized_ms = 0.0, sgemm_ms = 0.0, materialized_cpu = 0.0, sgemm_cpu = 0.0;
    for (const char* mode : {"materialized", "sgemm", "fused"}) {
      // std::string first: g++ 12 at -O3 gives a false -Wrestrict warning for "'" + std::string
      const std::string command = std::string("'") + self + "' one " + std::to_string(T) + " " + mode;
      std::FILE* pipe = popen(command.c_str(), "r");
      if (!pipe) throw_error("bench_attention: could not run '", command, "'");
      char buffer[512] = {0};
      const bool got = std::fgets(buffer, sizeof buffer, pipe) != nullptr;
      const int status = pclose(pipe);
      long long t = 0;
      char m[32] = {0};
      double mc = 0, ms = 0, ratio = 0, peak = 0, base = 0, cc = 0, cs = 0;
      int reps = 0;
      if (!got || status != 0 ||
          std::sscanf(buffer, "%lld %31s %lf %lf %lf %lf %lf %d %lf %lf", &t, m, &mc, &ms, &ratio, &peak, &base, &reps,
                      &cc, &cs) != 10) {
        std::printf("| %lld | %s | failed (exit status %d) | | | | | | | |\n", static_cast<long long>(T), mode, status);
        std::fflush(stdout);
        continue;
      }
      if (std::strcmp(mode, "materialized") == 0) materialized_ms = mc, materialized_cpu = cc;
      if (std::strcmp(mode, "sgemm") == 0) sgemm_ms = mc, sgemm_cpu = cc;
      std::string speedup = "";
      if (std::strcmp(mode, "fused") == 0) {
        char s[96];
        std::snprintf(s, sizeof s, "%.2fx / %.2fx (CPU %.2fx / %.2fx)", materialized_ms > 0 ? materialized_ms / mc : 0.0,
                      sgemm_ms > 0 ? sgemm_ms / mc : 0.0, materialized_cpu > 0 ? materialized_cpu / cc : 0.0,
                      sgemm_cpu > 0 ? sgemm_cpu / cc : 0.0);
        speedup = s;
      }
      std::printf("| %lld | %s | %.1f | %.1f | %.3f | %.1f | %.1f | %s | %.1f | %d |\n", t, m, mc, ms, ratio, cc, cs,
                  speedup.c_str(), peak, reps);
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
    std::fprintf(stderr, "usage: bench_attention table [T ...] | bench_attention one T fused|materialized|sgemm [reps]\n");
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_attention: %s\n", e.what());
    return 2;
  }
}
