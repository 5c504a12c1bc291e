#pragma once
// Module: a layer with named parameters and child layers, like torch.nn.Module.
// Parameter names are hierarchical and follow nanoGPT ("transformer.h.0.attn.c_attn.weight"), so a
// checkpoint from nanoGPT's PyTorch code maps onto gradlab's model name for name.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"

namespace gradlab {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, depth first, in registration order.
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  std::vector<Var> parameters() const;
  Var parameter(const std::string& name) const;  // throws naming the known parameters if absent
  std::int64_t num_parameters() const;
  void zero_grad();

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

 protected:
  Var register_parameter(const std::string& name, Tensor init);
  // name "" puts the child's parameters at this module's level (an attention strategy's, beside c_attn)
  template <typename M>
  M& register_module(const std::string& name, std::unique_ptr<M> m) {
    M& ref = *m;
    children_.emplace_back(name, std::move(m));
    return ref;
  }

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const;
  std::vector<std::pair<std::string, Var>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace gradlab
