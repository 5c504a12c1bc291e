// Lesson 05: backprop by hand. The backward passes of layernorm and of softmax + cross-entropy, derived on
// paper, written as plain loops, and checked against autograd (fused ops and elementary-op compositions).
#include <cmath>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "lessons/lesson.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

Tensor randn(Rng& rng, const Shape& s, double scale = 1.0) {
  std::vector<double> v(static_cast<std::size_t>(shape_numel(s)));
  for (double& x : v) x = rng.normal(0.0, scale);
  return Tensor::from_values(s, v, DType::F64);
}

// Layernorm forward + backward by hand, for x (N, C), weight w (C), bias b (C), upstream gradient dy (N, C).
struct LayerNormGrads {
  std::vector<double> y, dx, dw, db;
};
LayerNormGrads layernorm_by_hand(const std::vector<double>& x, const std::vector<double>& w,
                                 const std::vector<double>& b, const std::vector<double>& dy, std::int64_t N,
                                 std::int64_t C, double eps) {
  LayerNormGrads g;
  g.y.resize(N * C);
  g.dx.resize(N * C);
  g.dw.assign(C, 0.0);
  g.db.assign(C, 0.0);
  for (std::int64_t n = 0; n < N; ++n) {
    const double* xr = &x[n * C];
    double mean = 0, var = 0;
    for (std::int64_t c = 0; c < C; ++c) mean += xr[c];
    mean /= C;
    for (std::int64_t c = 0; c < C; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= C;  // biased, as PyTorch
    const double rstd = 1.0 / std::sqrt(var + eps);
    // xhat = (x - mean) * rstd;  y = xhat * w + b
    std::vector<double> xhat(C), dxhat(C);
    double mean_dxhat = 0, mean_dxhat_xhat = 0;
    for (std::int64_t c = 0; c < C; ++c) {
      xhat[c] = (xr[c] - mean) * rstd;
      g.y[n * C + c] = xhat[c] * w[c] + b[c];
      g.dw[c] += dy[n * C + c] * xhat[c];
      g.db[c] += dy[n * C + c];
      dxhat[c] = dy[n * C + c] * w[c];
      mean_dxhat += dxhat[c] / C;
      mean_dxhat_xhat += dxhat[c] * xhat[c] / C;
    }
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    for (std::int64_t c = 0; c < C; ++c) g.dx[n * C + c] = rstd * (dxhat[c] - mean_dxhat - xhat[c] * mean_dxhat_xhat);
  }
  return g;
}

double max_diff(const std::vector<double>& a, const Tensor& b) {
  std::vector<double> bv = b.to_vector();
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - bv[i]));
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{5, "backprop", "Backprop by hand: layernorm and softmax cross-entropy", 5};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    Rng rng(L.seed());
    const std::int64_t N = 4, C = 6, V = 7;
    const double eps = 1e-5;

    // ------------------------------------------------------------------------------------------------------
    L.step("Layernorm, forward");
    L.say("For each row x (C numbers):  mu = mean(x),  var = mean((x - mu)^2),  rstd = 1/sqrt(var + eps),");
    L.say("xhat = (x - mu) rstd,  y = xhat * w + b.");
    Tensor x = randn(rng, {N, C}, 2.0), w = randn(rng, {C}), b = randn(rng, {C}), dy = randn(rng, {N, C});
    LayerNormGrads hand = layernorm_by_hand(x.to_vector(), w.to_vector(), b.to_vector(), dy.to_vector(), N, C, eps);
    Var xv = Var::leaf(x, true), wv = Var::leaf(w, true), bv = Var::leaf(b, true);
    Var y = layernorm(xv, wv, bv, eps);
    L.check(max_diff(hand.y, y.data()) < 1e-12, "hand-written forward = autograd's layernorm",
            fmt("max |diff| %.1e", max_diff(hand.y, y.data())));

    // ------------------------------------------------------------------------------------------------------
    L.step("Layernorm, backward");
    L.say("Given dy = dLoss/dy:  dw = sum_rows dy * xhat,  db = sum_rows dy,  dxhat = dy * w, and because mu and");
    L.say("rstd depend on every x_c, dxhat flows back through them too. Collecting the three paths:");
    L.say("    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))");
    L.say("Two projections are removed: the mean (layernorm ignores shifts of x) and the xhat direction");
    L.say("(it ignores scaling of x).");
    y.backward(dy);
    const double ddx = max_diff(hand.dx, xv.grad()), ddw = max_diff(hand.dw, wv.grad()), ddb = max_diff(hand.db, bv.grad());
    L.check(ddx < 1e-12 && ddw < 1e-12 && ddb < 1e-12, "dx, dw, db by hand = autograd (fused layernorm op)",
            fmt("max |diff| %.1e, %.1e, %.1e", ddx, ddw, ddb));
    {
      // the same function from elementary ops: autograd differentiates each piece separately
      Var x2 = Var::leaf(x, true);
      Var mu = mean(x2, {-1}, true);
      Var xc = x2 - mu;
      Var var = mean(xc * xc, {-1}, true);
      Var y2 = xc / sqrt(var + eps) * Var::leaf(w) + Var::leaf(b);
      y2.backward(dy);
      const double dd = max_diff(hand.dx, x2.grad());
      L.check(dd < 1e-12, "and = autograd through mean, sub, mul, sqrt, div (6 small ops, 6 backward steps)",
              fmt("max |diff| %.1e", dd));
    }
    double sum_dx = 0, dot_dx = 0;
    std::vector<double> dxv = xv.grad().to_vector();
    for (std::int64_t c = 0; c < C; ++c) {
      sum_dx += dxv[c];
      dot_dx += dxv[c] * (x.at({0, c}));
    }
    L.sayf("Row 0: sum(dx) = %.2e (shifting x changes nothing, so the gradient has no mean component).", sum_dx);
    L.check(std::fabs(sum_dx) < 1e-12, "each row of dx sums to 0");

    // ------------------------------------------------------------------------------------------------------
    L.step("Softmax + cross-entropy, forward");
    L.say("For logits z (one row of V numbers) and the correct class t:");
    L.say("    p = softmax(z),   loss = -log p_t = logsumexp(z) - z_t,   averaged over the N rows.");
    Tensor z = randn(rng, {N, V}, 1.5);
    std::vector<std::int32_t> targets;
    for (std::int64_t n = 0; n < N; ++n) targets.push_back(static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(V))));
    std::vector<double> zv = z.to_vector(), p(N * V), dz(N * V);
    double loss_hand = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      double mx = -1e300, s = 0;
      for (std::int64_t v = 0; v < V; ++v) mx = std::max(mx, zv[n * V + v]);
      for (std::int64_t v = 0; v < V; ++v) s += std::exp(zv[n * V + v] - mx);
      const double lse = mx + std::log(s);
      loss_hand += (lse - zv[n * V + targets[n]]) / N;
      for (std::int64_t v = 0; v < V; ++v) {
        p[n * V + v] = std::exp(zv[n * V + v] - lse);
        // dloss/dz = (p - onehot(t)) / N
        dz[n * V + v] = (p[n * V + v] - (v == targets[n] ? 1.0 : 0.0)) / N;
      }
    }
    Var zl = Var::leaf(z, true);
    Var ce = cross_entropy(zl, targets);
    L.sayf("loss by hand %.12f, autograd %.12f", loss_hand, ce.item());
    L.check_close(ce.item(), loss_hand, 1e-12, 0, "the fused cross_entropy's loss equals the hand computation");

    // ------------------------------------------------------------------------------------------------------
    L.step("Softmax + cross-entropy, backward");
    L.say("dloss/dz_v = p_v - [v = t]  (per row, divided by N for the mean).");
    L.say("The softmax Jacobian diag(p) - p p^T meets the log's 1/p_t and almost everything cancels.");
    L.say("That is why frameworks fuse the two: one subtraction instead of a V x V Jacobian, and no log of a");
    L.say("tiny probability.");
    ce.backward();
    const double dd = max_diff(dz, zl.grad());
    L.check(dd < 1e-14, "p - onehot = autograd's gradient", fmt("max |diff| %.1e", dd));
    {
      Var z2 = Var::leaf(z, true);
      // unfused: log(softmax(z)) and pick the target entries with a one-hot mask
      std::vector<double> onehot(N * V, 0.0);
      for (std::int64_t n = 0; n < N; ++n) onehot[n * V + targets[n]] = -1.0 / N;
      Var l2 = sum(log(softmax(z2)) * Var::leaf(Tensor::from_values({N, V}, onehot, DType::F64)));
      l2.backward();
      const double d2 = max_diff(dz, z2.grad());
      L.check(d2 < 1e-12, "the unfused log(softmax) composition gives the same gradient", fmt("max |diff| %.1e", d2));
    }
    L.say("Row 0 of the gradient (times N): it is the probability vector with 1 taken off the target:");
    std::string row;
    for (std::int64_t v = 0; v < V; ++v) row += fmt(" %+.3f", dz[v] * N);
    L.sayf("  target %d:%s", targets[0], row.c_str());

    // ------------------------------------------------------------------------------------------------------
    L.step("Trust, but check");
    GradcheckResult r1 = gradcheck(
        [](const std::vector<Var>& in) { return layernorm(in[0], in[1], in[2], 1e-5); }, {x, w, b});
    GradcheckResult r2 = gradcheck([&](const std::vector<Var>& in) { return cross_entropy(in[0], targets); }, {z});
    L.check(r1.ok, "gradcheck(layernorm)", fmt("worst ratio %.3g", r1.worst_ratio));
    L.check(r2.ok, "gradcheck(cross_entropy)", fmt("worst ratio %.3g", r2.worst_ratio));
    (void)dot_dx;
  });
}
