#include "tensor/ops.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <type_traits>

#include "tensor/threads.h"
#include "tensor/fastmath.h"
#include "tensor/gemm.h"

namespace gradlab::ops {

// ---- broadcasting ------------------------------------------------------------------------------------------

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()));
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::int64_t da = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    std::int64_t db = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (da != db && da != 1 && db != 1)
      throw_error(op, ": shapes ", shape_str(a), " and ", shape_str(b),
                  " do not broadcast (sizes must match or be 1, aligned from the right)");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor sum_to_shape(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  // exercise 01.1 begin: the broadcasting reduction: sum a gradient back to an input's shape
  const std::size_t lead = t.shape().size() - shape.size();
  std::vector<std::int64_t> axes;
  for (std::size_t i = 0; i < t.shape().size(); ++i) {
    if (i < lead || (shape[i - lead] == 1 && t.shape()[i] != 1)) axes.push_back(static_cast<std::int64_t>(i));
  }
  Tensor s = sum(t, axes, /*keepdim=*/true);
  return s.reshape(shape);
  // exercise 01.1 end
}

// ---- elementwise ------------------------------------------------------------------------------------------

// float32 fast path for the hot binary ops of a training step: a contiguous `full` with `other` of the same
// shape or broadcast along the leading dimensions (a bias row), large enough to split over the worker pool.
// f(full_i, other_j) keeps the operand order of the op (swapped marks other as the left operand).
// Returns an undefined Tensor when the case does not apply; ops.h's zip handles everything else.
template <typename F>
static Tensor zip_f32_rows(const Tensor& full, const Tensor& other, bool swapped, F f) {
  if (full.dtype() != DType::F32 || other.dtype() != DType::F32 || !full.is_contiguous() || !other.is_contiguous() ||
      full.numel() < kParallelMinElements || other.dim() > full.dim() ||
      !std::equal(other.shape().begin(), other.shape().end(), full.shape().end() - other.dim()) || other.numel() == 0)
    return Tensor();
  // full is (rows, inner) with other (inner); same shapes give one row
  const std::int64_t inner = other.numel(), rows = full.numel() / inner;
  if (rows > 1 && inner < 16) return Tensor();  // short rows (a broadcast scalar): the generic loop
  Tensor out = Tensor::empty(full.shape(), DType::F32);
  const float* pf = full.data<float>();
  const float* po = other.data<float>();
  float* pr = out.data<float>();
  auto run = [&](std::int64_t i0, std::int64_t i1, const float* row) {
    if (swapped)
      for (std::int64_t i = i0; i < i1; ++i) pr[i] = f(row[i - i0], pf[i]);
    else
      for (std::int64_t i = i0; i < i1; ++i) pr[i] = f(pf[i], row[i - i0]);
  };
  if (rows == 1) {  // same shapes: split the elements
    parallel_ranges(inner, 1, [&](std::int64_t i0, std::int64_t i1) { run(i0, i1, po + i0); });
  } else {  // a row broadcast: split the rows
    parallel_ranges(rows, inner, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) run(r * inner, (r + 1) * inner, po);
    });
  }
  return out;
}

// Tries (a, b) with b as the broadcast operand, then (b, a).
template <typename F>
static Tensor zip_f32_fast(const Tensor& a, const Tensor& b, F f) {
  if (!a.defined() || !b.defined()) return Tensor();
  Tensor out = zip_f32_rows(a, b, false, f);
  if (!out.defined() && b.numel() > a.numel()) out = zip_f32_rows(b, a, true, f);
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  auto f = [](auto x, auto y) { return x + y; };
  Tensor fast = zip_f32_fast(a, b, f);
  return fast.defined() ? fast : zip("add", a, b, f);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  auto f = [](auto x, auto y) { return x - y; };
  Tensor fast = zip_f32_fast(a, b, f);
  return fast.defined() ? fast : zip("sub", a, b, f);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  auto f = [](auto x, auto y) { return x * y; };
  Tensor fast = zip_f32_fast(a, b, f);
  return fast.defined() ? fast : zip("mul", a, b, f);
}
Tensor div(const Tensor& a, const Tensor& b) { return zip("div", a, b, [](auto x, auto y) { return x / y; }); }

Tensor add_scalar(const Tensor& a, double s) {
  return map(a, [s](auto x) { return x + static_cast<decltype(x)>(s); });
}
Tensor mul_scalar(const Tensor& a, double s) {
  return map(a, [s](auto x) { return x * static_cast<decltype(x)>(s); });
}

template <typename T>
static void add_inplace_typed(Tensor& acc, const Tensor& x) {
  T* o = acc.data<T>();
  const std::int64_t n = acc.numel();
  if (x.shape() == acc.shape() && x.is_contiguous()) {
    const T* p = x.data<T>();
    if constexpr (std::is_same_v<T, float>) {
      parallel_ranges(n, 1, [&](std::int64_t i0, std::int64_t i1) {
        for (std::int64_t i = i0; i < i1; ++i) o[i] += p[i];
      });
    } else {
      for (std::int64_t i = 0; i < n; ++i) o[i] += p[i];
    }
    return;
  }
  Tensor e = x.expand(acc.shape());
  const T* base = detail::base_ptr<T>(e);
  std::int64_t k = 0;
  detail::for_each_offset(e.shape(), e.strides(), e.offset(), [&](std::int64_t off) { o[k++] += base[off]; });
}

void add_inplace(Tensor& acc, const Tensor& x) {
  if (!acc.is_contiguous()) throw_error("add_inplace: the accumulator of shape ", shape_str(acc.shape()), " is not contiguous");
  if (acc.dtype() != x.dtype())
    throw_error("add_inplace: got dtypes ", dtype_name(acc.dtype()), " and ", dtype_name(x.dtype()), ", expected the same");
  if (acc.dtype() == DType::F32)
    add_inplace_typed<float>(acc, x);
  else
    add_inplace_typed<double>(acc, x);
}

// ---- reductions ------------------------------------------------------------------------------------------
// Strategy: move the reduced axes to the end (a permuted view), make it contiguous, then each output element
// reduces one contiguous run. One simple code path for every axis combination.

static std::vector<std::int64_t> normalise_axes(const char* op, const Tensor& x, std::vector<std::int64_t> axes) {
  if (axes.empty()) {
    axes.resize(static_cast<std::size_t>(x.dim()));
    std::iota(axes.begin(), axes.end(), 0);
  }
  for (auto& a : axes) a = wrap_dim(op, a, x.dim());
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    throw_error(op, ": an axis appears twice for shape ", shape_str(x.shape()));
  return axes;
}

struct ReducePlan {
  Tensor grouped;  // contiguous, reduced axes last
  Shape out_shape;
  std::int64_t outer = 1, inner = 1;
};

static ReducePlan plan_reduce(const char* op, const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  ReducePlan p;
  std::vector<std::int64_t> perm;
  std::vector<bool> reduced(static_cast<std::size_t>(x.dim()), false);
  for (auto a : axes) reduced[a] = true;
  for (std::int64_t d = 0; d < x.dim(); ++d)
    if (!reduced[d]) {
      perm.push_back(d);
      p.outer *= x.shape()[d];
    }
  for (auto a : axes) {
    perm.push_back(a);
    p.inner *= x.shape()[a];
  }
  p.grouped = x.permute(perm).contiguous();
  for (std::int64_t d = 0; d < x.dim(); ++d) {
    if (!reduced[d])
      p.out_shape.push_back(x.shape()[d]);
    else if (keepdim)
      p.out_shape.push_back(1);
  }
  return p;
}

template <typename T, typename Init, typename Step, typename Finish>
static Tensor reduce_typed(const ReducePlan& p, DType dtype, Init init, Step step, Finish finish) {
  Tensor out = Tensor::empty(p.out_shape, dtype);
  const T* in = p.grouped.data<T>();
  T* o = out.data<T>();
  for (std::int64_t i = 0; i < p.outer; ++i) {
    const T* row = in + i * p.inner;
    auto acc = init(row);
    for (std::int64_t j = 0; j < p.inner; ++j) step(acc, row[j], j);
    o[i] = static_cast<T>(finish(acc));
  }
  return out;
}

// Sum over the leading `lead` axes of a contiguous tensor, (outer, inner) -> (inner), without a transposed
// copy: the shape of every bias gradient, (B*T, C) -> (C).
// Large float32 inputs split the columns over the worker pool: each column is still summed by one thread,
// row after row, so the result does not depend on the thread count.
template <typename T>
static void sum_leading_typed(const Tensor& x, std::int64_t outer, std::int64_t inner, Tensor& out) {
  const T* p = x.data<T>();
  T* o = out.data<T>();
  auto columns = [&](std::int64_t j0, std::int64_t j1) {
    std::vector<double> acc(static_cast<std::size_t>(j1 - j0), 0.0);
    for (std::int64_t i = 0; i < outer; ++i)
      for (std::int64_t j = j0; j < j1; ++j) acc[j - j0] += p[i * inner + j];
    for (std::int64_t j = j0; j < j1; ++j) o[j] = static_cast<T>(acc[j - j0]);
  };
  if constexpr (std::is_same_v<T, float>)
    parallel_ranges(inner, outer, columns);
  else
    columns(0, inner);
}

Tensor sum(const Tensor& x, std::vector<std::int64_t> axes, bool keepdim) {
  auto ax = normalise_axes("sum", x, std::move(axes));
  bool leading = x.is_contiguous() && !ax.empty() && static_cast<std::int64_t>(ax.size()) < x.dim();
  for (std::size_t i = 0; leading && i < ax.size(); ++i) leading = ax[i] == static_cast<std::int64_t>(i);
  if (leading) {
    std::int64_t outer = 1;
    for (auto a : ax) outer *= x.shape()[a];
    Shape out_shape;
    for (std::int64_t d = 0; d < x.dim(); ++d) {
      if (d >= static_cast<std::int64_t>(ax.size())) out_shape.push_back(x.shape()[d]);
      else if (keepdim) out_shape.push_back(1);
    }
    Tensor out = Tensor::empty(out_shape, x.dtype());
    const std::int64_t inner = outer ? x.numel() / std::max<std::int64_t>(outer, 1) : shape_numel(out_shape);
    if (outer == 0) {
      out.fill_(0.0);
      return out;
    }
    if (x.dtype() == DType::F32) sum_leading_typed<float>(x, outer, inner, out);
    else sum_leading_typed<double>(x, outer, inner, out);
    return out;
  }
  ReducePlan p = plan_reduce("sum", x, ax, keepdim);
  // Accumulate in double even for float32: sums over many tokens stay accurate and order-independent
  // of the storage type.
  auto init = [](const auto*) { return 0.0; };
  auto step = [](double& acc, auto v, std::int64_t) { acc += v; };
  auto finish = [](double acc) { return acc; };
  if (x.dtype() == DType::F32) return reduce_typed<float>(p, x.dtype(), init, step, finish);
  return reduce_typed<double>(p, x.dtype(), init, step, finish);
}

Tensor mean(const Tensor& x, std::vector<std::int64_t> axes, bool keepdim) {
  auto ax = normalise_axes("mean", x, std::move(axes));
  std::int64_t count = 1;
  for (auto a : ax) count *= x.shape()[a];
  if (count == 0) throw_error("mean: got shape ", shape_str(x.shape()), ", expected a non-empty reduction");
  return mul_scalar(sum(x, ax, keepdim), 1.0 / static_cast<double>(count));
}

Tensor max(const Tensor& x, std::int64_t axis, bool keepdim) {
  auto ax = normalise_axes("max", x, {axis});
  if (x.shape()[ax[0]] == 0) throw_error("max: axis ", axis, " of shape ", shape_str(x.shape()), " is empty");
  ReducePlan p = plan_reduce("max", x, ax, keepdim);
  auto init = [](const auto* row) { return static_cast<double>(row[0]); };
  auto step = [](double& acc, auto v, std::int64_t) {
    if (v > acc || std::isnan(static_cast<double>(v))) acc = v;
  };
  auto finish = [](double acc) { return acc; };
  if (x.dtype() == DType::F32) return reduce_typed<float>(p, x.dtype(), init, step, finish);
  return reduce_typed<double>(p, x.dtype(), init, step, finish);
}

Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdim) {
  auto ax = normalise_axes("argmax", x, {axis});
  if (x.shape()[ax[0]] == 0) throw_error("argmax: axis ", axis, " of shape ", shape_str(x.shape()), " is empty");
  ReducePlan p = plan_reduce("argmax", x, ax, keepdim);
  struct Best {
    double value;
    std::int64_t index;
  };
  auto init = [](const auto* row) { return Best{static_cast<double>(row[0]), 0}; };
  auto step = [](Best& b, auto v, std::int64_t j) {
    if (v > b.value) b = {static_cast<double>(v), j};  // first maximum wins, like NumPy
  };
  auto finish = [](const Best& b) { return static_cast<double>(b.index); };
  if (x.dtype() == DType::F32) return reduce_typed<float>(p, x.dtype(), init, step, finish);
  return reduce_typed<double>(p, x.dtype(), init, step, finish);
}

// ---- matmul ------------------------------------------------------------------------------------------

// How a 2-d (rows, cols) slice of t can be handed to a row-major GEMM without a copy.
struct MatrixView {
  bool transposed;
  std::int64_t ld;
};

static bool as_matrix(const Tensor& t, MatrixView& mv) {
  const std::int64_t n = t.dim();
  const std::int64_t rows = t.shape()[n - 2], cols = t.shape()[n - 1];
  const std::int64_t rs = t.strides()[n - 2], cs = t.strides()[n - 1];
  // Row-major: consecutive columns are adjacent, rows are ld apart (ld >= cols).
  if ((cs == 1 || cols <= 1) && (rows <= 1 || rs >= std::max<std::int64_t>(cols, 1))) {
    mv = {false, rows <= 1 ? std::max<std::int64_t>(cols, 1) : rs};
    return true;
  }
  // A transposed view of a row-major matrix: consecutive rows are adjacent.
  if ((rs == 1 || rows <= 1) && (cols <= 1 || cs >= std::max<std::int64_t>(rows, 1))) {
    mv = {true, cols <= 1 ? std::max<std::int64_t>(rows, 1) : cs};
    return true;
  }
  return false;
}

// Enumerates the batch elements of a broadcast batched matmul, giving element offsets for a, b and c.
template <typename F>
static void for_each_batch(const Shape& batch, const Tensor& a, const Tensor& b, const Tensor& c, F f) {
  const std::int64_t nb = shape_numel(batch);
  const std::size_t nd = batch.size();
  auto batch_stride = [&](const Tensor& t, std::size_t d) -> std::int64_t {
    const std::size_t tb = static_cast<std::size_t>(t.dim()) - 2;  // t's batch dims
    if (d < nd - tb) return 0;
    std::size_t td = d - (nd - tb);
    return t.shape()[td] == 1 ? 0 : t.strides()[td];
  };
  std::vector<std::int64_t> idx(nd, 0);
  for (std::int64_t i = 0; i < nb; ++i) {
    std::int64_t oa = a.offset(), ob = b.offset(), oc = c.offset();
    for (std::size_t d = 0; d < nd; ++d) {
      oa += idx[d] * batch_stride(a, d);
      ob += idx[d] * batch_stride(b, d);
      oc += idx[d] * batch_stride(c, d);
    }
    f(oa - a.offset(), ob - b.offset(), oc - c.offset());
    for (std::size_t d = nd; d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
}

static Shape matmul_shape(const char* op, const Tensor& a, const Tensor& b, Shape& batch) {
  if (a.dim() < 2 || b.dim() < 2)
    throw_error(op, ": got shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                ", expected at least 2 dimensions each (..., M, K) and (..., K, N)");
  if (a.size(-1) != b.size(-2))
    throw_error(op, ": got shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                ", expected a's last dimension (", a.size(-1), ") to equal b's second-to-last (", b.size(-2), ")");
  if (a.dtype() != b.dtype())
    throw_error(op, ": got dtypes ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()), ", expected the same");
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  batch = broadcast_shapes(op, ba, bb);
  Shape out = batch;
  out.push_back(a.size(-2));
  out.push_back(b.size(-1));
  return out;
}

static void matmul_into(const char* op, Tensor& c, const Tensor& a_in, const Tensor& b_in, double alpha, double beta) {
  Shape batch;
  matmul_shape(op, a_in, b_in, batch);
  Tensor a = a_in, b = b_in;
  MatrixView va{}, vb{};
  if (!as_matrix(a, va)) {
    a = a.contiguous();
    as_matrix(a, va);
  }
  if (!as_matrix(b, vb)) {
    b = b.contiguous();
    as_matrix(b, vb);
  }
  const std::int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const std::int64_t ldc = std::max<std::int64_t>(N, 1);
  // Uniform batch strides let the kernel parallelise across the batch (attention's many small products).
  const std::int64_t nb = shape_numel(batch);
  if (c.dtype() == DType::F32) {
    const float* pa = detail::base_ptr<float>(a);
    const float* pb = detail::base_ptr<float>(b);
    float* pc = c.data<float>();
    std::vector<std::int64_t> oa, ob, occ;
    for_each_batch(batch, a, b, c, [&](std::int64_t x, std::int64_t y, std::int64_t z) {
      oa.push_back(x + a.offset());
      ob.push_back(y + b.offset());
      occ.push_back(z);
    });
    bool uniform = nb > 1;
    for (std::int64_t i = 2; uniform && i < nb; ++i)
      uniform = oa[i] - oa[i - 1] == oa[1] - oa[0] && ob[i] - ob[i - 1] == ob[1] - ob[0] &&
                occ[i] - occ[i - 1] == occ[1] - occ[0];
    if (uniform) {
      gemm::sgemm_batched(nb, va.transposed, vb.transposed, M, N, K, static_cast<float>(alpha), pa + oa[0], va.ld,
                          oa[1] - oa[0], pb + ob[0], vb.ld, ob[1] - ob[0], static_cast<float>(beta), pc + occ[0], ldc,
                          occ[1] - occ[0]);
    } else {
      for (std::int64_t i = 0; i < nb; ++i)
        gemm::sgemm(va.transposed, vb.transposed, M, N, K, static_cast<float>(alpha), pa + oa[i], va.ld, pb + ob[i],
                    vb.ld, static_cast<float>(beta), pc + occ[i], ldc);
    }
  } else {
    const double* pa = detail::base_ptr<double>(a);
    const double* pb = detail::base_ptr<double>(b);
    double* pc = c.data<double>();
    for_each_batch(batch, a, b, c, [&](std::int64_t x, std::int64_t y, std::int64_t z) {
      gemm::dgemm_naive(va.transposed, vb.transposed, M, N, K, alpha, pa + a.offset() + x, va.ld,
                        pb + b.offset() + y, vb.ld, beta, pc + z, ldc);
    });
  }
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  Shape batch;
  Shape out_shape = matmul_shape("matmul", a, b, batch);
  Tensor c = Tensor::empty(out_shape, a.dtype());
  matmul_into("matmul", c, a, b, 1.0, 0.0);
  return c;
}

void matmul_accumulate(Tensor& c, const Tensor& a, const Tensor& b, double alpha) {
  Shape batch;
  Shape out_shape = matmul_shape("matmul_accumulate", a, b, batch);
  if (out_shape != c.shape() || !c.is_contiguous())
    throw_error("matmul_accumulate: the product has shape ", shape_str(out_shape), " but the accumulator has shape ",
                shape_str(c.shape()), (c.is_contiguous() ? "" : " and is not contiguous"));
  matmul_into("matmul_accumulate", c, a, b, alpha, 1.0);
}

// ---- softmax ------------------------------------------------------------------------------------------

template <typename T>
static Tensor softmax_typed(const Tensor& x_in, bool log) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const std::int64_t C = x.dim() == 0 ? 1 : x.size(-1);
  const std::int64_t rows = C == 0 ? 0 : x.numel() / C;
  const T* in = x.data<T>();
  T* o = out.data<T>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* row = in + r * C;
    T* orow = o + r * C;
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t j = 0; j < C; ++j) m = std::max(m, row[j]);
    if (m == -std::numeric_limits<T>::infinity())
      throw_error("softmax: row ", r, " has no finite entry (every position masked)");
    // two loops: the first vectorizes (no reduction in it), the second sums in order
    for (std::int64_t j = 0; j < C; ++j) orow[j] = exp_of(row[j] - m);
    T s = 0;
    for (std::int64_t j = 0; j < C; ++j) s += orow[j];
    if (log) {
      T lse = m + std::log(s);
      for (std::int64_t j = 0; j < C; ++j) orow[j] = row[j] - lse;
    } else {
      T inv = T(1) / s;
      for (std::int64_t j = 0; j < C; ++j) orow[j] *= inv;
    }
  }
  return out;
}

Tensor softmax_lastdim(const Tensor& x) {
  if (x.dtype() == DType::F32) return softmax_typed<float>(x, false);
  return softmax_typed<double>(x, false);
}

Tensor log_softmax_lastdim(const Tensor& x) {
  if (x.dtype() == DType::F32) return softmax_typed<float>(x, true);
  return softmax_typed<double>(x, true);
}

// ---- comparisons ------------------------------------------------------------------------------------------

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape())
    throw_error("allclose: got shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), ", expected equal shapes");
  auto va = a.to_vector(), vb = b.to_vector();
  for (std::size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) != std::isnan(vb[i])) return false;
    if (std::abs(va[i] - vb[i]) > atol + rtol * std::abs(vb[i])) return false;
  }
  return true;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    throw_error("max_abs_diff: got shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), ", expected equal shapes");
  auto va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (std::size_t i = 0; i < va.size(); ++i) m = std::max(m, std::abs(va[i] - vb[i]));
  return m;
}

}  // namespace gradlab::ops
