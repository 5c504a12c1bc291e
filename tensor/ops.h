#pragma once
// Numeric operations on Tensors, with no autograd: the kernels that autograd/ calls in its forward and
// backward functions. Grouped by family: broadcasting, elementwise maps, reductions, matmul, softmax.
//
// Broadcasting follows NumPy: shapes are aligned at the right; a dimension of size 1 stretches to match.
// (3, 1, 5) with (4, 5) gives (3, 4, 5).
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensor/strided.h"
#include "tensor/tensor.h"

namespace gradlab::ops {

// ---- broadcasting ------------------------------------------------------------------------------------------
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Sums a gradient of a broadcast result back down to `shape` (the inverse of broadcasting).
Tensor sum_to_shape(const Tensor& t, const Shape& shape);

// ---- elementwise maps ----------------------------------------------------------------------------------
// map(x, f) applies f to every element; f is a generic lambda so one definition serves float and double.
template <typename F>
Tensor map(const Tensor& x, F f);
// zip(a, b, f) broadcasts a and b (same dtype) and applies f(a_i, b_i).
template <typename F>
Tensor zip(const char* op, const Tensor& a, const Tensor& b, F f);

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& a, double s);
Tensor mul_scalar(const Tensor& a, double s);
void add_inplace(Tensor& acc, const Tensor& x);  // acc += x (x broadcast to acc's shape); acc contiguous

// ---- reductions ---------------------------------------------------------------------------------------
// axes empty = all axes. Negative axes count from the end.
Tensor sum(const Tensor& x, std::vector<std::int64_t> axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, std::vector<std::int64_t> axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, std::int64_t axis, bool keepdim = false);
Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdim = false);  // indices stored as the input dtype

// ---- matmul -------------------------------------------------------------------------------------------
// a is (..., M, K), b is (..., K, N) -> (..., M, N); batch dimensions broadcast. Transposed views are
// passed to the kernel as transposed operands, without a copy.
Tensor matmul(const Tensor& a, const Tensor& b);
// c (..., M, N) += alpha * a @ b, for accumulating gradients in place; shapes must match exactly.
void matmul_accumulate(Tensor& c, const Tensor& a, const Tensor& b, double alpha = 1.0);

// ---- softmax ------------------------------------------------------------------------------------------
// Along the last dimension; -inf entries get probability 0 (a row must have one finite entry).
Tensor softmax_lastdim(const Tensor& x);
Tensor log_softmax_lastdim(const Tensor& x);

// ---- comparisons used by tests and lessons ------------------------------------------------------------
// max |a - b| / (atol + rtol * |b|) <= 1 elementwise; shapes must match.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
double max_abs_diff(const Tensor& a, const Tensor& b);

// =========================================================================================================
// Template definitions.

namespace detail {
using gradlab::for_each_offset;

template <typename T>
const T* base_ptr(const Tensor& t) {
  return t.data<T>() - t.offset();
}

template <typename T, typename F>
Tensor map_typed(const Tensor& x, F& f) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  T* o = out.data<T>();
  if (x.is_contiguous()) {
    const T* p = x.data<T>();
    const std::int64_t n = x.numel();
    for (std::int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(f(p[i]));
  } else {
    const T* base = base_ptr<T>(x);
    std::int64_t k = 0;
    for_each_offset(x.shape(), x.strides(), x.offset(), [&](std::int64_t off) { o[k++] = static_cast<T>(f(base[off])); });
  }
  return out;
}

template <typename T, typename F>
Tensor zip_typed(const Shape& shape, const Tensor& a, const Tensor& b, F& f) {
  Tensor out = Tensor::empty(shape, a.dtype());
  T* o = out.data<T>();
  if (a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()) {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    const std::int64_t n = out.numel();
    for (std::int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(f(pa[i], pb[i]));
    return out;
  }
  Tensor ea = a.expand(shape), eb = b.expand(shape);
  // Common case in nn code: b broadcast along leading dims of a contiguous a (bias add, scale).
  if (ea.is_contiguous() && b.is_contiguous() && shape.size() >= 1) {
    std::int64_t inner = b.numel();
    bool trailing = b.dim() <= static_cast<std::int64_t>(shape.size()) &&
                    std::equal(b.shape().begin(), b.shape().end(), shape.end() - b.dim());
    if (trailing && inner > 0) {
      const T* pa = ea.data<T>();
      const T* pb = b.data<T>();
      const std::int64_t n = out.numel();
      for (std::int64_t i = 0; i < n; i += inner)
        for (std::int64_t j = 0; j < inner; ++j) o[i + j] = static_cast<T>(f(pa[i + j], pb[j]));
      return out;
    }
  }
  std::vector<std::int64_t> offs_b;
  offs_b.reserve(static_cast<std::size_t>(out.numel()));
  for_each_offset(eb.shape(), eb.strides(), eb.offset(), [&](std::int64_t off) { offs_b.push_back(off); });
  const T* base_a = base_ptr<T>(ea);
  const T* base_b = base_ptr<T>(eb);
  std::int64_t k = 0;
  for_each_offset(ea.shape(), ea.strides(), ea.offset(), [&](std::int64_t off) {
    o[k] = static_cast<T>(f(base_a[off], base_b[offs_b[k]]));
    ++k;
  });
  return out;
}
}  // namespace detail

template <typename F>
Tensor map(const Tensor& x, F f) {
  if (!x.defined()) throw_error("map: the input tensor is undefined");
  if (x.dtype() == DType::F32) return detail::map_typed<float>(x, f);
  return detail::map_typed<double>(x, f);
}

template <typename F>
Tensor zip(const char* op, const Tensor& a, const Tensor& b, F f) {
  if (!a.defined() || !b.defined()) throw_error(op, ": an input tensor is undefined");
  if (a.dtype() != b.dtype())
    throw_error(op, ": got dtypes ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()), ", expected the same dtype");
  Shape shape = broadcast_shapes(op, a.shape(), b.shape());
  if (a.dtype() == DType::F32) return detail::zip_typed<float>(shape, a, b, f);
  return detail::zip_typed<double>(shape, a, b, f);
}

}  // namespace gradlab::ops
