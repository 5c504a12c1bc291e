// Chapter 1: tensors. Large float32 elementwise and row-wise kernels split over the worker pool give
// bit-identical results on 1 and 2 threads, and the same values as a plain loop.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "tensor/activations.h"
#include "tensor/cpu.h"
#include "tensor/norm.h"
#include "tensor/ops.h"
#include "tensor/error.h"
#include "tensor/rng.h"
#include "tensor/threads.h"

using namespace gradlab;

namespace {
struct ThreadCountGuard {
  int saved = max_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

Tensor randn(const Shape& shape, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return Tensor::from_floats(shape, v);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous() &&
         std::memcmp(a.data<float>(), b.data<float>(), static_cast<std::size_t>(a.numel()) * 4) == 0;
}

// Every parallelised kernel on (N, C) inputs, in a fixed order.
std::vector<Tensor> run_all(std::int64_t N, std::int64_t C) {
  Tensor a = randn({N, C}, 1), b = randn({N, C}, 2), row = randn({C}, 3), g = randn({N, C}, 4);
  std::vector<Tensor> out;
  out.push_back(ops::add(a, b));
  out.push_back(ops::sub(a, b));
  out.push_back(ops::mul(a, b));
  out.push_back(ops::add(a, row));  // bias add: row broadcast
  out.push_back(ops::sub(row, a));  // the broadcast operand on the left
  out.push_back(ops::mul(row, a));
  Tensor acc = a.clone();
  ops::add_inplace(acc, b);
  out.push_back(acc);
  out.push_back(b.clone());
  out.push_back(ops::sum(a, {0}));  // bias gradient: columns split, each summed by one thread
  Tensor y = Tensor::empty({N, C}), dx = Tensor::empty({N, C});
  kernels::gelu_forward(a.data<float>(), y.data<float>(), N * C);
  kernels::gelu_backward(a.data<float>(), g.data<float>(), dx.data<float>(), N * C);
  out.push_back(y);
  out.push_back(dx);
  Tensor ln = Tensor::empty({N, C}), mean = Tensor::empty({N}), rstd = Tensor::empty({N});
  Tensor lndx = Tensor::empty({N, C}), dw = Tensor::empty({C}), db = Tensor::empty({C});
  kernels::norm_forward(a.data<float>(), row.data<float>(), b.data<float>(), ln.data<float>(), mean.data<float>(),
                        rstd.data<float>(), N, C, 1e-5f, false);
  kernels::norm_backward(g.data<float>(), a.data<float>(), row.data<float>(), mean.data<float>(), rstd.data<float>(),
                         lndx.data<float>(), dw.data<float>(), db.data<float>(), N, C, false);
  for (const Tensor& t : {ln, mean, rstd, lndx, dw, db}) out.push_back(t);
  return out;
}

const char* kNames[] = {"add",   "sub",       "mul",  "add row", "row - a", "row * a", "add_inplace", "clone", "sum",
                        "gelu",  "gelu back", "norm", "mean",    "rstd",    "norm dx", "norm dw",     "norm db"};
}  // namespace

TEST_SUITE("tensor") {
  TEST_CASE("parallel elementwise and row kernels: bit-identical on 1 and 2 threads") {
    ThreadCountGuard guard;
    // (768, 128) and (768, 512) are the tiny GPT's activations; 333 x 131 has odd rows and a ragged tail
    for (auto shape : {std::pair<std::int64_t, std::int64_t>{768, 128}, {768, 512}, {333, 131}}) {
      const std::int64_t N = shape.first, C = shape.second;  // not a structured binding: INFO captures them
      REQUIRE(N * C >= kParallelMinElements);  // large enough to be split
      set_num_threads(1);
      auto one = run_all(N, C);
      set_num_threads(2);
      if (max_threads() < 2) {
        MESSAGE("only one thread is available here: nothing to compare");
        return;
      }
      auto two = run_all(N, C);
      REQUIRE(one.size() == two.size());
      for (std::size_t i = 0; i < one.size(); ++i) {
        INFO(N << " x " << C << ": " << kNames[i]);
        CHECK(same_bits(one[i], two[i]));
      }
    }
  }

  TEST_CASE("parallel elementwise fast paths give the values of a plain loop") {
    ThreadCountGuard guard;
    set_num_threads(2);
    const std::int64_t N = 300, C = 200;
    Tensor a = randn({N, C}, 5), b = randn({N, C}, 6), row = randn({C}, 7);
    Tensor sum = ops::add(a, b), diff = ops::sub(row, a), prod = ops::mul(a, row);
    Tensor acc = a.clone();
    ops::add_inplace(acc, b);
    Tensor col = ops::sum(a, {0});
    const float *pa = a.data<float>(), *pb = b.data<float>(), *pr = row.data<float>();
    bool ok = true;
    for (std::int64_t i = 0; i < N * C; ++i) {
      const std::int64_t j = i % C;
      ok = ok && sum.data<float>()[i] == pa[i] + pb[i] && diff.data<float>()[i] == pr[j] - pa[i] &&
           prod.data<float>()[i] == pa[i] * pr[j] && acc.data<float>()[i] == pa[i] + pb[i];
    }
    CHECK(ok);
    for (std::int64_t j = 0; j < C; ++j) {
      double s = 0;
      for (std::int64_t i = 0; i < N; ++i) s += pa[i * C + j];
      CHECK(col.data<float>()[j] == static_cast<float>(s));
    }
    // an overlapping copy between views of one storage still behaves like memmove
    Tensor big = Tensor::arange(100000);
    big.narrow(0, 1, 99999).copy_(big.narrow(0, 0, 99999));
    CHECK(big.at({0}) == 0.0);
    CHECK(big.at({1}) == 0.0);
    CHECK(big.at({99999}) == 99998.0);
  }

  TEST_CASE("row and activation kernels refuse bad sizes and null arrays with a message that names them") {
    std::vector<float> a(8, 1.0f), b(8), r(2), r2(2), w(4, 1.0f), dw(4);
    CHECK_THROWS_WITH_AS(kernels::gelu_forward(a.data(), b.data(), -1), doctest::Contains("gelu_forward: got n = -1"),
                         Error);
    CHECK_THROWS_WITH_AS(kernels::gelu_backward(a.data(), nullptr, b.data(), 8),
                         doctest::Contains("gelu_backward: got n = 8, expected n >= 0 and non-null"), Error);
    CHECK_THROWS_WITH_AS(kernels::norm_forward(a.data(), w.data(), nullptr, b.data(), r.data(), r2.data(), 2, 0, 1e-5f,
                                               false),
                         doctest::Contains("norm_forward: got N = 2, C = 0"), Error);
    CHECK_THROWS_WITH_AS(kernels::norm_backward(a.data(), a.data(), w.data(), r.data(), r2.data(), b.data(), nullptr,
                                                nullptr, 2, 4, false),
                         doctest::Contains("norm_backward: got N = 2, C = 4"), Error);
    // the empty case is legal: nothing to do, nothing read
    CHECK_NOTHROW(kernels::gelu_forward(nullptr, nullptr, 0));
  }
}
