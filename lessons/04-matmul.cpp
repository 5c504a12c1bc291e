// Lesson 04: the matmul ladder. naive -> reordered -> blocked -> packed (AVX2 micro-kernel) -> threads.
// Every rung is first validated against a float64 reference, then timed; the GFLOP/s table and a bar chart
// show what each idea buys.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "tensor/cpu.h"
#include "tensor/gemm.h"
#include "tensor/rng.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

// Best of `reps` runs (seconds), at least `min_time` seconds in total.
double time_gemm(gemm::GemmFn fn, std::int64_t n, const float* A, const float* B, float* C, int reps, double min_time) {
  double best = 1e30, total = 0;
  for (int r = 0; r < reps || total < min_time; ++r) {
    const double t0 = lesson::now_seconds();
    fn(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    const double dt = lesson::now_seconds() - t0;
    best = std::min(best, dt);
    total += dt;
    if (r > 50) break;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{4, "matmul", "The matmul ladder: from three loops to packed AVX2 and threads", 4};
  auto declare = [](cli::ArgParser& a) {
    a.add_int("n", 512, 16, 4096, "square matrix size for the timings (default 512; --quick: 128)").no_default();
  };
  return lesson::run(argc, argv, info, declare, [](Lesson& L) {
    const std::int64_t n = L.args().given("n") ? L.args().get_int64("n") : (L.quick() ? 128 : 512);
    L.step("What we multiply");
    L.sayf("C = A B with A, B random %lld x %lld float32 matrices: 2 n^3 = %.2f GFLOP per product.", (long long)n,
           (long long)n, 2.0 * n * n * n / 1e9);
    L.say(build_info());
    L.sayf("Micro-kernel on this machine: %s.", gemm::micro_kernel_name());
    Rng rng(L.seed());
    std::vector<float> A(n * n), B(n * n), C(n * n);
    for (float& x : A) x = static_cast<float>(rng.normal());
    for (float& x : B) x = static_cast<float>(rng.normal());
    // float64 reference
    std::vector<double> Ad(A.begin(), A.end()), Bd(B.begin(), B.end()), Cd(n * n);
    gemm::dgemm_naive(false, false, n, n, n, 1.0, Ad.data(), n, Bd.data(), n, 0.0, Cd.data(), n);

    L.step("The rungs");
    for (int r = 0; r < gemm::kNumRungs; ++r) L.sayf("  %-16s %s", gemm::rungs()[r].name, gemm::rungs()[r].description);
    L.say("Why each helps: the naive i-j-k loop walks B down a column (a new cache line per number); i-k-j walks");
    L.say("rows; blocking keeps tiles in cache while they are reused; packing copies tiles into the exact order the");
    L.say("micro-kernel reads them and keeps a 6x16 block of C in registers (12 AVX registers, FMA); threads split C.");

    L.step("Validate, then time");
    L.say("A rung is only timed after it computed the right answer: max |C - C_ref| / max |C_ref| must be < 1e-5.");
    L.sayf("  %-16s %12s %12s %10s %9s", "rung", "rel. error", "time (ms)", "GFLOP/s", "speed-up");
    std::string csv = "rung,n,rel_error,seconds,gflops\n";
    std::vector<double> gflops;
    double base = 0;
    double ref_max = 0;
    for (double v : Cd) ref_max = std::max(ref_max, std::fabs(v));
    const double flop = 2.0 * n * n * n;
    for (int r = 0; r < gemm::kNumRungs; ++r) {
      const gemm::RungInfo& info = gemm::rungs()[r];
      std::fill(C.begin(), C.end(), NAN);  // beta = 0 must ignore old contents
      info.fn(false, false, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
      double err = 0;
      for (std::int64_t i = 0; i < n * n; ++i) err = std::max(err, std::fabs(C[i] - Cd[i]));
      err /= ref_max;
      L.check(err < 1e-5, std::string(info.name) + " computes A B", fmt("relative error %.1e", err));
      const bool slow = info.rung == gemm::Rung::Naive || info.rung == gemm::Rung::Reordered;
      const double t = time_gemm(info.fn, n, A.data(), B.data(), C.data(), slow ? 1 : 3, L.quick() ? 0.0 : 0.2);
      gflops.push_back(flop / t / 1e9);
      if (r == 0) base = t;
      L.sayf("  %-16s %12.1e %12.2f %10.2f %8.1fx", info.name, err, t * 1e3, gflops.back(), base / t);
      csv += fmt("%s,%lld,%.3e,%.6f,%.3f\n", info.name, (long long)n, err, t, gflops.back());
    }
    L.save_text("gemm_ladder.csv", csv);
    lesson::BarChart bc;
    bc.title = fmt("The matmul ladder, %lld x %lld float32, %d thread(s) max", (long long)n, (long long)n, max_threads());
    bc.y_label = "GFLOP/s (higher is better)";
    bc.series = {"GFLOP/s"};
    for (int r = 0; r < gemm::kNumRungs; ++r) {
      bc.groups.push_back(gemm::rungs()[r].name);
      bc.values.push_back({gflops[r]});
    }
    L.wrote(lesson::save_bar_chart(bc, L.stem("gemm_ladder")));
    L.say("Timings are measured on this machine now; other programs running at the same time slow them down.");
    L.say("Small n (--quick) favours the simple rungs: packing has a fixed cost that large matrices amortise.");
  });
}
