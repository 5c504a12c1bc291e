// The attention kernels (tensor/attention_kernel.h): the materialized kernel against double-precision
// math, then the fused flash kernel against the reference, forward and all three gradients.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "nn/stablemask.h"
#include "tensor/attention_kernel.h"
#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/rng.h"
#include "simd_check.h"

using namespace gradlab;
using namespace gradlab::attention;

namespace {

enum class Mask { Causal, StableFinite, StableInfinite };
enum class Position { None, Rope, Alibi };

std::string mask_name(Mask m) {
  return m == Mask::Causal ? "causal" : m == Mask::StableFinite ? "stablemask-finite" : "stablemask-infinite";
}
std::string position_name(Position p) { return p == Position::None ? "none" : p == Position::Rope ? "rope" : "alibi"; }

// Rotary embedding applied in place to x (B,H,T,D), D even: pair (2m, 2m+1) of row t turns by t * base^(-2m/D).
void apply_rope(std::vector<float>& x, std::int64_t BH, std::int64_t T, std::int64_t D) {
  for (std::int64_t bh = 0; bh < BH; ++bh)
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t m = 0; m + 1 < D; m += 2) {
        const double angle = double(t) * std::pow(10000.0, -double(m) / double(D));
        float* p = x.data() + (bh * T + t) * D + m;
        const double a = p[0], b = p[1];
        p[0] = float(a * std::cos(angle) - b * std::sin(angle));
        p[1] = float(a * std::sin(angle) + b * std::cos(angle));
      }
}

// One problem: inputs, the upstream gradient and the bias tables (kept alive for Bias's pointers).
struct Problem {
  Geometry g;
  std::vector<float> q, k, v, d_o, tau, slopes;
  Bias bias{};
};

Problem make_problem(Geometry g, Mask mask, std::int64_t L, Position pos, std::uint64_t seed, double q_gain = 1.5) {
  Problem p;
  p.g = g;
  Rng rng(seed);
  const std::int64_t n = g.B * g.H * g.T * g.D;
  auto fill = [&](std::vector<float>& x, double gain) {
    x.resize(n);
    for (float& e : x) e = float(rng.normal(0.0, gain));
  };
  fill(p.q, q_gain);  // a gain > 1 sharpens the attention, so the online-softmax rescaling is exercised
  fill(p.k, 1.0);
  fill(p.v, 1.0);
  fill(p.d_o, 1.0);
  if (pos == Position::Rope) {
    apply_rope(p.q, g.B * g.H, g.T, g.D);
    apply_rope(p.k, g.B * g.H, g.T, g.D);
  }
  p.bias.scale = float(1.0 / std::sqrt(double(g.D)));
  const std::vector<double> gammas = alibi_slopes(g.H);
  if (pos == Position::Alibi) {
    for (double s : gammas) p.slopes.push_back(float(s));
    p.bias.alibi_slopes = p.slopes.data();
  }
  if (mask != Mask::Causal) {
    p.tau.resize(g.H * g.T);
    const StableMaskTail tail = mask == Mask::StableFinite ? StableMaskTail::Finite : StableMaskTail::Infinite;
    stablemask_tau_table(gammas, L, g.T, 0, tail, p.tau.data());
    p.bias.tau = p.tau.data();
  }
  return p;
}

// The same attention in double, written from the spec's formula: Attn_ij = e^{a_ij} / (sum_k e^{a_ik} + e^{tau_i}).
struct DoubleResult {
  std::vector<double> o, lse, real_mass;  // real_mass_i = sum_{j<=i} Attn_ij
};

DoubleResult double_forward(const Problem& p, const std::vector<double>& q, const std::vector<double>& k,
                            const std::vector<double>& v) {
  const Geometry& g = p.g;
  DoubleResult r;
  r.o.assign(g.B * g.H * g.T * g.D, 0.0);
  r.lse.assign(g.B * g.H * g.T, 0.0);
  r.real_mass.assign(g.B * g.H * g.T, 0.0);
  std::vector<double> a(g.T);
  for (std::int64_t bh = 0; bh < g.B * g.H; ++bh) {
    const std::int64_t h = bh % g.H;
    for (std::int64_t i = 0; i < g.T; ++i) {
      const double tau = p.bias.tau ? double(p.bias.tau[h * g.T + i]) : -INFINITY;
      double m = tau;
      for (std::int64_t j = 0; j <= i; ++j) {
        double s = 0.0;
        for (std::int64_t d = 0; d < g.D; ++d) s += q[(bh * g.T + i) * g.D + d] * k[(bh * g.T + j) * g.D + d];
        a[j] = double(p.bias.scale) * s - (p.bias.alibi_slopes ? double(p.bias.alibi_slopes[h]) : 0.0) * double(i - j);
        m = std::max(m, a[j]);
      }
      double real = 0.0;
      for (std::int64_t j = 0; j <= i; ++j) real += std::exp(a[j] - m);
      const double total = real + std::exp(tau - m);
      for (std::int64_t j = 0; j <= i; ++j) {
        const double attn = std::exp(a[j] - m) / total;
        for (std::int64_t d = 0; d < g.D; ++d) r.o[(bh * g.T + i) * g.D + d] += attn * v[(bh * g.T + j) * g.D + d];
      }
      r.lse[bh * g.T + i] = m + std::log(total);
      r.real_mass[bh * g.T + i] = real / total;
    }
  }
  return r;
}

std::vector<double> to_double(const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); }

// max |a - b| relative to max(1, max |b|): one number per array, stable under sign changes and near-zero
// entries, and absolute when the whole array is small (e.g. dq = 0 exactly for T = 1 under the causal mask).
template <typename A, typename B>
double relative_max_error(const A& a, const B& b) {
  REQUIRE(a.size() == b.size());
  double err = 0.0, scale = 1.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return err / scale;
}

struct Outputs {
  std::vector<float> o, lse, probs, dq, dk, dv;
};

Outputs run_materialized(const Problem& p) {
  const Geometry& g = p.g;
  const std::int64_t n = g.B * g.H * g.T * g.D;
  Outputs r;
  r.o.assign(n, NAN);
  r.probs.assign(g.B * g.H * g.T * g.T, NAN);
  r.dq.assign(n, NAN);
  r.dk.assign(n, NAN);
  r.dv.assign(n, NAN);
  materialized_forward(g, p.bias, p.q.data(), p.k.data(), p.v.data(), r.probs.data(), r.o.data());
  materialized_backward(g, p.bias, p.q.data(), p.k.data(), p.v.data(), r.probs.data(), p.d_o.data(), r.dq.data(),
                     r.dk.data(), r.dv.data());
  return r;
}

Outputs run_flash(const Problem& p) {
  const Geometry& g = p.g;
  const std::int64_t n = g.B * g.H * g.T * g.D;
  Outputs r;
  // NaN-filled outputs: a row the kernel forgets to write shows up as a failure, not as a stale zero
  r.o.assign(n, NAN);
  r.lse.assign(g.B * g.H * g.T, NAN);
  r.dq.assign(n, NAN);
  r.dk.assign(n, NAN);
  r.dv.assign(n, NAN);
  flash_forward(g, p.bias, p.q.data(), p.k.data(), p.v.data(), r.o.data(), r.lse.data());
  flash_backward(g, p.bias, p.q.data(), p.k.data(), p.v.data(), r.o.data(), r.lse.data(), p.d_o.data(),
                 r.dq.data(), r.dk.data(), r.dv.data());
  return r;
}

}  // namespace

TEST_SUITE("attention") {

TEST_CASE("reference attention rows sum to 1 (causal) and to S/(S+Z) (StableMask) / 0 above the diagonal") {
  for (Mask mask : {Mask::Causal, Mask::StableFinite, Mask::StableInfinite})
    for (Position pos : {Position::None, Position::Alibi}) {
      CAPTURE(mask_name(mask));
      CAPTURE(position_name(pos));
      const Problem p = make_problem({2, 3, 37, 8}, mask, /*L*/ 24, pos, 11);
      const Outputs r = run_materialized(p);
      const DoubleResult d = double_forward(p, to_double(p.q), to_double(p.k), to_double(p.v));
      const std::int64_t T = p.g.T;
      double worst = 0.0;
      for (std::int64_t row = 0; row < p.g.B * p.g.H * T; ++row) {
        const std::int64_t i = row % T;
        double sum = 0.0;
        for (std::int64_t j = 0; j < T; ++j) {
          const float pij = r.probs[row * T + j];
          if (j > i) REQUIRE(pij == 0.0f);
          sum += pij;
        }
        const double expected = mask == Mask::Causal ? 1.0 : d.real_mass[row];
        worst = std::max(worst, std::abs(sum - expected));
        // StableMask rows hold less than 1 of real mass, except where Z(i) = 0 (finite tail, i >= L-1)
        if (mask == Mask::StableInfinite || (mask == Mask::StableFinite && i < 24 - 1)) CHECK(expected < 1.0);
        if (mask == Mask::StableFinite && i >= 24 - 1) CHECK(expected == 1.0);
      }
      CHECK(worst < 2e-6);
      CHECK(relative_max_error(r.o, d.o) < 2e-6);
    }
}

TEST_CASE("reference attention backward matches central differences of a double forward") {
  // Tiny case, T > L so that rows past L-1 (no sink) are included, ALiBi on, both masks.
  for (Mask mask : {Mask::Causal, Mask::StableFinite, Mask::StableInfinite}) {
    CAPTURE(mask_name(mask));
    const Problem p = make_problem({1, 2, 6, 3}, mask, /*L*/ 4, Position::Alibi, 5);
    const Outputs ref = run_materialized(p);
    const Outputs fused = run_flash(p);
    // loss = sum(dO * O) in double; its gradient with respect to q, k, v is what the backward returns
    auto loss = [&](const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v) {
      const DoubleResult d = double_forward(p, q, k, v);
      double s = 0.0;
      for (std::size_t x = 0; x < d.o.size(); ++x) s += double(p.d_o[x]) * d.o[x];
      return s;
    };
    const std::vector<double> q = to_double(p.q), k = to_double(p.k), v = to_double(p.v);
    const double eps = 1e-5;
    double worst_ref = 0.0, worst_flash = 0.0;
    for (int which = 0; which < 3; ++which) {
      for (std::size_t x = 0; x < q.size(); ++x) {
        std::vector<double> qq = q, kk = k, vv = v;
        std::vector<double>& t = which == 0 ? qq : which == 1 ? kk : vv;
        t[x] += eps;
        const double up = loss(qq, kk, vv);
        t[x] -= 2 * eps;
        const double down = loss(qq, kk, vv);
        const double numeric = (up - down) / (2 * eps);
        const std::vector<float>& rg = which == 0 ? ref.dq : which == 1 ? ref.dk : ref.dv;
        const std::vector<float>& fg = which == 0 ? fused.dq : which == 1 ? fused.dk : fused.dv;
        worst_ref = std::max(worst_ref, std::abs(double(rg[x]) - numeric) / std::max(1.0, std::abs(numeric)));
        worst_flash = std::max(worst_flash, std::abs(double(fg[x]) - numeric) / std::max(1.0, std::abs(numeric)));
      }
    }
    CAPTURE(worst_ref);
    CAPTURE(worst_flash);
    MESSAGE(mask_name(mask), ": gradient vs central difference, worst error: reference ", worst_ref, ", flash ", worst_flash);
    // float32 kernels against a double finite difference (measured ~2e-7: the float rounding' rounding)
    CHECK(worst_ref < 2e-6);
    CHECK(worst_flash < 2e-6);
  }
}

TEST_CASE("flash attention forward and gradients equal the materialized kernel") {
  // o within 2e-6 and dq, dk, dv within 1e-5 of the reference (measured worst: 8e-7 and 1.2e-6), relative
  // to max(1, the array's largest entry); lse within 2e-6 of the double-precision value.
  const std::int64_t lengths[] = {1, 2, 7, 64, 129, 300};
  double worst_o = 0.0, worst_grad = 0.0, worst_lse = 0.0;
  for (std::int64_t T : lengths)
    for (Mask mask : {Mask::Causal, Mask::StableFinite, Mask::StableInfinite})
      for (Position pos : {Position::None, Position::Rope, Position::Alibi})
        // training length L: above T (SM-I, every row has a sink) and below T (rows >= L-1 have none)
        for (std::int64_t L : {T + 37, std::max<std::int64_t>(1, T / 2)}) {
          if (mask != Mask::StableFinite && L != T + 37) continue;  // L only matters for the finite tail
          CAPTURE(T);
          CAPTURE(L);
          CAPTURE(mask_name(mask));
          CAPTURE(position_name(pos));
          const std::int64_t D = T == 129 ? 20 : 16;  // 20: ragged SIMD ends
          const Problem p = make_problem({2, 3, T, D}, mask, L, pos, 1000 + T);
          const Outputs ref = run_materialized(p);
          const Outputs fused = run_flash(p);
          const DoubleResult d = double_forward(p, to_double(p.q), to_double(p.k), to_double(p.v));
          const double err_o = relative_max_error(fused.o, ref.o);
          const double err_dq = relative_max_error(fused.dq, ref.dq);
          const double err_dk = relative_max_error(fused.dk, ref.dk);
          const double err_dv = relative_max_error(fused.dv, ref.dv);
          double err_lse = 0.0;
          for (std::size_t x = 0; x < d.lse.size(); ++x)
            err_lse = std::max(err_lse, std::abs(double(fused.lse[x]) - d.lse[x]) / std::max(1.0, std::abs(d.lse[x])));
          CAPTURE(err_o);
          CAPTURE(err_dq);
          CAPTURE(err_dk);
          CAPTURE(err_dv);
          CAPTURE(err_lse);
          CHECK(err_o < 2e-6);
          CHECK(err_dq < 1e-5);
          CHECK(err_dk < 1e-5);
          CHECK(err_dv < 1e-5);
          CHECK(err_lse < 2e-6);
          worst_o = std::max(worst_o, err_o);
          worst_grad = std::max({worst_grad, err_dq, err_dk, err_dv});
          worst_lse = std::max(worst_lse, err_lse);
        }
  MESSAGE("flash vs reference, worst relative errors: o ", worst_o, ", gradients ", worst_grad, ", lse ", worst_lse);
}

TEST_CASE("flash attention with a dominant sink (tiny gamma) and a head dimension of 64") {
  // gamma = 2^-10 puts most of each early row's mass on the sink; D = 64 runs the full-width SIMD blocks.
  Problem p = make_problem({1, 2, 150, 64}, Mask::Causal, 0, Position::Alibi, 77);
  p.tau.resize(p.g.H * p.g.T);
  stablemask_tau_table({1.0 / 1024, 0.25}, 200, p.g.T, 0, StableMaskTail::Finite, p.tau.data());
  p.bias.tau = p.tau.data();
  const Outputs ref = run_materialized(p);
  const Outputs fused = run_flash(p);
  CHECK(relative_max_error(fused.o, ref.o) < 2e-6);
  CHECK(relative_max_error(fused.dq, ref.dq) < 2e-5);
  CHECK(relative_max_error(fused.dk, ref.dk) < 2e-5);
  CHECK(relative_max_error(fused.dv, ref.dv) < 2e-5);
}

TEST_CASE("flash attention is bit-identical on 1 and 2 threads") {
  // B*H = 3 heads: on 1 thread the backward runs one pass per head, on 2 threads (3 heads do not balance 2
  // threads) two passes over tiles, so this also checks that both strategies give the same bits.
  const int saved = max_threads();
  const Problem p = make_problem({1, 3, 300, 64}, Mask::StableFinite, 200, Position::Alibi, 9);
  set_num_threads(1);
  const Outputs one = run_flash(p);
  const Outputs ref_one = run_materialized(p);
  set_num_threads(2);
  const Outputs two = run_flash(p);
  const Outputs ref_two = run_materialized(p);
  set_num_threads(saved);
  auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  CHECK(same(one.o, two.o));
  CHECK(same(one.lse, two.lse));
  CHECK(same(one.dq, two.dq));
  CHECK(same(one.dk, two.dk));
  CHECK(same(one.dv, two.dv));
  CHECK(same(ref_one.o, ref_two.o));
  CHECK(same(ref_one.dk, ref_two.dk));
}

TEST_CASE("attention kernels reject bad geometry / null pointers and bad bias tables") {
  Problem p = make_problem({1, 2, 4, 8}, Mask::Causal, 0, Position::None, 3);
  std::vector<float> o(64), lse(8), probs(32), dq(64), dk(64), dv(64);
  for (Geometry bad : {Geometry{0, 2, 4, 8}, Geometry{1, 0, 4, 8}, Geometry{1, 2, 0, 8}, Geometry{1, 2, 4, -1}}) {
    CHECK_THROWS_AS(flash_forward(bad, p.bias, p.q.data(), p.k.data(), p.v.data(), o.data(), lse.data()), Error);
    CHECK_THROWS_AS(materialized_forward(bad, p.bias, p.q.data(), p.k.data(), p.v.data(), probs.data(), o.data()), Error);
  }
  CHECK_THROWS_AS(flash_forward(p.g, p.bias, p.q.data(), nullptr, p.v.data(), o.data(), lse.data()), Error);
  CHECK_THROWS_AS(flash_backward(p.g, p.bias, p.q.data(), p.k.data(), p.v.data(), o.data(), lse.data(),
                                 p.d_o.data(), dq.data(), nullptr, dv.data()),
                  Error);
  CHECK_THROWS_AS(materialized_backward(p.g, p.bias, p.q.data(), p.k.data(), p.v.data(), nullptr, p.d_o.data(),
                                     dq.data(), dk.data(), dv.data()),
                  Error);
  std::vector<float> tau(8, 0.0f);
  tau[5] = std::numeric_limits<float>::quiet_NaN();
  Bias bad_tau = p.bias;
  bad_tau.tau = tau.data();
  CHECK_THROWS_AS(flash_forward(p.g, bad_tau, p.q.data(), p.k.data(), p.v.data(), o.data(), lse.data()), Error);
  tau[5] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(flash_forward(p.g, bad_tau, p.q.data(), p.k.data(), p.v.data(), o.data(), lse.data()), Error);
  tau[5] = -std::numeric_limits<float>::infinity();  // -inf is "no sink": fine
  CHECK_NOTHROW(flash_forward(p.g, bad_tau, p.q.data(), p.k.data(), p.v.data(), o.data(), lse.data()));
  Bias bad_scale = p.bias;
  bad_scale.scale = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(flash_forward(p.g, bad_scale, p.q.data(), p.k.data(), p.v.data(), o.data(), lse.data()), Error);
}


TEST_CASE("attention portable inner loops: blocked gemms equal the plain k-order loops bit for bit, exp within 3e-7") {
  Rng rng(22);
  // every block shape: 6, 4 and single rows; 8- and 4-column blocks and 0..3 leftover columns
  for (std::int64_t M : {1, 3, 4, 6, 7, 11, 64}) {
    for (std::int64_t N : {1, 3, 4, 5, 8, 13, 16, 29, 64}) {
      const std::int64_t K = 19, lda = K + 2, ldb = N + 3, ldc = N + 1, ldt = M + 2;
      std::vector<float> A(M * lda), At(K * ldt), Bm(K * ldb), C0(M * ldc);
      for (float& x : A) x = float(rng.normal());
      for (float& x : At) x = float(rng.normal());
      for (float& x : Bm) x = float(rng.normal());
      for (float& x : C0) x = float(rng.normal());
      std::vector<float> C1 = C0, C2 = C0, T1 = C0, T2 = C0;
      // the plain loops: one multiply and one add per k, in k order (no FMA: x86-64 baseline, or
      // -ffp-contract=off on aarch64)
      for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t k = 0; k < K; ++k)
          for (std::int64_t j = 0; j < N; ++j) {
            C1[i * ldc + j] += A[i * lda + k] * Bm[k * ldb + j];
            T1[i * ldc + j] += At[k * ldt + i] * Bm[k * ldb + j];
          }
      detail::gemm_acc_portable(M, N, K, A.data(), lda, Bm.data(), ldb, C2.data(), ldc);
      detail::gemm_tn_acc_portable(M, N, K, At.data(), ldt, Bm.data(), ldb, T2.data(), ldc);
      CAPTURE(M);
      CAPTURE(N);
      CHECK(std::memcmp(C1.data(), C2.data(), C1.size() * sizeof(float)) == 0);  // padding columns included
      CHECK(std::memcmp(T1.data(), T2.data(), T1.size() * sizeof(float)) == 0);
    }
  }
  std::vector<float> x;
  for (double t = -104.0; t <= 89.0; t += 0.01) x.push_back(float(t));
  for (float v : {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity(), 0.0f, -0.0f})
    x.push_back(v);
  std::vector<float> y = x;
  detail::exp_portable(y.data(), std::int64_t(y.size()));
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double exact = std::exp(double(x[i]));
    CAPTURE(x[i]);
    if (x[i] < -87.69f) {
      CHECK(y[i] == 0.0f);  // -inf included
    } else if (exact < 1.1754943508222875e-38) {
      CHECK((y[i] >= 0.0f && y[i] < 1.1754943508222875e-38f));  // subnormal, or 0 just past -87.683
    } else if (x[i] > 88.3762626647949f) {  // e^x ~ 2^127.5 and above: +inf
      CHECK(std::isinf(y[i]));
    } else {
      worst = std::max(worst, std::abs(double(y[i]) - exact) / exact);
    }
  }
  CHECK(worst < 3e-7);
  float nan = std::numeric_limits<float>::quiet_NaN();
  detail::exp_portable(&nan, 1);
  CHECK(std::isnan(nan));
}

TEST_CASE("flash attention on the portable inner loops (forced) equals the materialized kernel and the SIMD one") {
  // set_force_portable puts the portable loops under the fused and the materialized kernels even where AVX2 or
  // NEON is in use; the tolerances are those of the tests above.
  struct Restore {
    ~Restore() { set_force_portable(false); }
  } restore;
  for (std::int64_t T : {7, 129, 300})
    for (Mask mask : {Mask::Causal, Mask::StableFinite}) {
      CAPTURE(T);
      CAPTURE(mask_name(mask));
      const Problem p = make_problem({2, 3, T, T == 129 ? 20 : 64}, mask, T / 2 + 1, Position::Alibi, 500 + T);
      set_force_portable(false);
      const Outputs simd = run_flash(p);
      set_force_portable(true);
      const Outputs ref = run_materialized(p);
      const Outputs fused = run_flash(p);
      CHECK(relative_max_error(fused.o, ref.o) < 2e-6);
      CHECK(relative_max_error(fused.dq, ref.dq) < 1e-5);
      CHECK(relative_max_error(fused.dk, ref.dk) < 1e-5);
      CHECK(relative_max_error(fused.dv, ref.dv) < 1e-5);
      CHECK(relative_max_error(fused.lse, simd.lse) < 2e-6);
      CHECK(relative_max_error(fused.o, simd.o) < 2e-6);
      CHECK(relative_max_error(fused.dq, simd.dq) < 1e-5);
      CHECK(relative_max_error(fused.dk, simd.dk) < 1e-5);
      CHECK(relative_max_error(fused.dv, simd.dv) < 1e-5);
    }
  MESSAGE("portable inner loops forced; otherwise in use: " << std::string(simd_kernels()));
}

#ifdef GRADLAB_HAVE_SIMD_KERNELS
TEST_CASE("attention SIMD inner loops (AVX2 or NEON) agree with the portable ones") {
  if (!simd_in_use()) return;
  Rng rng(21);
  // gemm on ragged sizes: every block shape (6 and 4 rows, full and ragged column blocks, single rows) is hit
  for (std::int64_t M : {1, 3, 4, 6, 7, 11}) {
    for (std::int64_t N : {1, 5, 8, 13, 16, 29, 64}) {
      const std::int64_t K = 11, lda = K + 2, ldb = N + 3, ldc = N + 1;
      std::vector<float> A(M * lda), Bm(K * ldb), C1(M * ldc), C2;
      for (float& x : A) x = float(rng.normal());
      for (float& x : Bm) x = float(rng.normal());
      for (float& x : C1) x = float(rng.normal());
      C2 = C1;
      detail::gemm_acc_portable(M, N, K, A.data(), lda, Bm.data(), ldb, C1.data(), ldc);
      detail::GRADLAB_SIMD(gemm_acc)(M, N, K, A.data(), lda, Bm.data(), ldb, C2.data(), ldc);
      CAPTURE(M);
      CAPTURE(N);
      CHECK(relative_max_error(C2, C1) < 1e-6);
      for (std::int64_t i = 0; i < M; ++i)  // padding columns untouched
        for (std::int64_t j = N; j < ldc; ++j) CHECK(C2[i * ldc + j] == C1[i * ldc + j]);
      // the transposed form: the same A read as stored (K, M) with row stride M + 2
      const std::int64_t ldt = M + 2;
      std::vector<float> At(K * ldt), T1 = C1, T2;
      for (float& x : At) x = float(rng.normal());
      T2 = T1;
      detail::gemm_tn_acc_portable(M, N, K, At.data(), ldt, Bm.data(), ldb, T1.data(), ldc);
      detail::GRADLAB_SIMD(gemm_tn_acc)(M, N, K, At.data(), ldt, Bm.data(), ldb, T2.data(), ldc);
      CHECK(relative_max_error(T2, T1) < 1e-6);
      for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = N; j < ldc; ++j) CHECK(T2[i * ldc + j] == T1[i * ldc + j]);
    }
  }
  for (std::int64_t n : {1, 7, 8, 9, 16, 20, 64, 67}) {
    std::vector<float> a(n), b(n), y1(n), y2;
    for (std::int64_t i = 0; i < n; ++i) a[i] = float(rng.normal()), b[i] = float(rng.normal()), y1[i] = float(rng.normal());
    y2 = y1;
    double exact = 0.0;
    for (std::int64_t i = 0; i < n; ++i) exact += double(a[i]) * b[i];
    CHECK(std::abs(detail::GRADLAB_SIMD(dot)(a.data(), b.data(), n) - exact) < 1e-5 * std::sqrt(double(n)));
    detail::axpy_portable(0.7f, a.data(), y1.data(), n);
    detail::GRADLAB_SIMD(axpy)(0.7f, a.data(), y2.data(), n);
    CHECK(relative_max_error(y2, y1) < 1e-6);
  }
  // exp over the range the kernels use (x <= 0, down to -inf) and beyond; relative error within 3 ulp-ish
  std::vector<float> x;
  for (double t = -104.0; t <= 89.0; t += 0.01) x.push_back(float(t));
  x.push_back(-std::numeric_limits<float>::infinity());
  x.push_back(0.0f);
  x.push_back(100.0f);
  std::vector<float> y = x;
  detail::GRADLAB_SIMD(exp)(y.data(), std::int64_t(y.size()));
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double exact = std::exp(double(x[i]));
    if (exact < 1.1754943508222875e-38) {
      CHECK(y[i] == 0.0f);  // subnormal results flushed to zero
    } else if (x[i] > 88.3762626647949f) {  // e^88.376 ~ 2^127.5: above it the SIMD exp returns +inf
      CHECK(std::isinf(y[i]));
    } else {
      worst = std::max(worst, std::abs(double(y[i]) - exact) / exact);
    }
  }
  CHECK(worst < 4e-7);
  float nan = std::numeric_limits<float>::quiet_NaN();
  detail::GRADLAB_SIMD(exp)(&nan, 1);
  CHECK(std::isnan(nan));
  report_simd_validated("attention inner loops (gemm, gemm_tn, dot, axpy, exp)");
}
#endif

}  // TEST_SUITE
