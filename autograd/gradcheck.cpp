#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

namespace gradlab {

GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& opt) {
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].dtype() != DType::F64)
      throw_error("gradcheck: input ", i, " is ", dtype_name(inputs[i].dtype()), ", expected float64");
  // Fresh copies so the caller's tensors are never perturbed.
  std::vector<Tensor> values;
  for (const auto& t : inputs) values.push_back(t.clone());

  Tensor projection;
  auto scalar_of = [&](const std::vector<Var>& vars) -> Var {
    Var y = f(vars);
    if (!projection.defined()) {
      Rng rng(opt.seed);
      std::vector<double> r(static_cast<std::size_t>(y.data().numel()));
      for (auto& v : r) v = rng.uniform(0.5, 1.5) * (rng.uniform() < 0.5 ? -1 : 1);
      projection = Tensor::from_values(y.shape(), r, DType::F64);
    }
    return sum(mul(y, Var::leaf(projection)));
  };

  // Analytic gradients.
  std::vector<Var> vars;
  for (const auto& t : values) vars.push_back(Var::leaf(t, true));
  scalar_of(vars).backward();

  // Numeric gradients, one element at a time.
  auto eval = [&]() {
    NoGrad guard;
    std::vector<Var> vs;
    for (const auto& t : values) vs.push_back(Var::leaf(t, false));
    return scalar_of(vs).item();
  };
  GradcheckResult result;
  for (std::size_t i = 0; i < values.size(); ++i) {
    Tensor analytic = vars[i].grad().defined() ? vars[i].grad() : Tensor::zeros(values[i].shape(), DType::F64);
    double* p = values[i].data<double>();
    auto a = analytic.to_vector();
    for (std::int64_t k = 0; k < values[i].numel(); ++k) {
      const double saved = p[k];
      p[k] = saved + opt.eps;
      const double up = eval();
      p[k] = saved - opt.eps;
      const double down = eval();
      p[k] = saved;
      const double numeric = (up - down) / (2 * opt.eps);
      const double ratio = std::abs(a[k] - numeric) / (opt.atol + opt.rtol * std::abs(numeric));
      if (std::isnan(ratio) || ratio > result.worst_ratio || result.report.empty()) {
        result.worst_ratio = std::isnan(ratio) ? INFINITY : ratio;
        std::ostringstream s;
        s.precision(10);
        s << "input " << i << " element " << k << ": analytic " << a[k] << ", numeric " << numeric;
        result.report = s.str();
      }
    }
  }
  result.ok = result.worst_ratio <= 1.0;
  return result;
}

}  // namespace gradlab
