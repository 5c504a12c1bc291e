// Lesson 02: derivatives. The numerical derivative and its two errors (truncation and rounding), then the
// gradient checker as a tool: it confirms a correct backward and catches a wrong one.
#include <cmath>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "tensor/rng.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

double f(double x) { return std::sin(x) * std::exp(-0.5 * x); }
double df(double x) { return std::cos(x) * std::exp(-0.5 * x) - 0.5 * std::sin(x) * std::exp(-0.5 * x); }

// A deliberately wrong op: y = x^3 whose backward forgets the factor 3 (a classic slip).
Var cube_buggy(const Var& x) {
  Tensor y = x.data().clone();
  {
    double* p = y.data<double>();
    for (std::int64_t i = 0; i < y.numel(); ++i) p[i] = p[i] * p[i] * p[i];
  }
  return make_result(y, "cube_buggy", {x}, [](std::vector<Var>& in, const Tensor& g) {
    Tensor d = in[0].data().clone();
    double* p = d.data<double>();
    const double* gp = g.data<double>();
    for (std::int64_t i = 0; i < d.numel(); ++i) p[i] = p[i] * p[i] * gp[i];  // should be 3 x^2 g
    in[0].add_grad(d);
  });
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{2, "derivatives", "Derivatives: the numerical derivative and the gradient checker", 2};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    // ------------------------------------------------------------------------------------------------------
    L.step("The derivative as a limit");
    L.say("f(x) = sin(x) e^{-x/2},  f'(x) = cos(x) e^{-x/2} - sin(x) e^{-x/2} / 2.");
    L.say("The forward difference (f(x+h) - f(x)) / h has error O(h); the central difference");
    L.say("(f(x+h) - f(x-h)) / 2h has error O(h^2), because the h^2 terms of the Taylor series cancel.");
    const double x0 = 1.3;
    L.sayf("At x = %.1f the exact derivative is %.15f.", x0, df(x0));
    L.sayf("  %8s  %14s  %14s", "h", "forward err", "central err");
    std::vector<double> hs, fe, ce;
    for (int e = 1; e <= 15; ++e) {
      const double h = std::pow(10.0, -e);
      const double fwd = (f(x0 + h) - f(x0)) / h;
      const double cen = (f(x0 + h) - f(x0 - h)) / (2 * h);
      hs.push_back(h);
      fe.push_back(std::fabs(fwd - df(x0)));
      ce.push_back(std::fabs(cen - df(x0)));
      L.sayf("  %8.0e  %14.3e  %14.3e", h, fe.back(), ce.back());
    }
    L.say("Shrinking h helps until rounding takes over: f is only known to ~1e-16 relative, and dividing by h");
    L.say("magnifies that to ~1e-16/h. The sweet spot: h ~ 1e-8 (forward), h ~ 1e-5..1e-6 (central), in float64.");
    std::size_t best = 0;
    for (std::size_t i = 1; i < ce.size(); ++i)
      if (ce[i] < ce[best]) best = i;
    L.check(ce[3] < fe[3], "at h = 1e-4 the central difference beats the forward one", fmt("%.1e vs %.1e", ce[3], fe[3]));
    L.check(ce.back() > ce[best] * 100, "at h = 1e-15 rounding error dominates (the error grows again)",
            fmt("best %.1e at h = %.0e, %.1e at h = 1e-15", ce[best], hs[best], ce.back()));
    lesson::LinePlot p;
    p.title = "Error of the numerical derivative of sin(x) e^{-x/2} at x = 1.3 (float64)";
    p.x_label = "step h";
    p.y_label = "|error|";
    p.log_x = p.log_y = true;
    std::vector<double> fe_c = fe, ce_c = ce;
    for (double& v : fe_c) v = std::max(v, 1e-17);
    for (double& v : ce_c) v = std::max(v, 1e-17);
    p.series.push_back({"forward (f(x+h)-f(x))/h", hs, fe_c});
    p.series.push_back({"central (f(x+h)-f(x-h))/2h", hs, ce_c});
    L.wrote(lesson::save_line_plot(p, L.stem("derivative_error")));

    // ------------------------------------------------------------------------------------------------------
    L.step("Float32 is much coarser");
    L.say("Training runs in float32 (7 significant digits). The same experiment in float32:");
    double best32 = 1e9, best32_h = 0;
    for (int e = 1; e <= 7; ++e) {
      const float h = std::pow(10.0f, -static_cast<float>(e));
      const float x = static_cast<float>(x0);
      auto ff = [](float v) { return std::sin(v) * std::exp(-0.5f * v); };
      const double err = std::fabs((ff(x + h) - ff(x - h)) / (2 * h) - df(x0));
      if (err < best32) best32 = err, best32_h = h;
      L.sayf("  h = %.0e   central error %.3e", h, err);
    }
    L.sayf("Best float32 error %.1e (at h = %.0e): that is why gradlab's gradient checks run in float64.", best32, best32_h);
    L.check(best32 > ce[best], "float32 differences are far less accurate than float64 ones");

    // ------------------------------------------------------------------------------------------------------
    L.step("The gradient checker");
    L.say("autograd computes exact derivatives by the chain rule (lesson 03). gradcheck compares them with central");
    L.say("differences (eps = 1e-6, float64) for every input element. A tensor output is reduced to a scalar");
    L.say("as sum(f(x) * r) with a fixed random r, so errors cannot cancel.");
    Rng rng(L.seed());
    auto rand_tensor = [&](const Shape& s) {
      std::vector<double> v(static_cast<std::size_t>(shape_numel(s)));
      for (double& x : v) x = rng.normal();
      return Tensor::from_values(s, v, DType::F64);
    };
    // tanh(x W + b), summed with softmax: a small network in one expression
    auto net = [](const std::vector<Var>& in) { return softmax(tanh(matmul(in[0], in[1]) + in[2])); };
    GradcheckResult r = gradcheck(net, {rand_tensor({3, 4}), rand_tensor({4, 5}), rand_tensor({5})});
    L.say("softmax(tanh(x W + b)), x (3, 4), W (4, 5), b (5):  " + r.report);
    L.check(r.ok, "the library's backward passes the check", fmt("worst ratio %.3g (<= 1 passes)", r.worst_ratio));

    // ------------------------------------------------------------------------------------------------------
    L.step("Catching a bug");
    L.say("Here is an op y = x^3 whose backward forgets the factor 3 (it returns x^2 * grad).");
    GradcheckResult bad = gradcheck([](const std::vector<Var>& in) { return cube_buggy(in[0]); }, {rand_tensor({6})});
    L.say("gradcheck says: " + bad.report);
    L.check(!bad.ok, "the checker rejects the wrong backward", fmt("worst ratio %.3g", bad.worst_ratio));
    GradcheckResult good = gradcheck([](const std::vector<Var>& in) { return pow(in[0], 3.0); }, {rand_tensor({6})});
    L.check(good.ok, "and accepts the library's pow(x, 3)", fmt("worst ratio %.3g", good.worst_ratio));
    L.say("Use it whenever you write a backward: a passing check in float64 at rtol 1e-5 is strong evidence.");
    L.say("Pitfalls: kinks (relu at 0, max with ties) give honest disagreements; check away from them.");
  });
}
