#include "nn/module.h"

namespace gradlab {

Var Module::register_parameter(const std::string& name, Tensor init) {
  for (const auto& [n, v] : params_)
    if (n == name) throw_error("register_parameter: the name '", name, "' is already registered");
  Var p = Var::leaf(std::move(init), /*requires_grad=*/true, name);
  params_.emplace_back(name, p);
  return p;
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [n, v] : params_) out.emplace_back(prefix + n, v);
  // a child registered under "" adds no level to its parameters' names
  for (const auto& [n, child] : children_) child->collect(n.empty() ? prefix : prefix + n + ".", out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> out;
  collect("", out);
  return out;
}

std::vector<Var> Module::parameters() const {
  std::vector<Var> out;
  for (auto& [n, v] : named_parameters()) out.push_back(v);
  return out;
}

Var Module::parameter(const std::string& name) const {
  std::string known;
  for (auto& [n, v] : named_parameters()) {
    if (n == name) return v;
    if (known.size() < 300) known += (known.empty() ? "" : ", ") + n;
  }
  throw_error("parameter: no parameter named '", name, "'; known: ", known);
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (auto& [name, v] : named_parameters()) n += v.data().numel();
  return n;
}

void Module::zero_grad() {
  for (auto& [n, v] : named_parameters()) v.zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, child] : children_) child->train(on);
}

}  // namespace gradlab
