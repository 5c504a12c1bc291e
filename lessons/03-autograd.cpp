// Lesson 03: autograd. The graph that every op records, the topological order backward() walks, and the
// pitfalls shown on purpose: a value used twice, gradients that accumulate across backward calls, zero_grad,
// a freed graph, and NoGrad.
#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "autograd/ops.h"
#include "lessons/lesson.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

// Depth-first post-order over the graph below `root`: every node after all of its inputs (what backward() does).
std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::function<void(Node*)> visit = [&](Node* n) {
    if (!seen.insert(n).second) return;
    for (auto& in : n->inputs) visit(in.get());
    order.push_back(n);
  };
  visit(root);
  return order;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{3, "autograd", "Autograd: the graph, topological order, and the pitfalls", 3};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    // ------------------------------------------------------------------------------------------------------
    L.step("Every op records a node");
    L.say("L = sum(tanh(a*b + a)), with a and b two leaves that require gradients.");
    const double av = 0.5, bv = -1.5;
    Var a = Var::leaf(Tensor::scalar(av, DType::F64), true, "a");
    Var b = Var::leaf(Tensor::scalar(bv, DType::F64), true, "b");
    Var c = a * b;
    Var d = c + a;
    Var e = tanh(d);
    Var loss = sum(e);
    std::unordered_map<Node*, std::string> names = {
        {a.node(), "a"}, {b.node(), "b"}, {c.node(), "c"}, {d.node(), "d"}, {e.node(), "e"}, {loss.node(), "L"}};
    L.say("Each node keeps its value, the op that made it and pointers to its inputs (never to its output):");
    for (Node* n : topological_order(loss.node())) {
      std::string ins;
      for (auto& in : n->inputs) ins += (ins.empty() ? "" : ", ") + names[in.get()];
      L.sayf("  %-2s = %-6s (%s)   value %+.6f", names[n].c_str(), n->op.c_str(), ins.c_str(), n->data.item());
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("Topological order");
    L.say("backward() needs each node's full gradient before it passes it on, so it visits nodes in reverse");
    L.say("topological order: a depth-first search lists every node after its inputs; walk that list backwards.");
    std::string fwd, bwd;
    auto order = topological_order(loss.node());
    for (Node* n : order) fwd += names[n] + " ";
    for (auto it = order.rbegin(); it != order.rend(); ++it) bwd += names[*it] + " ";
    L.say("  order:    " + fwd);
    L.say("  backward: " + bwd);
    L.check(order.front() == a.node() && order.back() == loss.node(), "inputs come first, the loss last");

    // ------------------------------------------------------------------------------------------------------
    L.step("The chain rule, by hand and by backward()");
    loss.backward();
    const double dv = av * bv + av, t = std::tanh(dv), dt = 1 - t * t;
    const double da_hand = dt * (bv + 1.0);  // two paths: through c = a*b (gives b) and directly into d (gives 1)
    const double db_hand = dt * av;
    L.sayf("dL/dd = 1 - tanh(d)^2 = %.6f", dt);
    L.sayf("dL/da = dL/dd * (dd/dc * dc/da + dd/da) = %.6f * (b + 1) = %.6f;   backward(): %.6f", dt, da_hand,
           a.grad().item());
    L.sayf("dL/db = dL/dd * a = %.6f;   backward(): %.6f", db_hand, b.grad().item());
    L.check_close(a.grad().item(), da_hand, 1e-12, 0, "dL/da from backward() equals the hand derivation");
    L.check_close(b.grad().item(), db_hand, 1e-12, 0, "dL/db from backward() equals the hand derivation");

    // ------------------------------------------------------------------------------------------------------
    L.step("Pitfall 1: a value used twice");
    L.say("a feeds two ops (a*b and +a). Its gradient is the SUM over both paths. An engine that assigned");
    L.say("(grad = ...) instead of accumulating (grad += ...) would keep only the path it visited last:");
    const double path_mul = dt * bv, path_add = dt * 1.0;
    L.sayf("  path through a*b: %+.6f   path through +a: %+.6f   sum: %+.6f", path_mul, path_add, path_mul + path_add);
    L.check_close(a.grad().item(), path_mul + path_add, 1e-12, 0, "add_grad accumulates: both paths arrive");

    // ------------------------------------------------------------------------------------------------------
    L.step("Pitfall 2: gradients accumulate across backward() calls");
    L.say("Leaf gradients are never reset by backward(): that is what makes gradient accumulation over");
    L.say("micro-batches work. But forget zero_grad() between optimizer steps, and the gradients pile up.");
    const double g1 = a.grad().item();
    Var loss2 = sum(tanh(a * b + a));  // a fresh graph on the same leaves
    loss2.backward();
    L.sayf("After a second forward+backward without zero_grad: dL/da = %.6f (= 2 x %.6f)", a.grad().item(), g1);
    L.check_close(a.grad().item(), 2 * g1, 1e-12, 0, "the second backward added to the first");
    a.zero_grad();
    b.zero_grad();
    Var loss3 = sum(tanh(a * b + a));
    loss3.backward();
    L.check_close(a.grad().item(), g1, 1e-12, 0, "after zero_grad() one backward gives the true gradient again");

    // ------------------------------------------------------------------------------------------------------
    L.step("Pitfall 3: the graph is freed by backward()");
    L.say("To save memory, backward() drops each node's inputs and saved tensors once it has used them.");
    L.say("Calling backward() again on the same loss reaches no leaf: the leaves' gradients do not change.");
    a.zero_grad();
    loss3.backward();  // the graph of loss3 was freed by the previous call
    L.check(!a.grad().defined() || a.grad().item() == 0.0, "second backward on a freed graph delivered nothing to a");
    L.say("To backpropagate again, run the forward pass again: it rebuilds the graph (that is what every training");
    L.say("step does). backward(retain_graph=true) keeps the graph alive instead, for special uses.");
    a.zero_grad();
    Var loss4 = sum(tanh(a * b + a));
    loss4.backward();
    L.check_close(a.grad().item(), g1, 1e-12, 0, "a fresh forward pass gives a fresh graph and the right gradient");

    // ------------------------------------------------------------------------------------------------------
    L.step("NoGrad: evaluation without a graph");
    L.say("Evaluation and optimizer updates need values, not graphs. Inside a NoGrad scope ops record nothing:");
    const std::int64_t before = live_node_count();
    Var y;
    {
      NoGrad ng;
      y = tanh(a * b + a);
    }
    L.sayf("live nodes before %lld, after a NoGrad forward of 4 ops %lld (only the result y, with no inputs);",
           (long long)before, (long long)live_node_count());
    L.sayf("y.requires_grad() = %s", y.requires_grad() ? "true" : "false");
    L.check(live_node_count() <= before + 1, "NoGrad kept no intermediate nodes");
    L.check(!y.requires_grad() && y.node()->inputs.empty(), "a NoGrad result has no inputs and needs no gradient");
    std::string msg;
    try {
      sum(y).backward();
    } catch (const Error& err) {
      msg = err.what();
    }
    L.say("and backward() through it is refused with a message:\n  " + msg);
    L.check(!msg.empty(), "backward() on a NoGrad value is an error, not a silent zero");
  });
}
