// Lesson 06: modules and optimizers. A small MLP (a Module with named parameters) learns two interleaved spirals;
// plain SGD, SGD with momentum and AdamW train the same initial weights; loss curves and decision boundaries.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "tensor/rng.h"
#include "viz/canvas.h"
#include "viz/colormap.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

// y = x W + b, W (in, out) initialised N(0, 1/in), b = 0.
class Dense : public Module {
 public:
  Dense(std::int64_t in, std::int64_t out, Rng& rng) {
    std::vector<double> w(static_cast<std::size_t>(in * out));
    for (double& v : w) v = rng.normal(0.0, 1.0 / std::sqrt(static_cast<double>(in)));
    weight = register_parameter("weight", Tensor::from_values({in, out}, w));
    bias = register_parameter("bias", Tensor::zeros({out}));
  }
  // x is (N, in) -> (N, out)
  Var forward(const Var& x) const { return matmul(x, weight) + bias; }
  Var weight, bias;
};

// 2 -> hidden -> hidden -> 2, tanh between.
class Mlp : public Module {
 public:
  Mlp(std::int64_t hidden, std::uint64_t seed) {
    Rng rng(seed);
    l1 = &register_module("l1", std::make_unique<Dense>(2, hidden, rng));
    l2 = &register_module("l2", std::make_unique<Dense>(hidden, hidden, rng));
    l3 = &register_module("l3", std::make_unique<Dense>(hidden, 2, rng));
  }
  // x is (N, 2) -> logits (N, 2)
  Var forward(const Var& x) const { return l3->forward(tanh(l2->forward(tanh(l1->forward(x))))); }
  Dense *l1, *l2, *l3;
};

// Two interleaved spirals, n points per class, a little noise.
struct Points {
  std::vector<double> xy;  // (N, 2)
  std::vector<std::int32_t> label;
};
Points spirals(std::int64_t n, Rng& rng) {
  Points p;
  for (int cls = 0; cls < 2; ++cls)
    for (std::int64_t k = 0; k < n; ++k) {
      const double t = 0.25 + 2.6 * static_cast<double>(k) / n;  // turns
      const double r = t / 3.0;
      const double a = 2 * M_PI * t * 0.55 + cls * M_PI;
      p.xy.push_back(r * std::cos(a) + rng.normal(0, 0.03));
      p.xy.push_back(r * std::sin(a) + rng.normal(0, 0.03));
      p.label.push_back(cls);
    }
  return p;
}

double accuracy(const Mlp& m, const Points& p) {
  NoGrad ng;
  const std::int64_t N = static_cast<std::int64_t>(p.label.size());
  Tensor logits = m.forward(Var::leaf(Tensor::from_values({N, 2}, p.xy))).data();
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < N; ++i) right += ((logits.at({i, 1}) > logits.at({i, 0})) ? 1 : 0) == p.label[i];
  return static_cast<double>(right) / static_cast<double>(N);
}

// Plain SGD with optional momentum: v = mu v + g;  p -= lr v.
struct Sgd {
  std::vector<Var> params;
  std::vector<Tensor> velocity;
  double lr, momentum;
  void step() {
    if (velocity.empty())
      for (auto& p : params) velocity.push_back(Tensor::zeros(p.shape(), p.dtype()));
    for (std::size_t k = 0; k < params.size(); ++k) {
      if (!params[k].grad().defined()) continue;
      float* v = velocity[k].data<float>();
      float* w = params[k].data().data<float>();
      const Tensor g = params[k].grad().contiguous();
      const float* gp = g.data<float>();
      for (std::int64_t i = 0; i < g.numel(); ++i) {
        v[i] = static_cast<float>(momentum) * v[i] + gp[i];
        w[i] -= static_cast<float>(lr) * v[i];
      }
    }
  }
};

// The model's P(class 1) on a grid over [-1.1, 1.1]^2 with the data points on top, one panel.
void draw_boundary(viz::Canvas& c, int x0, int y0, int size, const Mlp& m, const Points& p, const std::string& title) {
  const int g = 110;  // grid cells per side
  std::vector<double> grid;
  for (int r = 0; r < g; ++r)
    for (int q = 0; q < g; ++q) {
      grid.push_back(-1.1 + 2.2 * (q + 0.5) / g);
      grid.push_back(1.1 - 2.2 * (r + 0.5) / g);
    }
  Tensor logits;
  {
    NoGrad ng;
    logits = m.forward(Var::leaf(Tensor::from_values({g * g, 2}, grid))).data();
  }
  std::vector<viz::Color> cols(static_cast<std::size_t>(g * g));
  const viz::Colormap& cmap = viz::Colormap::cividis();
  for (int k = 0; k < g * g; ++k) {
    const double d = logits.at({k, 1}) - logits.at({k, 0});
    cols[k] = viz::mix(cmap(1.0 / (1.0 + std::exp(-d))), viz::colors::white, 0.35);
  }
  const int cell = size / g;
  c.cells(x0, y0, cell, cell, g, g, cols, std::vector<bool>(cols.size(), true));
  for (std::size_t i = 0; i < p.label.size(); ++i) {
    const double px = x0 + (p.xy[2 * i] + 1.1) / 2.2 * cell * g, py = y0 + (1.1 - p.xy[2 * i + 1]) / 2.2 * cell * g;
    c.circle(px, py, 3.2, viz::colors::white);
    c.circle(px, py, 2.4, p.label[i] ? viz::Color{230, 159, 0} : viz::Color{0, 60, 140});
  }
  c.stroke_rect(x0, y0, cell * g, cell * g, viz::colors::frame);
  viz::TextStyle ts;
  ts.size = 13;
  ts.anchor = viz::Anchor::Middle;
  c.text(x0 + cell * g / 2.0, y0 - 8, title, ts);
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{6, "modules", "Modules and optimizers: an MLP on two spirals, SGD against AdamW", 6};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    const bool quick = L.quick();
    const std::int64_t n = quick ? 100 : 200, steps = quick ? 150 : 1500, hidden = 32;

    // ------------------------------------------------------------------------------------------------------
    L.step("Data: two spirals");
    Rng rng(L.seed());
    Points data = spirals(n, rng);
    const std::int64_t N = 2 * n;
    L.sayf("%lld points in the plane, two classes wound around each other: no straight line separates them.", (long long)N);
    Var X = Var::leaf(Tensor::from_values({N, 2}, data.xy));

    // ------------------------------------------------------------------------------------------------------
    L.step("A module and its parameters");
    L.say("A Module owns named parameters and child modules (nn/module.h), like torch.nn.Module:");
    Mlp probe(hidden, L.seed());
    std::int64_t count = 0;
    for (const auto& [name, v] : probe.named_parameters()) {
      L.sayf("  %-10s %s", name.c_str(), shape_str(v.shape()).c_str());
      count += v.data().numel();
    }
    const std::int64_t expected = (2 * hidden + hidden) + (hidden * hidden + hidden) + (hidden * 2 + 2);
    L.check(count == expected && probe.num_parameters() == expected, "parameter count = (2+1)h + (h+1)h + (h+1)2",
            std::to_string(count));
    L.sayf("Untrained accuracy: %.1f%% (chance is 50%%).", 100 * accuracy(probe, data));

    // ------------------------------------------------------------------------------------------------------
    L.step("Three optimizers, one starting point");
    L.say("SGD:          p -= lr g                      (lr 0.1)");
    L.say("SGD+momentum: v = 0.9 v + g;  p -= lr v      (lr 0.1)");
    L.say("AdamW:        per-parameter step from running means of g and g^2, decoupled weight decay (lr 0.01)");
    L.sayf("Full batch (all %lld points), %lld steps each, cross-entropy loss. All three start from the same weights.",
           (long long)N, (long long)steps);
    struct Result {
      std::string name;
      std::vector<double> loss;
      double acc = 0;
      std::unique_ptr<Mlp> model;
    };
    std::vector<Result> results;
    for (int kind = 0; kind < 3; ++kind) {
      Result r;
      r.name = kind == 0 ? "SGD" : kind == 1 ? "SGD+momentum" : "AdamW";
      r.model = std::make_unique<Mlp>(hidden, L.seed());
      Mlp& m = *r.model;
      Sgd sgd{m.parameters(), {}, 0.1, kind == 1 ? 0.9 : 0.0};
      AdamWConfig ac;
      ac.weight_decay = 1e-4;
      AdamW adam(m.named_parameters(), ac);
      const double t0 = lesson::now_seconds();
      for (std::int64_t s = 0; s < steps; ++s) {
        m.zero_grad();
        Var loss = cross_entropy(m.forward(X), data.label);
        r.loss.push_back(loss.item());
        loss.backward();
        if (kind == 2)
          adam.step(0.01);
        else
          sgd.step();
      }
      r.acc = accuracy(m, data);
      L.sayf("  %-13s loss %.4f -> %.4f, accuracy %.1f%%  (%.2f s)", r.name.c_str(), r.loss.front(), r.loss.back(),
             100 * r.acc, lesson::now_seconds() - t0);
      results.push_back(std::move(r));
    }
    L.check(results[0].loss.front() == results[2].loss.front(), "all optimizers started from the same loss",
            fmt("%.6f", results[0].loss.front()));
    for (auto& r : results)
      L.check(r.loss.back() < r.loss.front(), r.name + " lowered the training loss");
    std::string csv = "step,sgd,sgd_momentum,adamw\n";
    for (std::int64_t s = 0; s < steps; ++s)
      csv += fmt("%lld,%.6f,%.6f,%.6f\n", (long long)s, results[0].loss[s], results[1].loss[s], results[2].loss[s]);
    L.save_text("loss.csv", csv);
    lesson::LinePlot lp;
    lp.title = fmt("Two spirals, MLP 2-%lld-%lld-2: training loss (seed %llu)", (long long)hidden, (long long)hidden,
                   (unsigned long long)L.seed());
    lp.x_label = "step";
    lp.y_label = "cross-entropy";
    lp.log_y = true;
    for (auto& r : results) lp.series.push_back({r.name, {}, r.loss});
    L.wrote(lesson::save_line_plot(lp, L.stem("loss")));

    // ------------------------------------------------------------------------------------------------------
    L.step("Decision boundaries");
    L.say("Each panel colours the plane by the model's P(class 1); dots are the training points.");
    const int panel = 330;
    viz::Canvas c(3 * panel + 4 * 30, panel + 90);
    {
      viz::TextStyle ts;
      ts.size = 16;
      ts.anchor = viz::Anchor::Middle;
      ts.valign = viz::VAlign::Top;
      c.text(c.width() / 2.0, 10, fmt("Decision boundaries after %lld steps (seed %llu)", (long long)steps,
                                      (unsigned long long)L.seed()), ts);
    }
    for (int k = 0; k < 3; ++k)
      draw_boundary(c, 30 + k * (panel + 30), 64, panel, *results[k].model, data,
                    fmt("%s, %.0f%% correct", results[k].name.c_str(), 100 * results[k].acc));
    c.save(L.stem("boundaries"));
    L.wrote(std::vector<std::string>{L.stem("boundaries") + ".png", L.stem("boundaries") + ".svg"});
    L.say("What to notice: plain SGD with a fixed step crawls through the flat early phase; momentum and AdamW");
    L.say("escape it. AdamW scales each parameter's step by its own gradient history, so one learning rate works");
    L.say("for the first and the last layer alike.");
  });
}
