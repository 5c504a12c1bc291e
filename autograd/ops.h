#pragma once
// The differentiable operations, grouped by family. Each op's backward is written right after its forward,
// in autograd/ops/<family>.cpp:
//   elementwise.cpp  add sub mul div neg, scalar forms, exp log pow sqrt tanh sigmoid relu gelu gelu_exact
//   reduce.cpp       sum mean max
//   shape.cpp        reshape transpose permute slice concat split
//   matmul.cpp       batched matmul, linear (fused x W^T + b)
//   nn.cpp           embedding, softmax, log_softmax, cross_entropy (fused), layernorm, rmsnorm, dropout
// Every op validates its inputs and names itself, the shapes it got and what it expected.
#include <cstdint>
#include <vector>

#include "autograd/var.h"
#include "tensor/rng.h"

namespace gradlab {

// ---- elementwise (NumPy broadcasting; gradients are summed back to each input's shape) ----------------------
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var neg(const Var& a);
Var add_scalar(const Var& a, double s);
Var mul_scalar(const Var& a, double s);
Var exp(const Var& a);
Var log(const Var& a);
Var pow(const Var& a, double exponent);
Var sqrt(const Var& a);
Var tanh(const Var& a);
Var sigmoid(const Var& a);
Var relu(const Var& a);
Var gelu(const Var& a);        // tanh approximation, as in GPT-2
Var gelu_exact(const Var& a);  // 0.5 x (1 + erf(x / sqrt 2)), PyTorch's nn.GELU() (nanoGPT)

inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator-(const Var& a) { return neg(a); }
inline Var operator+(const Var& a, double s) { return add_scalar(a, s); }
inline Var operator+(double s, const Var& a) { return add_scalar(a, s); }
inline Var operator-(const Var& a, double s) { return add_scalar(a, -s); }
inline Var operator*(const Var& a, double s) { return mul_scalar(a, s); }
inline Var operator*(double s, const Var& a) { return mul_scalar(a, s); }
inline Var operator/(const Var& a, double s) { return mul_scalar(a, 1.0 / s); }

// ---- reductions (axes empty = all; negative axes count from the end) --------------------------------------
Var sum(const Var& a, std::vector<std::int64_t> axes = {}, bool keepdim = false);
Var mean(const Var& a, std::vector<std::int64_t> axes = {}, bool keepdim = false);
Var max(const Var& a, std::int64_t axis, bool keepdim = false);  // the gradient goes to the first maximum

// ---- shape (views in the forward pass where the tensor allows) --------------------------------------------
Var reshape(const Var& a, const Shape& shape);
Var transpose(const Var& a, std::int64_t d0, std::int64_t d1);
Var permute(const Var& a, const std::vector<std::int64_t>& dims);
Var slice(const Var& a, std::int64_t dim, std::int64_t start, std::int64_t end);  // [start, end)
Var concat(const std::vector<Var>& parts, std::int64_t dim);
std::vector<Var> split(const Var& a, const std::vector<std::int64_t>& sizes, std::int64_t dim);
Var contiguous(const Var& a);

// ---- matmul ----------------------------------------------------------------------------------------------
// a (..., M, K) @ b (..., K, N) -> (..., M, N), batch dimensions broadcast.
Var matmul(const Var& a, const Var& b);
// x (..., in), weight (out, in), bias (out) or undefined -> x W^T + b (..., out): one node, as in PyTorch.
Var linear(const Var& x, const Var& weight, const Var& bias = Var());

// ---- nn ops (fused: one node each, tested against their composite versions) --------------------------------
// weight (V, C), ids (B*T values in [0, V)) -> (B, T, C)
Var embedding(const Var& weight, const std::vector<std::int32_t>& ids, std::int64_t B, std::int64_t T);
Var softmax(const Var& a);      // over the last dimension; -inf entries get probability 0
Var log_softmax(const Var& a);  // over the last dimension
// logits (N, V) or (B, T, V); targets one per row; rows whose target == ignore_index are skipped.
// Returns the mean over the rows that count (a scalar).
Var cross_entropy(const Var& logits, const std::vector<std::int32_t>& targets, std::int32_t ignore_index = -1);
// x (..., C), weight (C), bias (C) or undefined -> (..., C); eps 1e-5 like PyTorch.
Var layernorm(const Var& x, const Var& weight, const Var& bias, double eps = 1e-5);
Var rmsnorm(const Var& x, const Var& weight, double eps = 1e-5);
// Inverted dropout: in training, each element is zeroed with probability p and the rest scaled by 1/(1-p).
Var dropout(const Var& x, double p, Rng& rng, bool training);

}  // namespace gradlab
