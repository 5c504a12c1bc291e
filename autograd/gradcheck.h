#pragma once
// The gradient checker: compares the gradients from backward() with central differences,
//     df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),
// in float64, where the truncation error is O(eps^2) and the rounding error O(1e-16 / eps): eps = 1e-6 makes
// both about 1e-10 to 1e-12, far below the rtol 1e-5 that the checks ask for.
//
// A function with a tensor output is reduced to a scalar as sum(f(x) * r) with a fixed random r, so every
// output element is checked at once (a plain sum would hide errors that cancel, for instance in softmax).
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace gradlab {

struct GradcheckOptions {
  double eps = 1e-6;
  double rtol = 1e-5;
  double atol = 1e-8;
  std::uint64_t seed = 0;  // for the projection r
};

struct GradcheckResult {
  bool ok = true;
  double worst_ratio = 0;  // max over elements of |analytic - numeric| / (atol + rtol |numeric|); ok when <= 1
  std::string report;      // the worst element, say "input 1 [3]: analytic 0.25 numeric 0.2501"
};

// inputs must be float64. f receives leaf Vars that require gradients.
GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace gradlab
