// Every rung of the GEMM ladder (tensor/gemm.h) against a float64 reference, on the shapes that break
// kernels: 1x1, primes, non-multiples of the 6x16 tile and of the cache blocks, zero sizes, all four
// transpose forms, sub-matrix views (row strides wider than the matrix), alpha/beta. Plus the promises the
// engine relies on: bit-identical results for 1 and 2 threads, batched == one sgemm per matrix.
//
// Tolerance. For a dot product of K terms, recursive summation in float satisfies
//   |fl(sum) - sum| <= gamma_K * sum_k |a_k b_k|,  gamma_K = K*u/(1-K*u),  u = 2^-24
// (Higham, Accuracy and Stability of Numerical Algorithms, 3.1), whatever the order of summation, and FMA
// only removes roundings. alpha, beta and the accumulation of K blocks onto C add a few roundings more. So we
// check, per element, |C - C_ref| <= tol * (|alpha| * sum_k |a_ik b_kj| + |beta * C0_ij|) with
// tol = 2 (K + 4) u: the worst-case bound with a factor 2 margin, not a tuned fudge. A kernel that drops or
// repeats one term of K is off by about |a_k b_k| ~ 1/K of that scale, far above tol for the K used here.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/gemm.h"
#include "tensor/rng.h"
#include "tensor/threads.h"
#include "simd_check.h"

using namespace gradlab;
using namespace gradlab::gemm;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kSentinel = 1234.5f;  // in the padding columns of C: must survive untouched

struct Case {
  bool trans_a = false, trans_b = false;
  int64_t M = 1, N = 1, K = 1;
  float alpha = 1.0f, beta = 0.0f;
  int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // extra row stride beyond the stored width (sub-matrix views)
};

std::string describe(const Case& c) {
  return std::string(c.trans_a ? "T" : "N") + (c.trans_b ? "T" : "N") + " M=" + std::to_string(c.M) +
         " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + " pads=" + std::to_string(c.pad_a) + "," + std::to_string(c.pad_b) +
         "," + std::to_string(c.pad_c);
}

// Operands of one case, with NaN in the padding of A and B (a kernel that reads past the width poisons its
// result) and a sentinel in the padding of C (a kernel that writes past the width is caught).
struct Operands {
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C0;
};

Operands make_operands(const Case& c, uint64_t seed) {
  Rng rng(seed);
  Operands o;
  const int64_t a_rows = c.trans_a ? c.K : c.M, a_cols = c.trans_a ? c.M : c.K;
  const int64_t b_rows = c.trans_b ? c.N : c.K, b_cols = c.trans_b ? c.K : c.N;
  o.lda = std::max<int64_t>(1, a_cols) + c.pad_a;
  o.ldb = std::max<int64_t>(1, b_cols) + c.pad_b;
  o.ldc = std::max<int64_t>(1, c.N) + c.pad_c;
  o.A.assign(size_t(std::max<int64_t>(1, a_rows * o.lda)), kNaN);
  o.B.assign(size_t(std::max<int64_t>(1, b_rows * o.ldb)), kNaN);
  o.C0.assign(size_t(std::max<int64_t>(1, c.M * o.ldc)), kSentinel);
  for (int64_t i = 0; i < a_rows; ++i)
    for (int64_t j = 0; j < a_cols; ++j) o.A[i * o.lda + j] = float(rng.uniform(-1.0, 1.0));
  for (int64_t i = 0; i < b_rows; ++i)
    for (int64_t j = 0; j < b_cols; ++j) o.B[i * o.ldb + j] = float(rng.uniform(-1.0, 1.0));
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j)
      o.C0[i * o.ldc + j] = c.beta == 0.0f ? kNaN : float(rng.uniform(-1.0, 1.0));  // beta 0 must ignore NaN
  return o;
}

// Runs fn on the case and checks it against dgemm_naive element by element. Returns the failures.
int check_against_reference(GemmFn fn, const char* name, const Case& c, uint64_t seed) {
  const Operands o = make_operands(c, seed);
  std::vector<float> C = o.C0;
  fn(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta, C.data(), o.ldc);

  // Reference and error scale in double: C_ref = alpha A B + beta C0, scale = |alpha| |A| |B| + |beta C0|.
  auto to_double = [](const std::vector<float>& v, bool absolute) {
    std::vector<double> d(v.size());
    for (size_t i = 0; i < v.size(); ++i) d[i] = absolute ? std::fabs(double(v[i])) : double(v[i]);
    return d;
  };
  const std::vector<double> A = to_double(o.A, false), B = to_double(o.B, false);
  const std::vector<double> absA = to_double(o.A, true), absB = to_double(o.B, true);
  std::vector<double> ref = to_double(o.C0, false), scale = to_double(o.C0, true);
  dgemm_naive(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, A.data(), o.lda, B.data(), o.ldb, c.beta, ref.data(),
              o.ldc);
  dgemm_naive(c.trans_a, c.trans_b, c.M, c.N, c.K, std::fabs(c.alpha), absA.data(), o.lda, absB.data(), o.ldb,
              std::fabs(c.beta), scale.data(), o.ldc);

  const double tol = 2.0 * double(c.K + 4) * std::ldexp(1.0, -24);
  int failures = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < o.ldc; ++j) {
      const float got = C[i * o.ldc + j];
      bool ok;
      if (j >= c.N)
        ok = got == kSentinel;
      else
        ok = std::isfinite(got) && std::fabs(double(got) - ref[i * o.ldc + j]) <= tol * scale[i * o.ldc + j];
      if (!ok && ++failures <= 3)
        MESSAGE(std::string(name), " ", describe(c), ": C[", i, ",", j, "] = ", got, ", expected ",
                j >= c.N ? double(kSentinel) : ref[i * o.ldc + j]);
    }
  }
  return failures;
}

std::vector<Case> awkward_cases() {
  // (M, N, K): 1x1, primes, non-multiples of the 6x16 tile (bottom edges of 1..5 rows), K across a kKC block
  // boundary, M across kMC.
  const int64_t shapes[][3] = {{1, 1, 1},   {1, 17, 3},  {5, 1, 7},    {6, 16, 4},  {7, 17, 13},  {8, 32, 5},
                               {13, 31, 2}, {12, 32, 9}, {29, 37, 41}, {3, 5, 263}, {151, 19, 11}, {10, 47, 6}};
  const float alpha_beta[][2] = {{1.0f, 0.0f}, {-0.5f, 0.0f}, {1.0f, 1.0f}, {1.5f, -0.75f}};
  std::vector<Case> cases;
  int variant = 0;
  for (const auto& s : shapes) {
    for (int form = 0; form < 4; ++form) {
      Case c;
      c.M = s[0], c.N = s[1], c.K = s[2];
      c.trans_a = form & 1, c.trans_b = form & 2;
      c.alpha = alpha_beta[variant % 4][0], c.beta = alpha_beta[variant % 4][1];
      c.pad_a = variant % 3, c.pad_b = (variant + 1) % 3 * 2, c.pad_c = (variant + 2) % 3;
      ++variant;
      cases.push_back(c);
    }
  }
  return cases;
}

// Same problem, two ways, compared bit for bit.
bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

std::vector<float> run(GemmFn fn, const Case& c, const Operands& o) {
  std::vector<float> C = o.C0;
  fn(c.trans_a, c.trans_b, c.M, c.N, c.K, c.alpha, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta, C.data(), o.ldc);
  return C;
}

// Restores the thread count a test changed.
struct ThreadCountGuard {
  int saved = max_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

// Puts the default kernel choice back (the AVX-512 kernel where it runs) when a test ends, even on a throw.
struct ForceAvx2Guard {
  ~ForceAvx2Guard() { set_force_avx2(false); }
};

// The AVX-512 kernel is compared only where it runs; says so where it does not.
bool avx512_in_use() {
  if (!use_avx512()) MESSAGE("SKIPPED: the AVX-512 GEMM kernel is not in use here (" << build_info() << ")");
  return use_avx512();
}

// Every edge of the 6x32 tile, on the direct (unpacked) path: M = 1..7 and 11..13 (1..5 rows left over), N around
// 16, 32 and 48 (a lone panel, a pair, a pair whose second panel is ragged, an odd panel after pairs), K = 1 and
// small ones, every form, alpha/beta, views.
std::vector<Case> avx512_edge_cases() {
  const int64_t Ms[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13};
  const int64_t Ns[] = {1, 5, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100};
  const int64_t Ks[] = {1, 2, 7, 33, 64};
  const float alpha_beta[][2] = {{1.0f, 0.0f}, {-0.5f, 0.0f}, {1.0f, 1.0f}, {1.5f, -0.75f}, {0.25f, 2.0f}};
  std::vector<Case> cases;
  int variant = 0;
  for (int64_t M : Ms)
    for (int64_t N : Ns)
      for (int form = 0; form < 4; ++form) {
        Case c;
        c.M = M, c.N = N, c.K = Ks[variant % 5], c.trans_a = form & 1, c.trans_b = form & 2;
        c.alpha = alpha_beta[variant % 5][0], c.beta = alpha_beta[(variant / 5) % 5][1];
        c.pad_a = variant % 3, c.pad_b = (variant + 1) % 3 * 2, c.pad_c = (variant + 2) % 3;
        ++variant;
        cases.push_back(c);
      }
  return cases;
}

// Shapes on the packed path (M*K + K*N above the direct limit): several K blocks with a ragged last one, M across
// kMC, odd panel counts, and few rows with many columns (units cut in columns at 2 and 3 threads).
std::vector<Case> avx512_packed_cases() {
  const int64_t shapes[][3] = {{37, 53, 2 * kKC + 9}, {157, 83, 533}, {13, 97, 300}, {5, 1000, 40},
                               {150, 48, 257},         {64, 130, 256}, {7, 400, 123}};
  const float alpha_beta[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-1.25f, 0.5f}, {2.0f, 0.0f}};
  std::vector<Case> cases;
  int variant = 0;
  for (const auto& s : shapes)
    for (int form = 0; form < 4; ++form) {
      Case c;
      c.M = s[0], c.N = s[1], c.K = s[2], c.trans_a = form & 1, c.trans_b = form & 2;
      c.alpha = alpha_beta[variant % 4][0], c.beta = alpha_beta[variant % 4][1];
      c.pad_a = variant % 2, c.pad_b = variant % 3, c.pad_c = (variant + 1) % 3;
      ++variant;
      cases.push_back(c);
    }
  return cases;
}

}  // namespace

TEST_SUITE("kernels") {

TEST_CASE("gemm: every rung matches the float64 reference on awkward shapes / all forms / alpha/beta / views") {
  for (int r = 0; r < kNumRungs; ++r) {
    const RungInfo& rung = rungs()[r];
    int failures = 0;
    uint64_t seed = 100;
    for (const Case& c : awkward_cases()) failures += check_against_reference(rung.fn, rung.name, c, seed++);
    CHECK_MESSAGE(failures == 0, std::string(rung.name));
  }
}

// One test per hand-written rung as well, so that the course kit grades exercise 04.1 (reordered) and 04.2
// (blocked) each on its own: a stub in one rung must not fail the other's test.
void check_one_rung(Rung which) {
  const RungInfo& rung = rung_info(which);
  int failures = 0;
  uint64_t seed = 100;
  for (const Case& c : awkward_cases()) failures += check_against_reference(rung.fn, rung.name, c, seed++);
  CHECK_MESSAGE(failures == 0, "rung ", std::string(rung.name), " gave ", failures,
                " wrong elements over the awkward shapes (the first ones are listed above)");
}

TEST_CASE("gemm: rung reordered alone matches the float64 reference on awkward shapes") { check_one_rung(Rung::Reordered); }

TEST_CASE("gemm: rung blocked alone matches the float64 reference on awkward shapes") { check_one_rung(Rung::Blocked); }

TEST_CASE("gemm: the portable micro-kernel matches the reference too") {
  set_force_portable(true);
  CHECK(std::string(micro_kernel_name()) == "portable 6x16");
  int failures = 0;
  uint64_t seed = 300;
  for (const Case& c : awkward_cases()) failures += check_against_reference(gemm_packed, "portable", c, seed++);
  Case big;
  big.M = 70, big.N = 45, big.K = 300, big.trans_b = true, big.beta = 0.5f;
  failures += check_against_reference(gemm_packed_parallel, "portable", big, 7);
  set_force_portable(false);
  CHECK(failures == 0);
}

TEST_CASE("gemm: the SIMD micro-kernel and packing (AVX2 or NEON) match the reference on awkward shapes / all forms") {
  if (!simd_in_use()) return;
  set_force_portable(false);
  const std::string name = micro_kernel_name();
  CHECK(name != "portable 6x16");
  int failures = 0;
  uint64_t seed = 500;
  for (const Case& c : awkward_cases()) failures += check_against_reference(gemm_packed, name.c_str(), c, seed++);
  // every transpose form on a shape with full 6x16 tiles, ragged edges and several K blocks: all packing routines
  for (int form = 0; form < 4; ++form) {
    Case c;
    c.M = 37, c.N = 53, c.K = 2 * kKC + 9, c.trans_a = form & 1, c.trans_b = form & 2, c.beta = 0.25f;
    failures += check_against_reference(gemm_packed_parallel, name.c_str(), c, seed++);
  }
  CHECK(failures == 0);
  report_simd_validated(("GEMM micro-kernel and packing (" + name + ")").c_str());
}

// The AVX-512 kernel against the float64 reference (the tolerance 2 (K + 4) u of the file's header) and, bit for
// bit, against the AVX2 kernel on the same inputs: it must change no result of the engine.
TEST_CASE("gemm: the AVX-512 micro-kernel matches the reference and the AVX2 kernel bit for bit") {
  if (!avx512_in_use()) return;
  ForceAvx2Guard restore;
  ThreadCountGuard guard;
  set_force_avx2(false);
  CHECK(std::string(micro_kernel_name()) == "avx512 6x32");
  set_force_avx2(true);
  CHECK(std::string(micro_kernel_name()) == "avx2-fma 6x16");
  set_force_avx2(false);

  int failures = 0, differ = 0, compared = 0;
  uint64_t seed = 900;
  std::vector<Case> cases = avx512_edge_cases();
  for (const Case& c : avx512_packed_cases()) cases.push_back(c);
  for (const Case& c : cases) {
    CAPTURE(describe(c));
    set_num_threads(1);
    failures += check_against_reference(gemm_packed, "avx512", c, seed);
    const Operands o = make_operands(c, seed++);
    const std::vector<float> wide = run(gemm_packed, c, o);
    set_force_avx2(true);
    const std::vector<float> avx2 = run(gemm_packed, c, o);
    set_force_avx2(false);
    if (!same_bits(wide, avx2) && ++differ <= 3) MESSAGE("AVX-512 and AVX2 kernels differ on ", describe(c));
    ++compared;
  }
  // Threads cut the packed cases' units in rows and columns (pairs of panels or single ones): still the same bits.
  for (const Case& c : avx512_packed_cases()) {
    CAPTURE(describe(c));
    const Operands o = make_operands(c, 77);
    set_num_threads(1);
    set_force_avx2(true);
    const std::vector<float> avx2 = run(gemm_packed, c, o);
    set_force_avx2(false);
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      const bool same = same_bits(run(gemm_packed_parallel, c, o), avx2) && same_bits(run(sgemm, c, o), avx2);
      if (!same && ++differ <= 3) MESSAGE("AVX-512 at ", threads, " threads differs from AVX2 on ", describe(c));
      ++compared;
    }
  }
  CHECK(failures == 0);
  CHECK(differ == 0);
  MESSAGE("AVX-512 GEMM kernel: ", cases.size(), " shapes against float64 (", failures, " wrong elements), ", compared,
          " runs compared bit for bit with the AVX2 kernel (", differ, " differ)");
}

TEST_CASE("gemm: packed rungs on shapes that cross every cache block (MC / KC / NC)") {
  // M > kMC, K > 2*kKC, and a thin problem whose packed B (K x N) exceeds kPackedBFloats: two column blocks.
  std::vector<Case> cases;
  for (int form = 0; form < 4; ++form) {
    Case c;
    c.M = 157, c.N = 83, c.K = 533, c.trans_a = form & 1, c.trans_b = form & 2, c.beta = 0.25f, c.pad_c = 5;
    cases.push_back(c);
  }
  Case wide;
  wide.M = 7, wide.K = 2100, wide.N = kPackedBFloats / 2100 + 37, wide.alpha = 2.0f, wide.beta = 1.0f;
  cases.push_back(wide);
  wide.trans_b = true;
  cases.push_back(wide);
  for (GemmFn fn : {gemm_packed, gemm_packed_openmp, gemm_packed_parallel, sgemm}) {
    int failures = 0;
    uint64_t seed = 500;
    for (const Case& c : cases) failures += check_against_reference(fn, "packed", c, seed++);
    CHECK(failures == 0);
  }
}

TEST_CASE("gemm: zero sizes / K = 0 and alpha = 0 leave beta * C and do not read A or B") {
  for (int r = 0; r < kNumRungs; ++r) {
    GemmFn fn = rungs()[r].fn;
    CAPTURE(rungs()[r].name);
    // M = 0 or N = 0: nothing happens, null pointers are fine.
    float untouched = 7.0f;
    fn(false, false, 0, 5, 3, 1.0f, nullptr, 3, nullptr, 5, 0.0f, nullptr, 5);
    fn(false, false, 4, 0, 3, 1.0f, nullptr, 3, nullptr, 1, 0.0f, &untouched, 1);
    CHECK(untouched == 7.0f);
    // K = 0: C = beta * C; with beta = 0 even NaN becomes 0.
    std::vector<float> C = {1.0f, -2.0f, 3.0f, kSentinel, 4.0f, 5.0f, -6.0f, kSentinel};  // (2,3), ldc 4
    fn(false, true, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 1, 0.5f, C.data(), 4);
    CHECK(C == std::vector<float>{0.5f, -1.0f, 1.5f, kSentinel, 2.0f, 2.5f, -3.0f, kSentinel});
    std::vector<float> D = {kNaN, 1.0f, kNaN, 2.0f};
    fn(true, false, 2, 2, 0, 1.0f, nullptr, 2, nullptr, 2, 0.0f, D.data(), 2);
    CHECK(D == std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f});
    // alpha = 0: A and B are not read (NaN there must not leak), C = beta * C.
    std::vector<float> A(6, kNaN), B(6, kNaN), E = {1.0f, 2.0f, 3.0f, 4.0f};
    fn(false, false, 2, 2, 3, 0.0f, A.data(), 3, B.data(), 2, 2.0f, E.data(), 2);
    CHECK(E == std::vector<float>{2.0f, 4.0f, 6.0f, 8.0f});
  }
}

TEST_CASE("gemm: 1 / 2 and 3 threads / packed, openmp and parallel / give bit-identical results") {
  if (!built_with_openmp()) MESSAGE("built without OpenMP: the openmp rung runs on 1 thread, the pool on 2 and 3");
  ThreadCountGuard guard;
  // Tall (units of rows), few rows (units cut in columns too), an edge-heavy prime shape, and a packed B too big for
  // one column block, all forms.
  const int64_t shapes[][3] = {{257, 131, 300}, {5, 700, 40}, {13, 333, 71}, {97, 89, 83}, {7, kPackedBFloats / 2100 + 37, 2100}};
  for (const auto& s : shapes) {
    for (int form = 0; form < 4; ++form) {
      if (s[2] == 2100 && (form & 1)) continue;  // the big one only as NN and NT, to keep the test quick
      Case c;
      c.M = s[0], c.N = s[1], c.K = s[2], c.trans_a = form & 1, c.trans_b = form & 2, c.beta = 0.5f;
      c.pad_a = 1, c.pad_c = 2;
      CAPTURE(describe(c));
      const Operands o = make_operands(c, 42);
      set_num_threads(1);
      const std::vector<float> one_thread = run(gemm_packed_parallel, c, o);
      const std::vector<float> sgemm_one = run(sgemm, c, o);
      set_num_threads(2);
      const std::vector<float> two_threads = run(gemm_packed_parallel, c, o);
      const std::vector<float> sgemm_two = run(sgemm, c, o);
      const std::vector<float> serial = run(gemm_packed, c, o);
      const std::vector<float> openmp_two = run(gemm_packed_openmp, c, o);
      set_num_threads(3);  // more threads than cores, and a pool worker left out when we go back to 2
      const std::vector<float> three_threads = run(gemm_packed_parallel, c, o);
      set_num_threads(2);
      const std::vector<float> two_again = run(gemm_packed_parallel, c, o);
      CHECK(same_bits(one_thread, two_threads));
      CHECK(same_bits(one_thread, three_threads));
      CHECK(same_bits(one_thread, two_again));
      CHECK(same_bits(one_thread, serial));
      CHECK(same_bits(one_thread, sgemm_one));
      CHECK(same_bits(one_thread, sgemm_two));
      CHECK(same_bits(one_thread, openmp_two));
    }
  }
}

TEST_CASE("gemm: the worker pool runs 2 threads with and without OpenMP") {
  ThreadCountGuard guard;
  set_num_threads(2);
  CHECK(max_threads() == 2);
  std::atomic<int> ran{0};
  std::atomic<int> seen_nthreads{0};
  parallel_run(2, [&](int, int nthreads) {
    ran.fetch_add(1);
    seen_nthreads.store(nthreads);
  });
  CHECK(ran.load() == 2);
  CHECK(seen_nthreads.load() == 2);
}

TEST_CASE("gemm: sgemm_batched equals one sgemm per matrix / with broadcast operands / at 1 and 2 threads") {
  ThreadCountGuard guard;
  // Attention-like small products (parallel across the batch) and bigger ones (parallel inside).
  const int64_t shapes[][3] = {{17, 13, 8}, {64, 64, 32}, {130, 70, 90}};
  for (const auto& s : shapes) {
    for (int broadcast = 0; broadcast < 3; ++broadcast) {  // 0: none, 1: A shared, 2: B shared
      const int64_t batch = 5, M = s[0], N = s[1], K = s[2];
      const bool trans_a = broadcast == 2, trans_b = broadcast != 1;
      const int64_t lda = (trans_a ? M : K) + 1, ldb = trans_b ? K : N, ldc = N + 3;
      const int64_t stride_a = broadcast == 1 ? 0 : (trans_a ? K : M) * lda + 2;
      const int64_t stride_b = broadcast == 2 ? 0 : (trans_b ? N : K) * ldb;
      const int64_t stride_c = M * ldc + 1;
      CAPTURE(M);
      CAPTURE(N);
      CAPTURE(K);
      CAPTURE(broadcast);
      Rng rng(broadcast + 10 * M);
      std::vector<float> A(size_t(stride_a * (batch - 1) + (trans_a ? K : M) * lda)),
          B(size_t(stride_b * (batch - 1) + (trans_b ? N : K) * ldb)), C0(size_t(stride_c * batch));
      for (float& x : A) x = float(rng.uniform(-1.0, 1.0));
      for (float& x : B) x = float(rng.uniform(-1.0, 1.0));
      for (float& x : C0) x = float(rng.uniform(-1.0, 1.0));

      std::vector<float> expected = C0;
      for (int64_t b = 0; b < batch; ++b)
        sgemm(trans_a, trans_b, M, N, K, 0.7f, A.data() + b * stride_a, lda, B.data() + b * stride_b, ldb, 0.3f,
              expected.data() + b * stride_c, ldc);
      // The per-matrix results are themselves right (against the float64 reference for matrix 2).
      std::vector<double> Ad(A.begin() + 2 * stride_a, A.end()), Bd(B.begin() + 2 * stride_b, B.end());
      std::vector<double> ref(C0.begin() + 2 * stride_c, C0.begin() + 3 * stride_c);
      dgemm_naive(trans_a, trans_b, M, N, K, 0.7, Ad.data(), lda, Bd.data(), ldb, 0.3, ref.data(), ldc);
      double worst = 0;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j)
          worst = std::max(worst, std::fabs(ref[i * ldc + j] - expected[2 * stride_c + i * ldc + j]));
      CHECK(worst <= 2.0 * (K + 4) * std::ldexp(1.0, -24) * double(K));  // |a|,|b| <= 1: scale <= K + |C0|

      for (int threads : {1, 2}) {
        set_num_threads(threads);
        std::vector<float> C = C0;
        sgemm_batched(batch, trans_a, trans_b, M, N, K, 0.7f, A.data(), lda, stride_a, B.data(), ldb, stride_b,
                      0.3f, C.data(), ldc, stride_c);
        CHECK(same_bits(C, expected));
      }
    }
  }
}

TEST_CASE("gemm: bad arguments throw gradlab::Error with the values") {
  std::vector<float> A(64, 1.0f), B(64, 1.0f), C(64, 0.0f);
  for (int r = 0; r < kNumRungs; ++r) {
    GemmFn fn = rungs()[r].fn;
    CAPTURE(rungs()[r].name);
    CHECK_THROWS_AS(fn(false, false, -1, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2), Error);
    CHECK_THROWS_AS(fn(false, false, 2, 2, 3, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2), Error);  // lda<K
    CHECK_THROWS_AS(fn(true, false, 4, 2, 3, 1.0f, A.data(), 3, B.data(), 2, 0.0f, C.data(), 2), Error);  // lda<M
    CHECK_THROWS_AS(fn(false, true, 2, 4, 3, 1.0f, A.data(), 3, B.data(), 2, 0.0f, C.data(), 4), Error);  // ldb<K
    CHECK_THROWS_AS(fn(false, false, 2, 4, 3, 1.0f, A.data(), 3, B.data(), 4, 0.0f, C.data(), 3), Error);  // ldc<N
    CHECK_THROWS_AS(fn(false, false, 2, 2, 2, 1.0f, nullptr, 2, B.data(), 2, 0.0f, C.data(), 2), Error);
    CHECK_THROWS_AS(fn(false, false, 2, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, nullptr, 2), Error);
  }
  try {
    sgemm(false, false, 2, 2, 3, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("sgemm") != std::string::npos);
    CHECK(what.find("lda=2") != std::string::npos);
  }
  // Overlapping outputs in a batch, negative batch or strides.
  CHECK_THROWS_AS(sgemm_batched(2, false, false, 2, 2, 2, 1.0f, A.data(), 2, 4, B.data(), 2, 4, 0.0f, C.data(), 2, 3),
                  Error);
  CHECK_THROWS_AS(sgemm_batched(2, false, false, 2, 2, 2, 1.0f, A.data(), 2, 4, B.data(), 2, 4, 0.0f, C.data(), 2, 0),
                  Error);
  CHECK_THROWS_AS(sgemm_batched(-1, false, false, 2, 2, 2, 1.0f, A.data(), 2, 4, B.data(), 2, 4, 0.0f, C.data(), 2, 4),
                  Error);
  CHECK_THROWS_AS(sgemm_batched(2, false, false, 2, 2, 2, 1.0f, A.data(), 2, -4, B.data(), 2, 4, 0.0f, C.data(), 2, 4),
                  Error);
}

TEST_CASE("gemm: the rung table names every rung once / in ladder order") {
  std::vector<std::string> names;
  for (int r = 0; r < kNumRungs; ++r) {
    CHECK((rungs()[r].fn != nullptr));
    CHECK(int(rungs()[r].rung) == r);
    CHECK(&rung_info(rungs()[r].rung) == &rungs()[r]);
    names.push_back(rungs()[r].name);
  }
  CHECK(names == std::vector<std::string>{"naive", "reordered", "blocked", "packed", "openmp", "parallel", "sgemm"});
}

}  // TEST_SUITE
