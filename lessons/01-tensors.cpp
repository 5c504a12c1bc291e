// Lesson 01: tensors. A tensor is a flat block of numbers plus (shape, strides, offset). Views change the
// three numbers and never move data; broadcasting is a view with stride 0.
#include <cmath>
#include <string>
#include <vector>

#include "lessons/lesson.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

std::string vec_str(const std::vector<std::int64_t>& v) { return shape_str(v); }

// "shape (3, 4)  strides (4, 1)  offset 0  contiguous yes"
std::string geometry(const Tensor& t) {
  return "shape " + shape_str(t.shape()) + "  strides " + vec_str(t.strides()) + "  offset " +
         std::to_string(t.offset()) + "  contiguous " + (t.is_contiguous() ? "yes" : "no");
}

// For a 2-D tensor: the storage index each element reads, offset + i*s0 + j*s1.
std::string layout(const Tensor& t) {
  std::string out;
  for (std::int64_t i = 0; i < t.size(0); ++i) {
    out += "  [";
    for (std::int64_t j = 0; j < t.size(1); ++j)
      out += fmt("%4lld", (long long)(t.offset() + i * t.strides()[0] + j * t.strides()[1]));
    out += " ]\n";
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{1, "tensors", "Tensors: shape, strides, views and broadcasting", 1};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    // ------------------------------------------------------------------------------------------------------
    L.step("Storage, shape, strides");
    L.say("Memory is one flat row of numbers. A tensor adds a shape and strides: element (i0, i1, ...) lives at");
    L.say("    storage[offset + i0*strides[0] + i1*strides[1] + ...]        (strides count elements)");
    Tensor base = Tensor::arange(12);
    Tensor a = base.view({3, 4});
    L.say("a = arange(12).view({3, 4}):");
    L.say(a.str());
    L.say(geometry(a));
    L.say("Storage index read by each element (row-major: the last index moves fastest):");
    L.say(layout(a));
    const float* raw = a.data<float>();
    L.check(a.at({1, 2}) == raw[1 * 4 + 2 * 1], "a[1, 2] is storage[1*4 + 2*1] = 6", fmt("%g", a.at({1, 2})));
    L.check(a.shares_storage(base), "view() made no copy: a and arange(12) share one storage");

    // ------------------------------------------------------------------------------------------------------
    L.step("Transpose is a view");
    Tensor t = a.transpose(0, 1);
    L.say("t = a.transpose(0, 1) swaps the shape AND the strides; not one number moves:");
    L.say(geometry(t));
    L.say(layout(t));
    L.check(t.shares_storage(a) && !t.is_contiguous(), "t shares a's storage and is not contiguous");
    t.set({2, 1}, 100.0);
    L.sayf("After t[2, 1] = 100, a[1, 2] = %g: one number, two names.", a.at({1, 2}));
    L.check(a.at({1, 2}) == 100.0, "writing through the view changed the original");
    t.set({2, 1}, 6.0);

    // ------------------------------------------------------------------------------------------------------
    L.step("Slicing moves the offset");
    Tensor col = a.select(1, 2);  // column 2
    L.say("col = a.select(1, 2), the third column: offset 2, stride 4 (jump a whole row each step).");
    L.say(geometry(col) + "   values " + col.str());
    Tensor mid = a.narrow(0, 1, 2).narrow(1, 1, 2);
    L.say("mid = rows 1..2, columns 1..2 (narrow twice):");
    L.say(geometry(mid));
    L.say(layout(mid));
    L.check(mid.offset() == 5 && mid.at({0, 0}) == 5.0, "the 2x2 window starts at storage index 5");

    // ------------------------------------------------------------------------------------------------------
    L.step("When a copy is needed");
    L.say("view() only relabels contiguous memory. t's rows are not contiguous, so t.view({12}) cannot exist:");
    std::string message;
    try {
      t.view({12});
    } catch (const Error& e) {
      message = e.what();
    }
    L.say("  error: " + message);
    L.check(!message.empty(), "view() of a transposed tensor is refused with a message");
    Tensor tc = t.contiguous();
    L.say("t.contiguous() copies into fresh row-major storage:");
    L.say(geometry(tc));
    L.check(!tc.shares_storage(t) && tc.is_contiguous(), "contiguous() made a new storage");
    Tensor flat = t.reshape({12});
    L.say("reshape() = view when possible, else contiguous() + view:  " + flat.str());
    L.check(!flat.shares_storage(t) && flat.at({1}) == 4.0, "reshape of t copied (reading down a's columns: 0 4 8 1 ...)");

    // ------------------------------------------------------------------------------------------------------
    L.step("Broadcasting: stride 0");
    L.say("NumPy's rule: align shapes at the right; each pair of sizes must be equal or one of them 1, which");
    L.say("stretches. (3, 1) with (4,) gives (3, 4). Stretching is free: a stride of 0 re-reads the same number.");
    Tensor colv = Tensor::from_values({3, 1}, {0, 10, 20});
    Tensor rowv = Tensor::from_values({4}, {1, 2, 3, 4});
    Tensor e = rowv.expand({3, 4});
    L.say("rowv.expand({3, 4}): " + geometry(e));
    L.say(layout(e));
    L.check(e.strides()[0] == 0, "the stretched dimension has stride 0");
    Tensor sum = ops::add(colv, rowv);
    L.say("colv (3, 1) + rowv (4,) =");
    L.say(sum.str());
    L.check(sum.shape() == Shape{3, 4} && sum.at({2, 3}) == 24.0, "(3, 1) + (4,) -> (3, 4), element [2, 3] = 20 + 4");
    std::string bad;
    try {
      ops::add(Tensor::zeros({3}), Tensor::zeros({4}));
    } catch (const Error& err) {
      bad = err.what();
    }
    L.say("(3,) + (4,) does not broadcast:  " + bad);
    L.check(!bad.empty(), "incompatible shapes are an error, not a guess");
    L.say("Backward of a broadcast is a sum: every stretched copy received a gradient, and they add up");
    L.say("(ops::sum_to_shape). Lesson 05 meets it in the gradient of layernorm's weight.");
    Tensor g = ops::sum_to_shape(Tensor::ones({3, 4}), {4});
    L.check(g.at({0}) == 3.0, "sum_to_shape((3, 4) ones -> (4,)) gives 3 per column", g.str());

    // ------------------------------------------------------------------------------------------------------
    L.step("Layout matters for speed");
    const std::int64_t n = L.quick() ? 512 : 2048;
    Tensor big = Tensor::ones({n, n});
    const float* p = big.data<float>();
    auto time_sum = [&](bool by_rows) {
      const double t0 = lesson::now_seconds();
      double s = 0;
      for (int rep = 0; rep < 3; ++rep)
        for (std::int64_t i = 0; i < n; ++i)
          for (std::int64_t j = 0; j < n; ++j) s += by_rows ? p[i * n + j] : p[j * n + i];
      return std::make_pair(s, (lesson::now_seconds() - t0) / 3);
    };
    auto [s_rows, t_rows] = time_sum(true);
    auto [s_cols, t_cols] = time_sum(false);
    L.sayf("Summing a %lld x %lld matrix: along rows (stride 1) %.2f ms, down columns (stride %lld) %.2f ms.",
           (long long)n, (long long)n, t_rows * 1e3, (long long)n, t_cols * 1e3);
    L.say("Same arithmetic, same result; the column walk touches a new cache line for every number.");
    L.say("This is why kernels want contiguous inputs, and why lesson 04's matmul packs its operands.");
    L.check(s_rows == s_cols, "both orders give the same sum");
  });
}
