// The GEMM ladder timed side by side with OpenBLAS (when found at configure time), on the shapes of issue 3.
//
// Names: gemm/<rung>/<form>/<M>x<K>x<N>/threads:<t>  and  openblas/<form>/<M>x<K>x<N>/threads:<t>
//   rung: naive, reordered, blocked, packed, parallel, sgemm (tensor/gemm.h); form: NN, NT (x*W^T), TN (dy^T*x).
//   Where the AVX-512 GEMM kernel runs (gemm/sgemm uses it), gemm/sgemm_avx2/... times the same shapes with
//   the AVX2 kernel forced (gemm::set_force_avx2), so one run compares the two on one machine:
//     bench_gemm --benchmark_filter='^gemm/sgemm(_avx2)?/' --benchmark_enable_random_interleaving=true ...
//   and bench/gemm_kernel_ratio.py on its JSON for the ratios.
//   (GRADLAB_NO_AVX512=1 runs everything on the AVX2 kernel and registers no sgemm_avx2 family.)
// Counter "GFLOP/s" = 2*M*N*K per call over wall-clock time (UseRealTime: the threads' work counts).
//
// Protocol used for docs/performance.md:
//   OPENBLAS_THREAD_TIMEOUT=... bench/bench_gemm --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true
//       --benchmark_report_aggregates_only=true --benchmark_filter='sgemm|openblas' ...
// and compare the medians. Before a benchmark is timed, its output is checked against a float64 dot product
// on a sample of elements; a wrong result aborts the program (a fast wrong answer is not a result).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "tensor/cpu.h"
#include "tensor/gemm.h"
#include "tensor/rng.h"
#ifdef GRADLAB_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

using namespace gradlab;

struct Shape {
  bool trans_a, trans_b;
  int64_t M, K, N;
};

const char* form_name(const Shape& s) {
  static const char* names[4] = {"NN", "TN", "NT", "TT"};
  return names[int(s.trans_a) + 2 * int(s.trans_b)];
}

std::string shape_name(const Shape& s) {
  return std::string(form_name(s)) + "/" + std::to_string(s.M) + "x" + std::to_string(s.K) + "x" +
         std::to_string(s.N);
}

// Densely stored operands for one shape: A is (M,K) or (K,M), B is (K,N) or (N,K), C is (M,N).
struct Operands {
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C;
  explicit Operands(const Shape& s) {
    lda = s.trans_a ? s.M : s.K;
    ldb = s.trans_b ? s.K : s.N;
    ldc = s.N;
    Rng rng(uint64_t(s.M * 1000003 + s.K * 1009 + s.N));
    A.resize(size_t(s.M * s.K));
    B.resize(size_t(s.K * s.N));
    C.assign(size_t(s.M * s.N), 0.0f);
    for (float& x : A) x = float(rng.uniform(-1.0, 1.0));
    for (float& x : B) x = float(rng.uniform(-1.0, 1.0));
  }
};

// C = op(A) op(B) (alpha 1, beta 0) checked on ~300 elements (corners, edges, random) against a float64 dot
// product, with the rigorous float summation bound 2 (K+4) u sum|a b| (see tests/tensor/test_gemm.cpp).
void validate_or_abort(const std::string& name, const Shape& s, const Operands& o) {
  Rng rng(7);
  std::vector<std::pair<int64_t, int64_t>> points = {
      {0, 0}, {0, s.N - 1}, {s.M - 1, 0}, {s.M - 1, s.N - 1}, {s.M / 2, s.N / 2}};
  for (int n = 0; n < 300; ++n) points.push_back({int64_t(rng.below(uint32_t(s.M))), int64_t(rng.below(uint32_t(s.N)))});
  const double tol = 2.0 * double(s.K + 4) * std::ldexp(1.0, -24);
  for (auto [i, j] : points) {
    double ref = 0, scale = 0;
    for (int64_t k = 0; k < s.K; ++k) {
      const double a = s.trans_a ? o.A[k * o.lda + i] : o.A[i * o.lda + k];
      const double b = s.trans_b ? o.B[j * o.ldb + k] : o.B[k * o.ldb + j];
      ref += a * b;
      scale += std::fabs(a * b);
    }
    const double got = o.C[i * o.ldc + j];
    if (!(std::fabs(got - ref) <= tol * scale)) {
      std::fprintf(stderr, "bench_gemm: %s gives C[%lld,%lld] = %.9g, expected %.9g (tolerance %.3g): aborting\n",
                   name.c_str(), (long long)i, (long long)j, got, ref, tol * scale);
      std::abort();
    }
  }
}

void set_counters(benchmark::State& state, const Shape& s) {
  const double flops = 2.0 * double(s.M) * double(s.N) * double(s.K) * double(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
}

// force_avx2: the AVX2 micro-kernel even where the AVX-512 one would run (family "<rung>_avx2").
void register_gemm(const gemm::RungInfo& rung, const Shape& s, int threads, bool force_avx2 = false) {
  const std::string name = std::string("gemm/") + rung.name + (force_avx2 ? "_avx2/" : "/") + shape_name(s) +
                           "/threads:" + std::to_string(threads);
  benchmark::RegisterBenchmark(name.c_str(), [rung, s, threads, name, force_avx2](benchmark::State& state) {
    set_num_threads(threads);
    gemm::set_force_avx2(force_avx2);  // every benchmark sets it: random interleaving mixes the families
    Operands o(s);
    auto call = [&] {
      rung.fn(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, o.A.data(), o.lda, o.B.data(), o.ldb, 0.0f, o.C.data(),
              o.ldc);
    };
    static std::set<std::string> validated;
    if (validated.insert(name).second) {
      call();
      validate_or_abort(name, s, o);
    }
    for (auto _ : state) {
      call();
      benchmark::DoNotOptimize(o.C.data());
      benchmark::ClobberMemory();
    }
    set_counters(state, s);
  })->UseRealTime()->Unit(benchmark::kMicrosecond);
}

#ifdef GRADLAB_HAVE_OPENBLAS
void register_openblas(const Shape& s, int threads) {
  const std::string name = "openblas/" + shape_name(s) + "/threads:" + std::to_string(threads);
  benchmark::RegisterBenchmark(name.c_str(), [s, threads, name](benchmark::State& state) {
    openblas_set_num_threads(threads);
    Operands o(s);
    auto call = [&] {
      cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans,
                  int(s.M), int(s.N), int(s.K), 1.0f, o.A.data(), int(o.lda), o.B.data(), int(o.ldb), 0.0f,
                  o.C.data(), int(o.ldc));
    };
    static std::set<std::string> validated;
    if (validated.insert(name).second) {
      call();
      validate_or_abort(name, s, o);
    }
    for (auto _ : state) {
      call();
      benchmark::DoNotOptimize(o.C.data());
      benchmark::ClobberMemory();
    }
    set_counters(state, s);
  })->UseRealTime()->Unit(benchmark::kMicrosecond);
}
#endif

// Thread counts of the transformer-shape table: GRADLAB_GEMM_THREADS="1,16" (the 16-core machine of issue 21),
// default 1 and 2. A bad list stops the program with exit code 2.
std::vector<int> gemm_thread_counts() {
  const char* env = std::getenv("GRADLAB_GEMM_THREADS");
  if (!env || !*env) return {1, 2};
  std::vector<int> out;
  const std::string list = env;
  size_t pos = 0;
  while (pos <= list.size()) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    const std::string item = list.substr(pos, comma - pos);
    char* end = nullptr;
    const long n = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || n < 1 || n > 1024) {
      std::fprintf(stderr, "bench_gemm: GRADLAB_GEMM_THREADS='%s': item '%s' is not a thread count 1..1024\n", env,
                   item.c_str());
      std::exit(2);
    }
    out.push_back(int(n));
    pos = comma + 1;
  }
  return out;
}

void register_all() {
  std::vector<Shape> shapes;
  // Squares (NN).
  for (int64_t n : {64, 128, 256, 512, 1024, 2048}) shapes.push_back({false, false, n, n, n});
  // The two benchmark GPTs: forward (NT: x*W^T) and input gradient (NN: dy*W), (M,K,N).
  const int64_t fwd[][3] = {{768, 128, 384},   {768, 128, 128},   {768, 128, 512},   {768, 512, 128},
                            {2048, 384, 1152}, {2048, 384, 384}, {2048, 384, 1536}, {2048, 1536, 384}};
  for (const auto& m : fwd) shapes.push_back({false, false, m[0], m[1], m[2]});
  for (const auto& m : fwd) shapes.push_back({false, true, m[0], m[1], m[2]});
  // Weight gradients (TN: dW = dy^T*x), K = B*T tokens.
  const int64_t wgrad[][3] = {{384, 768, 128},   {128, 768, 128},   {512, 768, 128},   {128, 768, 512},
                              {1152, 2048, 384}, {384, 2048, 384}, {1536, 2048, 384}, {384, 2048, 1536}};
  for (const auto& m : wgrad) shapes.push_back({true, false, m[0], m[1], m[2]});

  const gemm::RungInfo& fast = gemm::rung_info(gemm::Rung::Sgemm);
  for (int threads : gemm_thread_counts()) {
    for (const Shape& s : shapes) {
      register_gemm(fast, s, threads);
      if (use_avx512()) register_gemm(fast, s, threads, true);
#ifdef GRADLAB_HAVE_OPENBLAS
      register_openblas(s, threads);
#endif
    }
  }
  // The ladder, on squares small enough for the slow rungs (a lesson's table).
  for (int64_t n : {64, 128, 256, 512}) {
    const Shape s{false, false, n, n, n};
    for (gemm::Rung r : {gemm::Rung::Naive, gemm::Rung::Reordered, gemm::Rung::Blocked, gemm::Rung::Packed})
      register_gemm(gemm::rung_info(r), s, 1);
    register_gemm(gemm::rung_info(gemm::Rung::PackedOpenMP), s, 2);
    register_gemm(gemm::rung_info(gemm::Rung::PackedParallel), s, 2);
  }
  // OpenMP team against the worker pool on the shape a training step repeats most (the tiny GPT's c_attn).
  for (gemm::Rung r : {gemm::Rung::PackedOpenMP, gemm::Rung::PackedParallel})
    register_gemm(gemm::rung_info(r), Shape{false, false, 768, 128, 384}, 2);
  // Attention scores, one (T,d)x(d,T) product per head: see bench names gemm/batched/...
  for (int threads : {1, 2}) {
    const std::string name = "gemm/batched/NT/48x64x32x64/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(name.c_str(), [threads](benchmark::State& state) {
      set_num_threads(threads);
      gemm::set_force_avx2(false);
      const int64_t batch = 48, T = 64, d = 32;
      Rng rng(3);
      std::vector<float> q(size_t(batch * T * d)), k(size_t(batch * T * d)), att(size_t(batch * T * T));
      for (float& x : q) x = float(rng.uniform(-1.0, 1.0));
      for (float& x : k) x = float(rng.uniform(-1.0, 1.0));
      for (auto _ : state) {
        gemm::sgemm_batched(batch, false, true, T, T, d, 1.0f, q.data(), d, T * d, k.data(), d, T * d, 0.0f,
                            att.data(), T, T * T);
        benchmark::ClobberMemory();
      }
      const double flops = 2.0 * batch * T * T * d * double(state.iterations());
      state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
    })->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  print_build_info(stderr);
  benchmark::AddCustomContext("gradlab", build_info());
  benchmark::AddCustomContext("gradlab_micro_kernel", gemm::micro_kernel_name());
#ifdef GRADLAB_HAVE_OPENBLAS
  benchmark::AddCustomContext("openblas", openblas_get_config());
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
#endif
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
