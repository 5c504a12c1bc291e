// Chapter 1: tensors. Shape, strides, views that share storage, broadcasting, reductions, printing.
#include <doctest/doctest.h>

#include <sstream>

#include "tensor/ops.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"

using namespace gradlab;

TEST_SUITE("tensor") {
  TEST_CASE("contiguous strides are row-major") {
    Tensor t = Tensor::zeros({2, 3, 4});
    CHECK(t.strides() == Strides{12, 4, 1});
    CHECK(t.numel() == 24);
    CHECK(t.is_contiguous());
  }

  TEST_CASE("contiguous: an empty tensor is contiguous whatever the position of its zero") {
    for (const Shape& shape : {Shape{0}, Shape{0, 3}, Shape{3, 0}, Shape{2, 0, 4}}) {
      CAPTURE(shape.size());
      CHECK(Tensor::zeros(shape).is_contiguous());
    }
  }

  TEST_CASE("creation: arange / full / from_values / 4-d and 0-d") {
    Tensor a = Tensor::arange(5, DType::F64);
    CHECK(a.to_vector() == std::vector<double>{0, 1, 2, 3, 4});
    Tensor f = Tensor::full({2, 2}, 7.5);
    CHECK(f.at({1, 1}) == 7.5);
    Tensor four = Tensor::ones({2, 1, 3, 2});
    CHECK(four.dim() == 4);
    Tensor s = Tensor::scalar(3.0);
    CHECK(s.dim() == 0);
    CHECK(s.item() == 3.0);
    CHECK_THROWS_WITH_AS(Tensor::from_values({2, 2}, {1, 2, 3}), "from_values: got 3 values for shape (2, 2), expected 4",
                         Error);
    CHECK_THROWS_AS(Tensor::zeros({2, -1}), Error);
  }

  TEST_CASE("views share storage: transpose / permute / narrow / select / reshape") {
    Tensor t = Tensor::from_values({2, 3}, {0, 1, 2, 3, 4, 5});
    Tensor tt = t.transpose(0, 1);
    CHECK(tt.shape() == Shape{3, 2});
    CHECK(tt.strides() == Strides{1, 3});
    CHECK(!tt.is_contiguous());
    CHECK(tt.shares_storage(t));
    CHECK(tt.at({2, 1}) == 5);
    Tensor n = t.narrow(1, 1, 2);
    CHECK(n.offset() == 1);
    CHECK(n.to_vector() == std::vector<double>{1, 2, 4, 5});
    n.fill_(9);
    CHECK(t.to_vector() == std::vector<double>{0, 9, 9, 3, 9, 9});  // the view wrote through
    Tensor r = t.reshape({3, 2});
    CHECK(r.shares_storage(t));
    Tensor rc = tt.reshape({6});  // not viewable: copies
    CHECK(!rc.shares_storage(t));
    CHECK(rc.to_vector() == std::vector<double>{0, 3, 9, 9, 9, 9});
    Tensor p = Tensor::zeros({2, 3, 4}).permute({2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.strides() == Strides{1, 12, 4});
    CHECK(t.select(0, 1).to_vector() == std::vector<double>{3, 9, 9});
    CHECK_THROWS_WITH_AS(t.view({4, 2}), "view: cannot reshape (2, 3) (6 elements) into (4, 2) (8 elements)", Error);
    CHECK_THROWS_AS(t.narrow(1, 2, 5), Error);
  }

  TEST_CASE("contiguous and clone copy - to() converts dtypes") {
    Tensor t = Tensor::from_values({2, 2}, {1, 2, 3, 4}).transpose(0, 1);
    Tensor c = t.contiguous();
    CHECK(c.is_contiguous());
    CHECK(c.to_vector() == std::vector<double>{1, 3, 2, 4});
    Tensor d = c.to(DType::F64);
    CHECK(d.dtype() == DType::F64);
    CHECK(d.to_vector() == c.to_vector());
    Tensor k = c.clone();
    k.set({0, 0}, 100);
    CHECK(c.at({0, 0}) == 1);
  }

  TEST_CASE("broadcasting follows NumPy") {
    CHECK(ops::broadcast_shapes("add", {3, 1, 5}, {4, 5}) == Shape{3, 4, 5});
    Tensor a = Tensor::from_values({2, 1}, {1, 2});
    Tensor b = Tensor::from_values({3}, {10, 20, 30});
    CHECK(ops::add(a, b).to_vector() == std::vector<double>{11, 21, 31, 12, 22, 32});
    CHECK_THROWS_WITH_AS(ops::add(Tensor::zeros({2, 3}), Tensor::zeros({4})),
                         "add: shapes (2, 3) and (4,) do not broadcast (sizes must match or be 1, aligned from the right)",
                         Error);
    CHECK(ops::sum_to_shape(ops::add(a, b), {3}).to_vector() == std::vector<double>{23, 43, 63});
  }

  TEST_CASE("reductions over axes with keepdim") {
    Tensor t = Tensor::from_values({2, 3}, {1, 5, 3, 4, 2, 6});
    CHECK(ops::sum(t).item() == 21);
    CHECK(ops::sum(t, {0}).to_vector() == std::vector<double>{5, 7, 9});
    CHECK(ops::sum(t, {1}, true).shape() == Shape{2, 1});
    CHECK(ops::mean(t, {-1}).to_vector() == std::vector<double>{3, 4});
    CHECK(ops::max(t, 1).to_vector() == std::vector<double>{5, 6});
    CHECK(ops::argmax(t, 1).to_vector() == std::vector<double>{1, 2});
    CHECK_THROWS_AS(ops::sum(t, {2}), Error);
  }

  TEST_CASE("matmul: batched / broadcast / transposed views / float64") {
    Tensor a = Tensor::from_values({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor b = Tensor::from_values({3, 2}, {7, 8, 9, 10, 11, 12});
    CHECK(ops::matmul(a, b).to_vector() == std::vector<double>{58, 64, 139, 154});
    // a^T as a view: no copy is needed, result matches the copied version
    Tensor at = a.transpose(0, 1);
    CHECK(ops::matmul(at, a).to_vector() == ops::matmul(at.contiguous(), a).to_vector());
    Tensor batch = Tensor::from_values({2, 2, 3}, {1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0});
    Tensor out = ops::matmul(batch, b);
    CHECK(out.shape() == Shape{2, 2, 2});
    CHECK(out.to_vector() == std::vector<double>{58, 64, 139, 154, 7, 8, 9, 10});
    Tensor a64 = a.to(DType::F64), b64 = b.to(DType::F64);
    CHECK(ops::matmul(a64, b64).to_vector() == std::vector<double>{58, 64, 139, 154});
    CHECK_THROWS_WITH_AS(ops::matmul(a, a),
                         "matmul: got shapes (2, 3) and (2, 3), expected a's last dimension (3) to equal b's "
                         "second-to-last (2)",
                         Error);
  }

  TEST_CASE("softmax rows sum to one and handle -inf") {
    Tensor x = Tensor::from_values({2, 3}, {1, 2, 3, 0, -INFINITY, 0});
    Tensor s = ops::softmax_lastdim(x);
    auto v = s.to_vector();
    CHECK(v[0] + v[1] + v[2] == doctest::Approx(1.0));
    CHECK(v[4] == 0.0);
    CHECK(v[3] == doctest::Approx(0.5));
    CHECK_THROWS_AS(ops::softmax_lastdim(Tensor::full({1, 2}, -INFINITY)), Error);
  }

  TEST_CASE("printing looks like NumPy") {
    Tensor t = Tensor::from_values({2, 2}, {1, 2, 3, 4});
    CHECK(t.str() == "tensor([[1, 2],\n        [3, 4]], shape=(2, 2), float32)");
  }

  TEST_CASE("Rng: PCG32 stream is fixed across platforms") {
    // The reference values of PCG32 with seed 42, stream 54 (pcg32-demo's documented output).
    Rng rng(42, 54);
    CHECK(rng.next_u32() == 0xa15c02b7u);
    CHECK(rng.next_u32() == 0x7b47f409u);
    CHECK(rng.next_u32() == 0xba1d3330u);
    Rng a(7), b(7);
    for (int i = 0; i < 100; ++i) CHECK(a.normal() == b.normal());
    Rng u(1);
    double sum = 0, sq = 0;
    for (int i = 0; i < 20000; ++i) {
      double z = u.normal();
      sum += z;
      sq += z * z;
    }
    CHECK(std::abs(sum / 20000) < 0.03);
    CHECK(std::abs(sq / 20000 - 1) < 0.05);
    auto state = u.get_state();
    double next = u.normal();
    u.set_state(state);
    CHECK(u.normal() == next);
  }
}
