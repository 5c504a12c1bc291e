// bench_portable: every kernel family on its AVX2 path and on its portable path, in one process, on one
// thread (issue 19: no portable kernel more than 3 times slower per element than its AVX2 version). Plain
// program, no Google Benchmark.
//
//   bench_portable [--reps N] [--elements N] [--tsv]
// Each repetition times every kernel once per path, the two paths in alternating order (interleaved); a time
// is the process CPU time (and the wall time) of enough calls to last about 30 ms, per unit of work. The table
// gives the medians over the repetitions and portable / AVX2 of the CPU-time medians.
// The paths are switched at run time: gemm::set_force_portable and attention::set_force_portable, and the
// *_avx2 / *_portable kernels of activations.h and norm.h and adamw_update_f32(simd) called directly.
// Where the AVX2 kernels are not in use (a -DGRADLAB_AVX2=OFF build, GRADLAB_NO_AVX2=1, a CPU without AVX2)
// only the portable path is timed; bench/portable_ratio.py compares two builds' binaries that way.
// --tsv prints one line per kernel and path instead: kernel, path, CPU ns per unit, wall ns per unit.
//
// Sizes: GEMM 512^3 (gemm_packed); the elementwise kernels (GELU, AdamW) on 65536 floats (--elements) and
// LayerNorm on 64 x 768: the arrays stay in L2, so compute is timed, not memory; attention B = 1, H = 6,
// T = 256, D = 64, causal.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nn/optim.h"
#include "tensor/activations.h"
#include "tensor/attention_kernel.h"
#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/gemm.h"
#include "tensor/norm.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {

constexpr std::uint64_t kSeed = 19;
constexpr std::int64_t kGemm = 512, kRows = 64, kCols = 768;
std::int64_t kElems = 1 << 16;  // --elements
constexpr std::int64_t kB = 1, kH = 6, kT = 256, kD = 64;

double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}
double wall_ns() {
  return double(std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count());
}

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const std::size_t n = x.size();
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

std::vector<float> normals(std::int64_t n, Rng& rng, double std = 1.0) {
  std::vector<float> x(static_cast<std::size_t>(n));
  for (float& v : x) v = static_cast<float>(rng.normal(0.0, std));
  return x;
}

// One kernel family: run(simd) does one call on the AVX2 path (simd) or the portable one.
struct Kernel {
  Kernel(std::string name_, std::string unit_, double units_, std::function<void(bool)> run_)
      : name(std::move(name_)), unit(std::move(unit_)), units(units_), run(std::move(run_)) {}
  std::string name, unit;
  double units;  // per call
  std::function<void(bool simd)> run;
  std::vector<double> cpu[2], wall[2];  // per repetition, ns per unit; [0] portable, [1] AVX2
  int calls = 1;                        // per timing, calibrated once
};

struct Data {
  Rng rng{kSeed};
  std::vector<float> ga = normals(kGemm * kGemm, rng), gb = normals(kGemm * kGemm, rng), gc = std::vector<float>(kGemm * kGemm);
  std::vector<float> x = normals(kElems, rng, 2.0), g = normals(kElems, rng), y = std::vector<float>(kElems);
  std::vector<float> nx = normals(kRows * kCols, rng, 1.5), nw = normals(kCols, rng), nb = normals(kCols, rng),
                     ng = normals(kRows * kCols, rng), nout = std::vector<float>(kRows * kCols),
                     ndx = std::vector<float>(kRows * kCols), nmean = std::vector<float>(kRows),
                     nrstd = std::vector<float>(kRows), ndw = std::vector<float>(kCols), ndb = std::vector<float>(kCols);
  std::vector<float> q = normals(kB * kH * kT * kD, rng, 1.5), k = normals(kB * kH * kT * kD, rng),
                     v = normals(kB * kH * kT * kD, rng), d_o = normals(kB * kH * kT * kD, rng),
                     o = std::vector<float>(kB * kH * kT * kD), lse = std::vector<float>(kB * kH * kT),
                     dq = std::vector<float>(kB * kH * kT * kD), dk = std::vector<float>(kB * kH * kT * kD),
                     dv = std::vector<float>(kB * kH * kT * kD);
  std::vector<float> p = normals(kElems, rng), m = std::vector<float>(kElems), v2 = std::vector<float>(kElems),
                     grad = normals(kElems, rng, 1e-2);
};

std::vector<Kernel> make_kernels(Data& d) {
  std::vector<Kernel> ks;
  ks.emplace_back("gemm 512^3 (gemm_packed)", "mul-add", double(kGemm) * kGemm * kGemm, [&d](bool simd) {
                  gemm::set_force_portable(!simd);
                  gemm::gemm_packed(false, false, kGemm, kGemm, kGemm, 1.0f, d.ga.data(), kGemm, d.gb.data(), kGemm,
                                    0.0f, d.gc.data(), kGemm);
                  gemm::set_force_portable(false);
                });
#ifdef GRADLAB_HAVE_AVX2_KERNELS
#define GRADLAB_BENCH_PICK(simd, name, ...) \
  ((simd) ? kernels::name##_avx2(__VA_ARGS__) : kernels::name##_portable(__VA_ARGS__))
#else
#define GRADLAB_BENCH_PICK(simd, name, ...) kernels::name##_portable(__VA_ARGS__)
#endif
  ks.emplace_back("gelu tanh forward", "element", double(kElems), [&d](bool simd) {
                  GRADLAB_BENCH_PICK(simd, gelu_forward, d.x.data(), d.y.data(), kElems);
                });
  ks.emplace_back("gelu tanh backward", "element", double(kElems), [&d](bool simd) {
                  GRADLAB_BENCH_PICK(simd, gelu_backward, d.x.data(), d.g.data(), d.y.data(), kElems);
                });
  ks.emplace_back("gelu exact forward", "element", double(kElems), [&d](bool simd) {
                  GRADLAB_BENCH_PICK(simd, gelu_exact_forward, d.x.data(), d.y.data(), kElems);
                });
  ks.emplace_back("gelu exact backward", "element", double(kElems), [&d](bool simd) {
                  GRADLAB_BENCH_PICK(simd, gelu_exact_backward, d.x.data(), d.g.data(), d.y.data(), kElems);
                });
  ks.emplace_back("layernorm fwd+bwd 64x768", "element", double(kRows * kCols), [&d](bool simd) {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
                  if (simd) {
                    kernels::norm_forward_avx2(d.nx.data(), d.nw.data(), d.nb.data(), d.nout.data(), d.nmean.data(),
                                               d.nrstd.data(), kRows, kCols, 1e-5f, false);
                    kernels::norm_backward_avx2(d.ng.data(), d.nx.data(), d.nw.data(), d.nmean.data(), d.nrstd.data(),
                                                d.ndx.data(), d.ndw.data(), d.ndb.data(), kRows, kCols, false);
                    return;
                  }
#endif
                  // the float32 rows that norm_forward/norm_backward run without AVX2
                  kernels::norm_forward_f32_portable(d.nx.data(), d.nw.data(), d.nb.data(), d.nout.data(),
                                                     d.nmean.data(), d.nrstd.data(), kRows, kCols, 1e-5f, false);
                  kernels::norm_backward_f32_portable(d.ng.data(), d.nx.data(), d.nw.data(), d.nmean.data(),
                                                      d.nrstd.data(), d.ndx.data(), d.ndw.data(), d.ndb.data(), kRows,
                                                      kCols, false);
                });
#undef GRADLAB_BENCH_PICK
  // one visible score (i, j <= i) of one head is the unit: B H T (T + 1) / 2 per call
  ks.emplace_back("attention fwd+bwd T=256 H=6 D=64", "score", double(kB * kH * kT * (kT + 1) / 2), [&d](bool simd) {
                  attention::set_force_portable(!simd);
                  const attention::Geometry geo{kB, kH, kT, kD};
                  attention::Bias bias;
                  bias.scale = float(1.0 / std::sqrt(double(kD)));
                  attention::flash_forward(geo, bias, d.q.data(), d.k.data(), d.v.data(), d.o.data(), d.lse.data());
                  attention::flash_backward(geo, bias, d.q.data(), d.k.data(), d.v.data(), d.o.data(), d.lse.data(),
                                            d.d_o.data(), d.dq.data(), d.dk.data(), d.dv.data());
                  attention::set_force_portable(false);
                });
  ks.emplace_back("adamw update", "element", double(kElems), [&d](bool simd) {
                  // lr 1e-4, betas 0.9 / 0.999, weight decay 0.1, at step 10
                  const AdamWConstants c{float(1.0 - 1e-4 * 0.1), 0.9f, 0.1f, 0.999f, 0.001f,
                                         float(1e-4 / (1.0 - std::pow(0.9, 10))),
                                         float(1.0 / std::sqrt(1.0 - std::pow(0.999, 10))), 1e-8f};
                  adamw_update_f32(d.p.data(), d.m.data(), d.v2.data(), d.grad.data(), kElems, c, simd);
                });
  return ks;
}

// CPU and wall ns per unit of `calls` calls.
void time_once(Kernel& k, bool simd) {
  const double c0 = cpu_ns(), w0 = wall_ns();
  for (int i = 0; i < k.calls; ++i) k.run(simd);
  const double c1 = cpu_ns(), w1 = wall_ns();
  const double units = k.units * k.calls;
  k.cpu[simd].push_back((c1 - c0) / units);
  k.wall[simd].push_back((w1 - w0) / units);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  bool tsv = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--elements") == 0 && i + 1 < argc) {
      kElems = std::atoll(argv[++i]);
      if (kElems < 1) {
        std::fprintf(stderr, "bench_portable: got --elements %s, expected at least 1\n", argv[i]);
        return 2;
      }
    } else if (std::strcmp(argv[i], "--tsv") == 0) {
      tsv = true;
    } else {
      std::fprintf(stderr, "usage: bench_portable [--reps N] [--elements N] [--tsv]\n");
      return 2;
    }
  }
  if (reps < 1) {
    std::fprintf(stderr, "bench_portable: got --reps %d, expected at least 1\n", reps);
    return 2;
  }
  set_num_threads(1);
  const bool simd = use_avx2();
  print_build_info(stdout);
  gemm::set_force_avx2(true);  // the yardstick is the AVX2 kernel, also where the AVX-512 GEMM would run
  gemm::set_force_portable(false);
  const std::string gemm_simd = gemm::micro_kernel_name();
  gemm::set_force_portable(true);
  const std::string gemm_portable = gemm::micro_kernel_name();
  gemm::set_force_portable(false);
  std::printf("bench_portable: seed %llu, 1 thread, %d interleaved repetitions (medians), %lld elements, paths: %s;"
              " gemm micro-kernel %s vs %s\n",
              static_cast<unsigned long long>(kSeed), reps, static_cast<long long>(kElems),
              simd ? "AVX2 and portable" : "portable only (no AVX2 in use)", gemm_simd.c_str(), gemm_portable.c_str());
  Data data;
  std::vector<Kernel> ks = make_kernels(data);
  // warm-up, and enough calls per timing for about 30 ms
  for (Kernel& k : ks) {
    k.run(false);
    if (simd) k.run(true);
    const double c0 = wall_ns();
    k.run(false);
    const double one = std::max(1.0, wall_ns() - c0);
    k.calls = std::max(1, int(30e6 / one));
  }
  for (int r = 0; r < reps; ++r)
    for (Kernel& k : ks) {
      const bool simd_first = simd && r % 2 == 0;
      if (simd_first) time_once(k, true);
      time_once(k, false);
      if (simd && !simd_first) time_once(k, true);
    }
  if (tsv) {
    for (Kernel& k : ks) {
      std::printf("%s\tportable\t%.4f\t%.4f\n", k.name.c_str(), median(k.cpu[0]), median(k.wall[0]));
      if (simd) std::printf("%s\tavx2\t%.4f\t%.4f\n", k.name.c_str(), median(k.cpu[1]), median(k.wall[1]));
    }
    return 0;
  }
  std::printf("\n%-34s %-8s %14s %14s %9s   %s\n", "kernel", "unit", "AVX2 ns/unit", "portable ns/unit",
              "ratio", "(CPU time; wall-time ratio)");
  for (Kernel& k : ks) {
    const double p = median(k.cpu[0]);
    if (!simd) {
      std::printf("%-34s %-8s %14s %14.4f %9s\n", k.name.c_str(), k.unit.c_str(), "-", p, "-");
      continue;
    }
    const double a = median(k.cpu[1]);
    std::printf("%-34s %-8s %14.4f %14.4f %9.2f   (%.2f)\n", k.name.c_str(), k.unit.c_str(), a, p, p / a,
                median(k.wall[0]) / median(k.wall[1]));
  }
  return 0;
}
