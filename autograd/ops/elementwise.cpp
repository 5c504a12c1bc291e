// Elementwise ops. Forward, then backward right below it, restating the forward line it differentiates.
#include <cmath>

#include "autograd/ops.h"
#include "tensor/activations.h"
#include "tensor/fastmath.h"
#include "tensor/ops.h"

namespace gradlab {

namespace {
// Gradient of a broadcast input: sum the output gradient over the broadcast dimensions.
void add_reduced(Var& input, const Tensor& g) { input.add_grad(ops::sum_to_shape(g, input.shape())); }
}  // namespace

// ---- binary arithmetic ----------------------------------------------------------------------------------

Var add(const Var& a, const Var& b) {
  // out = a + b
  return make_result(ops::add(a.data(), b.data()), "add", {a, b}, [](std::vector<Var>& in, const Tensor& g) {
    // d(a + b)/da = 1, d(a + b)/db = 1
    if (in[0].requires_grad()) add_reduced(in[0], g);
    if (in[1].requires_grad()) add_reduced(in[1], g);
  });
}

Var sub(const Var& a, const Var& b) {
  // out = a - b
  return make_result(ops::sub(a.data(), b.data()), "sub", {a, b}, [](std::vector<Var>& in, const Tensor& g) {
    if (in[0].requires_grad()) add_reduced(in[0], g);
    if (in[1].requires_grad()) add_reduced(in[1], ops::mul_scalar(g, -1.0));
  });
}

Var mul(const Var& a, const Var& b) {
  // out = a * b
  return make_result(ops::mul(a.data(), b.data()), "mul", {a, b}, [](std::vector<Var>& in, const Tensor& g) {
    // d(a*b)/da = b, d(a*b)/db = a
    if (in[0].requires_grad()) add_reduced(in[0], ops::mul(g, in[1].data()));
    if (in[1].requires_grad()) add_reduced(in[1], ops::mul(g, in[0].data()));
  });
}

Var div(const Var& a, const Var& b) {
  // out = a / b
  return make_result(ops::div(a.data(), b.data()), "div", {a, b}, [](std::vector<Var>& in, const Tensor& g) {
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
    if (in[0].requires_grad()) add_reduced(in[0], ops::div(g, in[1].data()));
    if (in[1].requires_grad()) {
      Tensor gb = ops::zip("div backward", ops::mul(g, in[0].data()), in[1].data(),
                           [](auto ga, auto bv) { return -ga / (bv * bv); });
      add_reduced(in[1], gb);
    }
  });
}

Var neg(const Var& a) {
  // out = -a
  return make_result(ops::mul_scalar(a.data(), -1.0), "neg", {a},
                     [](std::vector<Var>& in, const Tensor& g) { in[0].add_grad(ops::mul_scalar(g, -1.0)); });
}

Var add_scalar(const Var& a, double s) {
  // out = a + s
  return make_result(ops::add_scalar(a.data(), s), "add_scalar", {a},
                     [](std::vector<Var>& in, const Tensor& g) { in[0].add_grad(g); });
}

Var mul_scalar(const Var& a, double s) {
  // out = a * s
  return make_result(ops::mul_scalar(a.data(), s), "mul_scalar", {a},
                     [s](std::vector<Var>& in, const Tensor& g) { in[0].add_grad(ops::mul_scalar(g, s)); });
}

// ---- unary functions --------------------------------------------------------------------------------------
// Where the derivative is cheapest from the output (exp, tanh, sigmoid, sqrt), the backward saves the
// output tensor (never the output node).

Var exp(const Var& a) {
  // out = e^a
  Tensor out = ops::map(a.data(), [](auto x) { return exp_of(x); });
  return make_result(out, "exp", {a}, [out](std::vector<Var>& in, const Tensor& g) {
    // d e^a / da = e^a = out
    in[0].add_grad(ops::mul(g, out));
  });
}

Var log(const Var& a) {
  // out = ln(a)
  Tensor out = ops::map(a.data(), [](auto x) { return std::log(x); });
  return make_result(out, "log", {a}, [](std::vector<Var>& in, const Tensor& g) {
    // d ln(a) / da = 1/a
    in[0].add_grad(ops::div(g, in[0].data()));
  });
}

Var pow(const Var& a, double p) {
  // out = a^p
  Tensor out = ops::map(a.data(), [p](auto x) { return std::pow(x, static_cast<decltype(x)>(p)); });
  return make_result(out, "pow", {a}, [p](std::vector<Var>& in, const Tensor& g) {
    // d a^p / da = p * a^(p-1)
    Tensor d = ops::map(in[0].data(), [p](auto x) {
      using T = decltype(x);
      return static_cast<T>(p) * std::pow(x, static_cast<T>(p - 1));
    });
    in[0].add_grad(ops::mul(g, d));
  });
}

Var sqrt(const Var& a) {
  // out = sqrt(a)
  Tensor out = ops::map(a.data(), [](auto x) { return std::sqrt(x); });
  return make_result(out, "sqrt", {a}, [out](std::vector<Var>& in, const Tensor& g) {
    // d sqrt(a) / da = 1 / (2 sqrt(a))
    in[0].add_grad(ops::zip("sqrt backward", g, out, [](auto gv, auto y) { return gv / (2 * y); }));
  });
}

Var tanh(const Var& a) {
  // out = tanh(a)
  Tensor out = ops::map(a.data(), [](auto x) { return tanh_of(x); });
  return make_result(out, "tanh", {a}, [out](std::vector<Var>& in, const Tensor& g) {
    // d tanh(a) / da = 1 - tanh(a)^2
    // exercise 03.1 begin: tanh backward from the saved output
    in[0].add_grad(ops::zip("tanh backward", g, out, [](auto gv, auto y) { return gv * (1 - y * y); }));
    // exercise 03.1 end
  });
}

Var sigmoid(const Var& a) {
  // out = 1 / (1 + e^-a)
  Tensor out = ops::map(a.data(), [](auto x) {
    using T = decltype(x);
    return T(1) / (T(1) + exp_of(-x));
  });
  return make_result(out, "sigmoid", {a}, [out](std::vector<Var>& in, const Tensor& g) {
    // d sigmoid(a) / da = s (1 - s)
    in[0].add_grad(ops::zip("sigmoid backward", g, out, [](auto gv, auto s) { return gv * s * (1 - s); }));
  });
}

Var relu(const Var& a) {
  // out = max(a, 0)
  Tensor out = ops::map(a.data(), [](auto x) { return x > 0 ? x : decltype(x)(0); });
  return make_result(out, "relu", {a}, [](std::vector<Var>& in, const Tensor& g) {
    // d relu(a) / da = 1 where a > 0, else 0 (the kink at 0 gets 0, like PyTorch)
    in[0].add_grad(ops::zip("relu backward", g, in[0].data(), [](auto gv, auto x) { return x > 0 ? gv : decltype(gv)(0); }));
  });
}

// GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh( sqrt(2/pi) (x + 0.044715 x^3) ))
// float32 runs the vectorized kernels of tensor/activations.h; float64 is the reference below.
Var gelu(const Var& a) {
  Tensor out;
  if (a.dtype() == DType::F32) {
    Tensor x = a.data().contiguous();
    out = Tensor::empty(x.shape());
    kernels::gelu_forward(x.data<float>(), out.data<float>(), x.numel());
  } else {
    out = ops::map(a.data(), [](auto x) {
      using T = decltype(x);
      const T k = static_cast<T>(0.7978845608028654);  // sqrt(2/pi)
      return T(0.5) * x * (T(1) + tanh_of(k * (x + T(0.044715) * x * x * x)));
    });
  }
  return make_result(out, "gelu", {a}, [](std::vector<Var>& in, const Tensor& g) {
    // with u = k (x + 0.044715 x^3):  d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) k (1 + 3*0.044715 x^2)
    if (g.dtype() == DType::F32) {
      Tensor x = in[0].data().contiguous(), gc = g.contiguous();
      Tensor dx = Tensor::empty(x.shape());
      kernels::gelu_backward(x.data<float>(), gc.data<float>(), dx.data<float>(), x.numel());
      in[0].add_grad(dx);
      return;
    }
    // exercise 02.1 begin: the float64 GELU derivative (tanh form), by the chain rule
    in[0].add_grad(ops::zip("gelu backward", g, in[0].data(), [](auto gv, auto x) {
      using T = decltype(x);
      const T k = static_cast<T>(0.7978845608028654);
      T t = tanh_of(k * (x + T(0.044715) * x * x * x));
      T du = k * (T(1) + T(3 * 0.044715) * x * x);
      return gv * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
    }));
    // exercise 02.1 end
  });
}

// GELU, exact (erf) form, PyTorch's nn.GELU() as nanoGPT uses it: x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
// float32 runs the kernels of tensor/activations.h (a polynomial erf under AVX2); float64 is std::erf below.
Var gelu_exact(const Var& a) {
  Tensor out;
  if (a.dtype() == DType::F32) {
    Tensor x = a.data().contiguous();
    out = Tensor::empty(x.shape());
    kernels::gelu_exact_forward(x.data<float>(), out.data<float>(), x.numel());
  } else {
    out = ops::map(a.data(), [](auto x) {
      using T = decltype(x);
      return T(0.5) * x * (T(1) + std::erf(x * static_cast<T>(0.70710678118654752440)));
    });
  }
  return make_result(out, "gelu_exact", {a}, [](std::vector<Var>& in, const Tensor& g) {
    // y = x Phi(x)  ->  dy/dx = Phi(x) + x phi(x),  Phi(x) = 0.5 (1 + erf(x / sqrt 2)),  phi(x) = e^{-x^2/2} / sqrt(2 pi)
    if (g.dtype() == DType::F32) {
      Tensor x = in[0].data().contiguous(), gc = g.contiguous();
      Tensor dx = Tensor::empty(x.shape());
      kernels::gelu_exact_backward(x.data<float>(), gc.data<float>(), dx.data<float>(), x.numel());
      in[0].add_grad(dx);
      return;
    }
    in[0].add_grad(ops::zip("gelu_exact backward", g, in[0].data(), [](auto gv, auto x) {
      using T = decltype(x);
      const T cdf = T(0.5) * (T(1) + std::erf(x * static_cast<T>(0.70710678118654752440)));
      const T pdf = static_cast<T>(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
      return gv * (cdf + x * pdf);
    }));
  });
}

}  // namespace gradlab
