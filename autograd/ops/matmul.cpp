// The matmul family: batched matmul and the fused linear layer. Both run on the fast GEMM (tensor/gemm.h);
// transposes are handed to the kernel as transposed operands, so no copy is made.
#include <algorithm>

#include "autograd/ops.h"
#include "tensor/gemm.h"
#include "tensor/ops.h"

namespace gradlab {

Var matmul(const Var& a, const Var& b) {
  // a is (..., M, K), b is (..., K, N); out = a @ b is (..., M, N)
  return make_result(ops::matmul(a.data(), b.data()), "matmul", {a, b}, [](std::vector<Var>& in, const Tensor& g) {
    // dA = dOut @ B^T (..., M, K);  dB = A^T @ dOut (..., K, N); summed over broadcast batch dimensions
    // exercise 03.2 begin: matmul backward, summed over broadcast batch dimensions
    const Tensor& A = in[0].data();
    const Tensor& B = in[1].data();
    if (in[0].requires_grad()) in[0].add_grad(ops::sum_to_shape(ops::matmul(g, B.transpose(-1, -2)), A.shape()));
    if (in[1].requires_grad()) in[1].add_grad(ops::sum_to_shape(ops::matmul(A.transpose(-1, -2), g), B.shape()));
    // exercise 03.2 end
  });
}

// ---- linear ----------------------------------------------------------------------------------------------
// One node for y = x W^T + b instead of reshape -> matmul(transpose) -> add -> reshape: a single GEMM per
// product, gradients born contiguous in their final shapes (so add_grad keeps them without a copy), and the
// bias folded into the forward GEMM.

namespace {

// The same row-major GEMM contract for both dtypes: float32 takes the fast kernel, float64 (gradchecks,
// reference tests) the simple one.
void gemm_rm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const float* A, std::int64_t lda,
             const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  gemm::sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}
void gemm_rm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const double* A, std::int64_t lda,
             const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
  gemm::dgemm_naive(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc);
}

// A row stride must be at least 1 even for an empty matrix (BLAS rule, checked by gemm).
std::int64_t ld(std::int64_t width) { return std::max<std::int64_t>(1, width); }

template <typename T>
void linear_forward(const T* x, const T* w, const T* bias, T* y, std::int64_t N, std::int64_t in, std::int64_t out) {
  // x is (N,in), w is (out,in), bias is (out) or null; y = x w^T + bias is (N,out)
  // The bias is folded into the GEMM: every row of y starts as the bias and the GEMM adds onto it (beta = 1).
  // Measured against beta = 0 plus a separate bias pass: no difference beyond noise, and one pass fewer.
  if (bias)
    for (std::int64_t i = 0; i < N; ++i) std::copy(bias, bias + out, y + i * out);
  gemm_rm(false, true, N, out, in, x, ld(in), w, ld(in), bias ? T(1) : T(0), y, ld(out));
}

template <typename T>
void linear_backward(const T* dy, const T* x, const T* w, T* dx, T* dw, std::int64_t N, std::int64_t in,
                     std::int64_t out) {
  // dy is (N,out), x is (N,in), w is (out,in); dx (N,in), dw (out,in), each null when not wanted.
  // forward: y = x w^T + b
  // dx (N,in) = dy (N,out) * w (out,in)
  if (dx) gemm_rm(false, false, N, in, out, dy, ld(out), w, ld(in), T(0), dx, ld(in));
  // dw (out,in) = dy^T (out,N) * x (N,in): dy is stored (N,out), handed over transposed
  if (dw) gemm_rm(true, false, out, in, N, dy, ld(out), x, ld(in), T(0), dw, ld(in));
}

void check_linear(const Var& x, const Var& weight, const Var& bias) {
  if (!x.defined() || !weight.defined())
    throw_error("linear: got an undefined ", x.defined() ? "weight" : "x", ", expected x (..., in) and weight (out, in)");
  const std::string got = "got x " + shape_str(x.shape()) + ", weight " + shape_str(weight.shape()) +
                          (bias.defined() ? ", bias " + shape_str(bias.shape()) : std::string());
  if (x.dim() < 1 || weight.dim() != 2)
    throw_error("linear: ", got, ", expected x (..., in) with at least one dimension and weight (out, in)");
  if (weight.size(1) != x.size(-1))
    throw_error("linear: ", got, ", expected the last dimension of x (", x.size(-1),
                ") to equal weight's in-features (", weight.size(1), ")");
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(0)))
    throw_error("linear: ", got, ", expected bias (", weight.size(0), ") to match weight's out-features");
  if (weight.dtype() != x.dtype() || (bias.defined() && bias.dtype() != x.dtype()))
    throw_error("linear: got x ", dtype_name(x.dtype()), ", weight ", dtype_name(weight.dtype()),
                bias.defined() ? std::string(", bias ") + dtype_name(bias.dtype()) : std::string(),
                ", expected one dtype for all");
}

template <typename T>
Var linear_typed(const Var& x, const Var& weight, const Var& bias) {
  // x is (..., in), weight (out,in), bias (out) or undefined; y is (..., out)
  const std::int64_t in = weight.size(1), out = weight.size(0);
  std::int64_t N = 1;  // rows: the product of x's leading dimensions
  for (std::int64_t d = 0; d + 1 < x.dim(); ++d) N *= x.size(d);
  Tensor xc = x.data().contiguous();  // no copy in the usual case
  Tensor wc = weight.data().contiguous();
  Tensor bc = bias.defined() ? bias.data().contiguous() : Tensor();
  Shape y_shape = x.shape();
  y_shape.back() = out;
  Tensor y = Tensor::empty(y_shape, x.dtype());
  linear_forward<T>(xc.data<T>(), wc.data<T>(), bias.defined() ? bc.data<T>() : nullptr, y.data<T>(), N, in, out);

  std::vector<Var> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return make_result(y, "linear", inputs, [xc, wc, N, in, out](std::vector<Var>& ins, const Tensor& g) {
    const bool want_dx = ins[0].requires_grad(), want_dw = ins[1].requires_grad();
    const bool want_db = ins.size() > 2 && ins[2].requires_grad();
    Tensor dyc = g.contiguous();
    Tensor dx = want_dx ? Tensor::empty(xc.shape(), xc.dtype()) : Tensor();
    Tensor dw = want_dw ? Tensor::empty(wc.shape(), wc.dtype()) : Tensor();
    linear_backward<T>(dyc.data<T>(), xc.data<T>(), wc.data<T>(), want_dx ? dx.data<T>() : nullptr,
                       want_dw ? dw.data<T>() : nullptr, N, in, out);
    // db (out) = column sums of dy: ops::sum over the leading axis (double accumulation, columns split over
    // the worker pool, the same result for any thread count)
    Tensor db = want_db ? ops::sum(dyc.reshape({N, out}), {0}) : Tensor();
    // Fresh contiguous tensors nobody else holds: add_grad adopts them without a copy.
    if (want_dx) ins[0].add_grad(dx);
    if (want_dw) ins[1].add_grad(dw);
    if (want_db) ins[2].add_grad(db);
  });
}

}  // namespace

Var linear(const Var& x, const Var& weight, const Var& bias) {
  check_linear(x, weight, bias);
  return x.dtype() == DType::F32 ? linear_typed<float>(x, weight, bias) : linear_typed<double>(x, weight, bias);
}

}  // namespace gradlab
