#pragma once
// Reverse-mode automatic differentiation over a dynamic graph.
//
// A Var is a cheap handle (a shared pointer) to a Node. A Node holds a value (`data`), the gradient of the
// final loss with respect to it (`grad`), and, when an op made it, the op's inputs and a backward function.
//
//   Var a = Var::leaf(x, /*requires_grad=*/true);
//   Var y = tanh(matmul(a, w) + b);          // each op records its inputs and its backward
//   sum(y).backward();                       // walks the graph once, in reverse topological order
//   a.grad();                                // d sum(y) / d a, accumulated with +=
//
// Ownership has no cycles: a node owns its inputs, never its output. A backward function receives
// (inputs, grad_output) and adds into each input's gradient; it may keep tensors it saved in the forward
// pass, but never the output node. After backward() the graph is freed (inputs and backward functions are
// dropped) unless retain_graph is asked for.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace gradlab {

class Var;
struct Node;

// The backward function of an op: `inputs` are the op's inputs, `grad_output` is dLoss/dOutput.
// It calls inputs[i].add_grad(...) for every input that requires a gradient.
using BackwardFn = std::function<void(std::vector<Var>& inputs, const Tensor& grad_output)>;

struct Node {
  Tensor data;
  Tensor grad;  // undefined until a gradient arrives
  bool requires_grad = false;
  std::string op;  // "matmul", "add", ... ("leaf" for inputs and parameters); shown in error messages
  std::vector<std::shared_ptr<Node>> inputs;
  BackwardFn backward;
  ~Node();  // iterative, so a 100,000-node chain does not overflow the stack when destroyed
};

class Var {
 public:
  Var() = default;
  explicit Var(std::shared_ptr<Node> node) : node_(std::move(node)) {}
  // A graph input (or a parameter, when requires_grad is true).
  static Var leaf(Tensor data, bool requires_grad = false, std::string name = "leaf");

  bool defined() const { return node_ != nullptr; }
  const Tensor& data() const;
  Tensor& data();
  const Tensor& grad() const;  // undefined when no gradient has arrived
  bool requires_grad() const { return node_ && node_->requires_grad; }
  const Shape& shape() const { return data().shape(); }
  std::int64_t size(std::int64_t d) const { return data().size(d); }
  std::int64_t dim() const { return data().dim(); }
  DType dtype() const { return data().dtype(); }
  double item() const { return data().item(); }
  const std::string& op() const;
  Node* node() const { return node_.get(); }
  const std::shared_ptr<Node>& node_ptr() const { return node_; }

  // grad += g. Checks that g's shape and dtype equal the value's, and says what the likely bug is if not.
  void add_grad(const Tensor& g);
  void zero_grad();  // drops the gradient (the next add_grad starts from zero)

  // Backpropagates from this scalar (or from `grad_output` of the same shape as this value).
  void backward(bool retain_graph = false);
  void backward(const Tensor& grad_output, bool retain_graph = false);

  Var detach() const;  // same value, no history

 private:
  std::shared_ptr<Node> node_;
};

// While a NoGrad object is alive (on this thread), ops record no graph: for evaluation and optimizer steps.
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};
bool grad_enabled();

// Used by every op: records the output node when any input requires a gradient and recording is on.
Var make_result(Tensor data, std::string op, std::vector<Var> inputs, BackwardFn backward);

// How many Nodes exist right now (for tests that check the graph is freed).
std::int64_t live_node_count();

}  // namespace gradlab
