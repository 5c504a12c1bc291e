// Reductions. The backward of a reduction broadcasts the output gradient back over the reduced axes.
#include <algorithm>
#include <numeric>

#include "autograd/ops.h"
#include "tensor/ops.h"

namespace gradlab {

namespace {
// Shape of the output with the reduced axes kept as size 1, so a gradient can broadcast back.
Shape keepdim_shape(const Shape& in, std::vector<std::int64_t> axes) {
  Shape s = in;
  if (axes.empty()) {
    std::fill(s.begin(), s.end(), 1);
    return s;
  }
  for (auto a : axes) s[wrap_dim("sum", a, static_cast<std::int64_t>(in.size()))] = 1;
  return s;
}
}  // namespace

Var sum(const Var& a, std::vector<std::int64_t> axes, bool keepdim) {
  // out = sum over axes of a
  Tensor out = ops::sum(a.data(), axes, keepdim);
  Shape kept = keepdim_shape(a.shape(), axes);
  return make_result(out, "sum", {a}, [kept](std::vector<Var>& in, const Tensor& g) {
    // every summed element contributes with weight 1
    Tensor full = Tensor::empty(in[0].shape(), g.dtype());
    full.copy_(g.reshape(kept));
    in[0].add_grad(full);
  });
}

Var mean(const Var& a, std::vector<std::int64_t> axes, bool keepdim) {
  std::int64_t count = 1;
  if (axes.empty())
    count = a.data().numel();
  else
    for (auto ax : axes) count *= a.shape()[wrap_dim("mean", ax, a.dim())];
  if (count == 0) throw_error("mean: got shape ", shape_str(a.shape()), ", expected a non-empty reduction");
  // out = sum(a) / count
  return mul_scalar(sum(a, std::move(axes), keepdim), 1.0 / static_cast<double>(count));
}

Var max(const Var& a, std::int64_t axis, bool keepdim) {
  // out = max over one axis of a
  std::int64_t ax = wrap_dim("max", axis, a.dim());
  Tensor out = ops::max(a.data(), ax, keepdim);
  Tensor where = ops::argmax(a.data(), ax, /*keepdim=*/true);
  return make_result(out, "max", {a}, [where, ax](std::vector<Var>& in, const Tensor& g) {
    // only the (first) maximum receives the gradient
    Tensor gk = g.reshape(where.shape());
    Tensor grad = Tensor::zeros(in[0].shape(), g.dtype());
    const auto& shape = in[0].shape();
    std::int64_t outer = 1, inner = 1;
    for (std::int64_t d = 0; d < ax; ++d) outer *= shape[d];
    for (std::int64_t d = ax + 1; d < static_cast<std::int64_t>(shape.size()); ++d) inner *= shape[d];
    auto idx = where.to_vector();
    auto gv = gk.contiguous().to_vector();
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        std::int64_t k = static_cast<std::int64_t>(idx[o * inner + i]);
        std::int64_t flat = (o * shape[ax] + k) * inner + i;
        if (grad.dtype() == DType::F32)
          grad.data<float>()[flat] = static_cast<float>(gv[o * inner + i]);
        else
          grad.data<double>()[flat] = gv[o * inner + i];
      }
    in[0].add_grad(grad);
  });
}

}  // namespace gradlab
