// Chapter 2: the float32 LayerNorm/RMSNorm kernels (tensor/norm.h). The fast entry points (AVX2 when the CPU
// has it, NEON on aarch64, rows in chunks over the worker pool) are checked against the portable loops, and both against the
// float64 reference; the autograd op in float32 against the same op in float64.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "tensor/cpu.h"
#include "tensor/norm.h"
#include "tensor/ops.h"
#include "tensor/rng.h"
#include "simd_check.h"

using namespace gradlab;

namespace {
struct NormCase {
  std::int64_t N, C;
  bool rms, bias;
};

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float offset = 0.0f, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = offset + scale * static_cast<float>(rng.normal());
  return v;
}

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// max |a - b| / (atol + rtol |ref|) over the elements; <= 1 passes
double worst(const std::vector<float>& a, const std::vector<double>& ref, double rtol, double atol) {
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(a[i] - ref[i]) / (atol + rtol * std::abs(ref[i])));
  return w;
}

// Runs one kernel family on case k and returns out, mean, rstd, dx, dw, db (flattened, in that order).
enum class Path { Fast, Portable, PortableF32, Simd };  // Simd: the AVX2 or NEON loops; PortableF32: the float rows
std::vector<std::vector<float>> run_float(Path path, const NormCase& k, const std::vector<float>& x,
                                          const std::vector<float>& w, const std::vector<float>& b,
                                          const std::vector<float>& g) {
  const auto NC = static_cast<std::size_t>(k.N * k.C), C = static_cast<std::size_t>(k.C), N = static_cast<std::size_t>(k.N);
  std::vector<float> out(NC), mean(N), rstd(N), dx(NC), dw(C), db(C, -7.0f);
  const float* pb = k.bias ? b.data() : nullptr;
  float* pdb = k.bias ? db.data() : nullptr;
  if (path == Path::Fast) {
    kernels::norm_forward(x.data(), w.data(), pb, out.data(), mean.data(), rstd.data(), k.N, k.C, 1e-5f, k.rms);
    kernels::norm_backward(g.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(), pdb, k.N, k.C, k.rms);
  } else if (path == Path::PortableF32) {
    kernels::norm_forward_f32_portable(x.data(), w.data(), pb, out.data(), mean.data(), rstd.data(), k.N, k.C, 1e-5f, k.rms);
    kernels::norm_backward_f32_portable(g.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(), pdb,
                                        k.N, k.C, k.rms);
  } else if (path == Path::Portable) {
    kernels::norm_forward_portable<float>(x.data(), w.data(), pb, out.data(), mean.data(), rstd.data(), k.N, k.C, 1e-5, k.rms);
    kernels::norm_backward_portable<float>(g.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(), pdb,
                                           k.N, k.C, k.rms);
  } else {
#ifdef GRADLAB_HAVE_SIMD_KERNELS
    kernels::GRADLAB_SIMD(norm_forward)(x.data(), w.data(), pb, out.data(), mean.data(), rstd.data(), k.N, k.C, 1e-5f,
                                        k.rms);
    kernels::GRADLAB_SIMD(norm_backward)(g.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(), pdb,
                                         k.N, k.C, k.rms);
#endif
  }
  return {out, mean, rstd, dx, dw, db};
}

std::vector<std::vector<double>> run_double(const NormCase& k, const std::vector<float>& x, const std::vector<float>& w,
                                            const std::vector<float>& b, const std::vector<float>& g) {
  const auto NC = static_cast<std::size_t>(k.N * k.C), C = static_cast<std::size_t>(k.C), N = static_cast<std::size_t>(k.N);
  std::vector<double> x64 = widen(x), w64 = widen(w), b64 = widen(b), g64 = widen(g);
  std::vector<double> out(NC), mean(N), rstd(N), dx(NC), dw(C), db(C, -7.0);
  kernels::norm_forward_portable<double>(x64.data(), w64.data(), k.bias ? b64.data() : nullptr, out.data(), mean.data(),
                                         rstd.data(), k.N, k.C, 1e-5, k.rms);
  kernels::norm_backward_portable<double>(g64.data(), x64.data(), w64.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                                          k.bias ? db.data() : nullptr, k.N, k.C, k.rms);
  return {out, mean, rstd, dx, dw, db};
}

const char* kNames[] = {"out", "mean", "rstd", "dx", "dw", "db"};

void check_against_float64(Path path, const NormCase& k, std::uint64_t seed, float offset) {
  const auto NC = static_cast<std::size_t>(k.N * k.C), C = static_cast<std::size_t>(k.C);
  // rows with a mean far from 0 (offset) and a small spread test the two-loop variance
  auto x = random_floats(NC, seed, offset, 0.5f), w = random_floats(C, seed + 1, 1.0f, 0.2f);
  auto b = random_floats(C, seed + 2), g = random_floats(NC, seed + 3);
  auto got = run_float(path, k, x, w, b, g);
  auto ref = run_double(k, x, w, b, g);
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (i == 5 && !k.bias) {
      CHECK(got[i][0] == -7.0f);  // db untouched without a bias
      continue;
    }
    // dw/db sum N terms in float: their error grows with N; the row outputs see C-term sums
    const double atol = i >= 4 ? 2e-6 * static_cast<double>(k.N) : 2e-5 * (1.0 + std::abs(offset));
    INFO("N " << k.N << " C " << k.C << " rms " << k.rms << " bias " << k.bias << " offset " << offset << ": " << kNames[i]);
    CHECK(worst(got[i], ref[i], 1e-4, atol) <= 1.0);
  }
}
}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("norm kernels: portable float32 loops agree with the float64 reference") {
    for (NormCase k : {NormCase{1, 1, false, true}, NormCase{3, 13, false, true}, NormCase{70, 128, false, true},
                       NormCase{70, 128, false, false}, NormCase{65, 37, true, false}})
      for (float offset : {0.0f, 30.0f}) check_against_float64(Path::Portable, k, 11, offset);
  }

  TEST_CASE("norm kernels: portable float32 rows (what runs without AVX2 or NEON) agree with the float64 reference") {
    // C = 1, 7, 13, 37: only the scalar tail; 8, 128, 136: whole vectors; 21: both
    for (NormCase k : {NormCase{1, 1, false, true}, NormCase{1, 8, false, true}, NormCase{3, 13, false, true},
                       NormCase{70, 128, false, true}, NormCase{70, 128, false, false}, NormCase{65, 37, true, false},
                       NormCase{5, 7, true, false}, NormCase{9, 21, false, true}, NormCase{40, 136, true, true}})
      for (float offset : {0.0f, 30.0f}) check_against_float64(Path::PortableF32, k, 41, offset);
  }

  TEST_CASE("norm kernels: SIMD loops (AVX2 or NEON) agree with the float64 reference (and with the portable loops)") {
    if (!simd_in_use()) return;
    for (NormCase k : {NormCase{1, 8, false, true}, NormCase{3, 13, false, true}, NormCase{70, 128, false, true},
                       NormCase{70, 128, false, false}, NormCase{65, 37, true, false}, NormCase{5, 7, true, false}})
      for (float offset : {0.0f, 30.0f}) check_against_float64(Path::Simd, k, 21, offset);
    // SIMD against the portable float loops directly: same formulas, other summation order
    NormCase k{40, 136, false, true};
    auto x = random_floats(40 * 136, 5), w = random_floats(136, 6), b = random_floats(136, 7), g = random_floats(40 * 136, 8);
    auto fast = run_float(Path::Simd, k, x, w, b, g), slow = run_float(Path::Portable, k, x, w, b, g);
    for (std::size_t i = 0; i < fast.size(); ++i) {
      INFO(kNames[i]);
      CHECK(worst(fast[i], widen(slow[i]), 1e-4, 1e-4) <= 1.0);
    }
    report_simd_validated("LayerNorm/RMSNorm forward and backward");
  }

  TEST_CASE("norm kernels: the chunked float32 entry points agree with the float64 reference") {
    // N = 768 (the tiny GPT's B*T) spans 12 chunks of rows; 200 ends in a partial chunk
    for (NormCase k : {NormCase{768, 128, false, true}, NormCase{200, 64, true, false}, NormCase{2, 5, false, true}})
      check_against_float64(Path::Fast, k, 31, 0.5f);
  }

  TEST_CASE("layernorm and rmsnorm in float32 match float64 through autograd") {
    Rng rng(3);
    auto make = [&](const Shape& s) {
      std::vector<double> v(static_cast<std::size_t>(shape_numel(s)));
      for (auto& e : v) e = rng.normal();
      return Tensor::from_values(s, v, DType::F64);
    };
    Tensor x = make({4, 50, 72}), w = make({72}), b = make({72}), r = make({4, 50, 72});
    for (bool rms : {false, true}) {
      std::vector<Tensor> grads[2];
      Tensor outs[2];
      for (int f = 0; f < 2; ++f) {
        const DType dt = f == 0 ? DType::F32 : DType::F64;
        Var xv = Var::leaf(x.to(dt), true), wv = Var::leaf(w.to(dt), true), bv = Var::leaf(b.to(dt), true);
        Var y = rms ? rmsnorm(xv, wv) : layernorm(xv, wv, bv);
        sum(mul(y, Var::leaf(r.to(dt)))).backward();
        outs[f] = y.data().to(DType::F64);
        grads[f] = {xv.grad().to(DType::F64), wv.grad().to(DType::F64)};
        if (!rms) grads[f].push_back(bv.grad().to(DType::F64));
      }
      INFO("rms " << rms);
      CHECK(ops::allclose(outs[0], outs[1], 1e-4, 1e-5));
      CHECK(ops::allclose(grads[0][0], grads[1][0], 1e-4, 1e-4));
      CHECK(ops::allclose(grads[0][1], grads[1][1], 1e-4, 1e-3));  // sums over 200 rows
      if (!rms) CHECK(ops::allclose(grads[0][2], grads[1][2], 1e-4, 1e-3));
    }
  }
}
