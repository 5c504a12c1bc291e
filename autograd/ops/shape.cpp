// Shape ops. Forward passes are views where the tensor allows; backward passes undo the view on the gradient.
#include <numeric>

#include "autograd/ops.h"
#include "tensor/ops.h"

namespace gradlab {

Var reshape(const Var& a, const Shape& shape) {
  // out = a viewed as `shape`
  Shape in_shape = a.shape();
  return make_result(a.data().reshape(shape), "reshape", {a}, [in_shape](std::vector<Var>& in, const Tensor& g) {
    in[0].add_grad(g.reshape(in_shape));
  });
}

Var contiguous(const Var& a) {
  return make_result(a.data().contiguous(), "contiguous", {a},
                     [](std::vector<Var>& in, const Tensor& g) { in[0].add_grad(g); });
}

Var transpose(const Var& a, std::int64_t d0, std::int64_t d1) {
  // out = a with dimensions d0 and d1 swapped
  return make_result(a.data().transpose(d0, d1), "transpose", {a}, [d0, d1](std::vector<Var>& in, const Tensor& g) {
    in[0].add_grad(g.transpose(d0, d1));
  });
}

Var permute(const Var& a, const std::vector<std::int64_t>& dims) {
  // out dimension i = a dimension dims[i]; the backward applies the inverse permutation
  Tensor out = a.data().permute(dims);
  std::vector<std::int64_t> inverse(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) inverse[wrap_dim("permute", dims[i], a.dim())] = static_cast<std::int64_t>(i);
  return make_result(out, "permute", {a}, [inverse](std::vector<Var>& in, const Tensor& g) {
    in[0].add_grad(g.permute(inverse));
  });
}

Var slice(const Var& a, std::int64_t dim, std::int64_t start, std::int64_t end) {
  std::int64_t d = wrap_dim("slice", dim, a.dim());
  if (start < 0 || end < start || end > a.shape()[d])
    throw_error("slice: got [", start, ", ", end, ") on dimension ", d, " of shape ", shape_str(a.shape()),
                ", expected 0 <= start <= end <= ", a.shape()[d]);
  // out = a[..., start:end, ...]
  return make_result(a.data().narrow(d, start, end - start), "slice", {a},
                     [d, start, end](std::vector<Var>& in, const Tensor& g) {
                       // the gradient lands in the slice; elsewhere it is 0
                       Tensor full = Tensor::zeros(in[0].shape(), g.dtype());
                       Tensor window = full.narrow(d, start, end - start);
                       window.copy_(g);
                       in[0].add_grad(full);
                     });
}

Var concat(const std::vector<Var>& parts, std::int64_t dim) {
  if (parts.empty()) throw_error("concat: got no tensors, expected at least one");
  const Shape& first = parts[0].shape();
  std::int64_t d = wrap_dim("concat", dim, static_cast<std::int64_t>(first.size()));
  std::int64_t total = 0;
  for (const auto& p : parts) {
    const Shape& s = p.shape();
    bool same = s.size() == first.size() && p.dtype() == parts[0].dtype();
    for (std::size_t i = 0; same && i < s.size(); ++i) same = static_cast<std::int64_t>(i) == d || s[i] == first[i];
    if (!same)
      throw_error("concat: got shapes ", shape_str(first), " and ", shape_str(s), " (", dtype_name(parts[0].dtype()),
                  ", ", dtype_name(p.dtype()), "), expected equal shapes and dtypes except along dimension ", d);
    total += s[d];
  }
  // out = [part0 | part1 | ...] along d
  Shape out_shape = first;
  out_shape[d] = total;
  Tensor out = Tensor::empty(out_shape, parts[0].dtype());
  std::vector<std::int64_t> sizes;
  std::int64_t at = 0;
  for (const auto& p : parts) {
    out.narrow(d, at, p.shape()[d]).copy_(p.data());
    sizes.push_back(p.shape()[d]);
    at += p.shape()[d];
  }
  return make_result(out, "concat", parts, [sizes, d](std::vector<Var>& in, const Tensor& g) {
    // each part gets its own window of the gradient
    std::int64_t pos = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i].requires_grad()) in[i].add_grad(g.narrow(d, pos, sizes[i]));
      pos += sizes[i];
    }
  });
}

std::vector<Var> split(const Var& a, const std::vector<std::int64_t>& sizes, std::int64_t dim) {
  std::int64_t d = wrap_dim("split", dim, a.dim());
  std::int64_t total = std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0});
  if (total != a.shape()[d])
    throw_error("split: sizes add up to ", total, " but dimension ", d, " of shape ", shape_str(a.shape()), " is ",
                a.shape()[d]);
  std::vector<Var> out;
  std::int64_t at = 0;
  for (auto s : sizes) {
    out.push_back(slice(a, d, at, at + s));
    at += s;
  }
  return out;
}

}  // namespace gradlab
