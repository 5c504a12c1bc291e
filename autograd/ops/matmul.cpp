// Batched matmul. Both the forward and the backward run on the fast GEMM (tensor/gemm.h); transposes are
// handed to the kernel as transposed operands, so no copy is made.
#include "autograd/ops.h"
#include "tensor/ops.h"

namespace gradlab {

Var matmul(const Var& a, const Var& b) {
  // a is (..., M, K), b is (..., K, N); out = a @ b is (..., M, N)
  return make_result(ops::matmul(a.data(), b.data()), "matmul", {a, b}, [](std::vector<Var>& in, const Tensor& g) {
    // dA = dOut @ B^T (..., M, K);  dB = A^T @ dOut (..., K, N); summed over broadcast batch dimensions
    const Tensor& A = in[0].data();
    const Tensor& B = in[1].data();
    if (in[0].requires_grad()) in[0].add_grad(ops::sum_to_shape(ops::matmul(g, B.transpose(-1, -2)), A.shape()));
    if (in[1].requires_grad()) in[1].add_grad(ops::sum_to_shape(ops::matmul(A.transpose(-1, -2), g), B.shape()));
  });
}

}  // namespace gradlab
