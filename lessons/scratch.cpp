// A scratch program for the lesson exercises: put your snippet in main(), then build and run it with
//   cmake --build build --target scratch && ./build/lessons/scratch
// It links the whole engine (tensor, autograd, nn, data, train, viz), like the lessons. CTest runs it, so it
// must keep compiling: start from this small example (exercise 3 of lesson 01, a broadcast gradient).
#include <cstdio>

#include "autograd/ops.h"
#include "tensor/ops.h"

using namespace gradlab;

int main() {
  // y = x + b with x (4, 3) and b (3,): each b_j is used 4 times, so d sum(y) / d b_j = 4
  Var x = Var::leaf(Tensor::full({4, 3}, 1.0, DType::F64), /*requires_grad=*/true);
  Var b = Var::leaf(Tensor::from_values({3}, {0.5, -1.0, 2.0}, DType::F64), true);
  Var loss = sum(x + b);
  loss.backward();
  std::printf("x.grad() =\n%s\nb.grad() = %s\n", x.grad().str().c_str(), b.grad().str().c_str());
  return 0;
}
