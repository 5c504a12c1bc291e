#include "autograd/var.h"

#include <atomic>
#include <chrono>
#include <unordered_set>

#include "autograd/profile.h"
#include "tensor/ops.h"

namespace gradlab {

static std::atomic<std::int64_t> g_live_nodes{0};
static thread_local bool g_grad_enabled = true;

std::int64_t live_node_count() { return g_live_nodes.load(); }
bool grad_enabled() { return g_grad_enabled; }
NoGrad::NoGrad() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = previous_; }

static std::shared_ptr<Node> new_node() {
  ++g_live_nodes;
  return std::shared_ptr<Node>(new Node(), [](Node* n) {
    delete n;
    --g_live_nodes;
  });
}

Node::~Node() {
  // Destroying the last handle of a long chain would recurse once per node through the shared pointers.
  // Instead, take over the inputs that only we keep alive and release them from a loop.
  std::vector<std::shared_ptr<Node>> pending = std::move(inputs);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n && n.use_count() == 1) {
      for (auto& in : n->inputs) pending.push_back(std::move(in));
      n->inputs.clear();
    }
    // n is released here with no inputs left, so its destructor does not recurse.
  }
}

Var Var::leaf(Tensor data, bool requires_grad, std::string name) {
  if (!data.defined()) throw_error("Var::leaf: got an undefined tensor");
  auto n = new_node();
  n->data = std::move(data);
  n->requires_grad = requires_grad;
  n->op = std::move(name);
  return Var(std::move(n));
}

const Tensor& Var::data() const {
  if (!node_) throw_error("Var: the variable is undefined (default-constructed)");
  return node_->data;
}
Tensor& Var::data() {
  if (!node_) throw_error("Var: the variable is undefined (default-constructed)");
  return node_->data;
}
const Tensor& Var::grad() const {
  if (!node_) throw_error("Var: the variable is undefined (default-constructed)");
  return node_->grad;
}
const std::string& Var::op() const {
  if (!node_) throw_error("Var: the variable is undefined (default-constructed)");
  return node_->op;
}

void Var::add_grad(const Tensor& g) {
  if (!node_) throw_error("add_grad: the variable is undefined");
  if (g.shape() != node_->data.shape())
    throw_error("add_grad: the gradient for '", node_->op, "' has shape ", shape_str(g.shape()),
                " but its value has shape ", shape_str(node_->data.shape()),
                "; the backward function of the op that consumed it probably forgot to reduce a broadcast dimension");
  if (g.dtype() != node_->data.dtype())
    throw_error("add_grad: the gradient for '", node_->op, "' is ", dtype_name(g.dtype()), " but its value is ",
                dtype_name(node_->data.dtype()), "; mixing float32 and float64 in one graph is not supported");
  if (!node_->grad.defined())
    // Never alias a view of someone else's buffer; a fresh result nobody else holds is kept as it is.
    node_->grad = g.owns_all_storage() ? g : g.clone();
  else
    ops::add_inplace(node_->grad, g);
}

void Var::zero_grad() {
  if (node_) node_->grad = Tensor();
}

Var Var::detach() const { return Var::leaf(data(), false, "detach"); }

void Var::backward(bool retain_graph) {
  if (data().numel() != 1)
    throw_error("backward: called on a value of shape ", shape_str(shape()),
                "; backward() without an argument needs a scalar (reduce with sum or mean first, or pass a gradient)");
  backward(Tensor::ones(shape(), dtype()), retain_graph);
}

void Var::backward(const Tensor& grad_output, bool retain_graph) {
  if (!node_) throw_error("backward: the variable is undefined");
  if (!node_->requires_grad)
    throw_error("backward: this value (op '", node_->op,
                "') does not require a gradient: no input of its graph has requires_grad, or it was computed under "
                "NoGrad");
  // Topological order by an iterative depth-first search (no recursion: graphs can be 100,000 nodes deep).
  // `order` holds owning pointers: freeing a node's inputs below must not destroy nodes still to visit.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<std::shared_ptr<Node>, std::size_t>> stack;
  stack.push_back({node_, 0});
  visited.insert(node_.get());
  while (!stack.empty()) {
    Node* n = stack.back().first.get();
    std::size_t& next = stack.back().second;
    if (next < n->inputs.size()) {
      std::shared_ptr<Node> child = n->inputs[next++];
      if (child->requires_grad && visited.insert(child.get()).second) stack.push_back({std::move(child), 0});
    } else {
      order.push_back(std::move(stack.back().first));
      stack.pop_back();
    }
  }
  // `order` lists every node after its inputs; walk it backwards from the output.
  add_grad(grad_output);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = it->get();
    if (!n->backward) continue;  // a leaf: its gradient stays for the optimizer
    if (n->grad.defined()) {
      std::vector<Var> inputs;
      inputs.reserve(n->inputs.size());
      for (auto& in : n->inputs) inputs.emplace_back(in);
      if (profile::enabled()) {
        const auto t0 = std::chrono::steady_clock::now();
        n->backward(inputs, n->grad);
        profile::record(profile::Kind::Backward, n->op,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      } else {
        n->backward(inputs, n->grad);
      }
    }
    // An intermediate gradient is used once: drop it, so a second backward over a retained graph starts
    // from zero there (only leaves accumulate, as in PyTorch).
    n->grad = Tensor();
    if (!retain_graph) {
      // Free as we go: the op's inputs and saved tensors are no longer needed.
      n->backward = nullptr;
      n->inputs.clear();
    }
  }
}

Var make_result(Tensor data, std::string op, std::vector<Var> inputs, BackwardFn backward) {
  bool needs = false;
  if (g_grad_enabled)
    for (auto& in : inputs) needs = needs || in.requires_grad();
  auto n = new_node();
  n->data = std::move(data);
  n->op = std::move(op);
  if (needs) {
    n->requires_grad = true;
    n->inputs.reserve(inputs.size());
    for (auto& in : inputs) n->inputs.push_back(in.node_ptr());
    n->backward = std::move(backward);
  }
  if (g_grad_enabled && profile::enabled()) profile::op_recorded(n->op);
  return Var(std::move(n));
}

}  // namespace gradlab
