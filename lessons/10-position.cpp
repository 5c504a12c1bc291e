// Lesson 10: absolute position. The StableMask paper's three synthetic tasks (docs/stablemask.md#claims-the-course-measures)
// for every position encoding (none, learned, sinusoidal, rope, alibi) under each mask (causal, StableMask):
// why relative encodings cannot recover absolute position under a right-stochastic causal softmax, why
// StableMask's decreasing real mass R_i can, and what this engine measures at a small scale, beside the paper's
// numbers.
// Each training run is train/task_experiment.h's train_and_score_task, the function bench/position_tasks.cpp runs too.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "nn/gpt.h"
#include "nn/stablemask.h"
#include "train/task_experiment.h"
#include "data/tasks.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

// The experiment's sizes and recipe: {T, n_layer, n_head, n_embd, steps, batch, lr} (train/task_experiment.h, shared
// with bench/position_tasks, which writes the table in docs/science.md).
using Setup = TaskExperiment;

// Largest |logits[i] - logits[0]| over rows i of one sequence of T identical tokens (untrained model).
double row_spread_identical_inputs(const GPTConfig& c, std::int64_t T, std::uint64_t seed) {
  GPT model(c, seed);
  NoGrad ng;
  const std::vector<std::int32_t> ids(static_cast<std::size_t>(T), 0);
  Tensor logits = model.forward(ids, 1, T).data().reshape({T, -1});
  double worst = 0;
  for (std::int64_t i = 1; i < T; ++i)
    for (std::int64_t v = 0; v < logits.size(1); ++v)
      worst = std::max(worst, std::fabs(logits.at({i, v}) - logits.at({0, v})));
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{10, "position", "Absolute position: the paper's three tasks, causal vs StableMask", 1000};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    const bool quick = L.quick();
    const Setup s = quick ? Setup{8, 1, 2, 16, 30, 8, 1e-2} : Setup{24, 2, 4, 48, 250, 16, 3e-3};
    const std::vector<std::string> tasks = {"position-index", "position-marker", "position-parity"};
    const std::vector<std::string> short_names = {"index", "marker", "parity"};
    const std::vector<PosKind> poses = {PosKind::None, PosKind::Learned, PosKind::Sinusoidal, PosKind::Rope,
                                        PosKind::Alibi};
    enum { kNone, kLearned, kSinusoidal, kRope, kAlibi };  // indices into poses
    const std::vector<std::string>& masks = compared_strategies();  // causal first

    // ------------------------------------------------------------------------------------------------------
    L.step("Three tasks that need absolute position");
    L.say("The paper (App. B.2) asks a model to read the absolute position of a token from its own output:");
    L.say("  index   every input token is the same symbol; predict position t at position t (T classes).");
    L.say("  marker  random fillers and one marker M; at the marker, predict its position (T classes).");
    L.say("  parity  random fillers; predict whether t is even or odd (2 classes).");
    L.say("The content carries no information about position, so only the architecture can supply it.");
    for (std::size_t t = 0; t < tasks.size(); ++t) L.say("  " + make_task(tasks[t], s.T)->describe());
    L.sayf("Length T = %lld here; chance is 1/T = %.1f%% for index and marker, 50%% for parity.",
           static_cast<long long>(s.T), 100.0 / static_cast<double>(s.T));

    // ------------------------------------------------------------------------------------------------------
    L.step("Why relative encodings cannot count under a causal softmax");
    L.say("Causal attention gives row i the weights p_ij = softmax_j(a_ij) over j <= i: every row sums to 1");
    L.say("(the matrix is right-stochastic). Output o_i = sum_j p_ij v_j is a weighted MEAN of the values.");
    L.say("With identical inputs and no absolute encoding, v_j = v for every j, so o_i = v for every i,");
    L.say("whatever the scores a_ij are. RoPE and ALiBi only change the scores (they depend on i - j),");
    L.say("never the values: every row still averages copies of the same vector. Layer after layer, all");
    L.say("rows stay identical, so the prediction is the same at every position: accuracy <= 1/T on 'index'.");
    L.say("StableMask adds pseudo-attention mass for the future slots and drops it after the softmax:");
    L.say("  o_i = R_i * (weighted mean of v_j),  R_i = sum_{j<=i} e^{a_ij} / (sum_{j<=i} e^{a_ij} + Z(i)),");
    L.say("with Z(i) = sum_{j=i+1}^{L-1} e^{-j gamma} shrinking as i grows. With equal scores a, R_i =");
    L.say("(i+1)e^a / ((i+1)e^a + Z(i)) rises with i: the output's length now encodes the position.");

    // ------------------------------------------------------------------------------------------------------
    L.step("Check it: real mass R_i with equal scores");
    {
      const double gamma = alibi_slopes(s.n_head)[0], a = 0.0;
      std::vector<double> R;
      std::string line = "  R_i (gamma " + fmt("%.3f", gamma) + ", scores 0):";
      for (std::int64_t i = 0; i < s.T; ++i) {
        const double Z = std::exp(stablemask_tau(gamma, s.T, i, StableMaskTail::Finite));
        const double m = static_cast<double>(i + 1) * std::exp(a);
        R.push_back(m / (m + Z));
        if (i < 6 || i == s.T - 1) line += fmt(" %.3f", R.back());
        if (i == 6) line += " ..";
      }
      L.say(line);
      bool increasing = true;
      for (std::size_t i = 1; i < R.size(); ++i) increasing = increasing && R[i] > R[i - 1];
      L.check(increasing, "R_i strictly increases with i when every score is equal");
      L.check(std::fabs(R.back() - 1.0) < 1e-12, "the last row (i = L-1) has R = 1: no future slots left");
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("Check it in the real model: identical inputs, no position encoding");
    L.say("An untrained GPT (seed printed below) reads T copies of one token. Spread = largest difference");
    L.say("between the logits of row i and row 0, over all rows and vocabulary entries.");
    {
      const std::int64_t V = make_task("position-index", s.T)->vocab_size();
      double spread[5][2];
      for (std::size_t p = 0; p < poses.size(); ++p)
        for (std::size_t m = 0; m < masks.size(); ++m) {
          spread[p][m] = row_spread_identical_inputs(task_model_config(s, V, poses[p], masks[m]), s.T, L.seed());
          L.sayf("  pos %-10s mask %-10s spread %.2e", to_string(poses[p]), masks[m].c_str(), spread[p][m]);
        }
      L.check(spread[kNone][0] < 1e-5, "causal + no encoding: every row's logits are identical",
              fmt("spread %.2e", spread[kNone][0]));
      L.check(spread[kRope][0] < 1e-5 && spread[kAlibi][0] < 1e-5,
              "causal + rope / alibi: still identical (they move scores, not values)",
              fmt("rope %.2e, alibi %.2e", spread[kRope][0], spread[kAlibi][0]));
      L.check(spread[kNone][1] > 1e-3, "StableMask + no encoding: the rows differ (R_i grows with i)",
              fmt("spread %.2e", spread[kNone][1]));
      L.check(spread[kLearned][0] > 1e-3 && spread[kSinusoidal][0] > 1e-3,
              "learned and sinusoidal absolute embeddings: the rows differ even under the causal mask",
              fmt("learned %.2e, sinusoidal %.2e", spread[kLearned][0], spread[kSinusoidal][0]));
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("Train: 3 tasks x 5 encodings x 2 masks");
    L.sayf("GPT %lld layers, %lld heads, width %lld, T = %lld; %lld AdamW steps, batch %lld, lr %g; seed %llu.",
           (long long)s.n_layer, (long long)s.n_head, (long long)s.n_embd, (long long)s.T, (long long)s.steps,
           (long long)s.batch, s.lr, (unsigned long long)L.seed());
    double acc[3][5][2];
    const double t0 = lesson::now_seconds();
    for (std::size_t t = 0; t < tasks.size(); ++t)
      for (std::size_t p = 0; p < poses.size(); ++p)
        for (std::size_t m = 0; m < masks.size(); ++m) {
          const double t1 = lesson::now_seconds();
          acc[t][p][m] = train_and_score_task(s, tasks[t], poses[p], masks[m], L.seed()).accuracy;
          L.sayf("  %-16s pos %-10s mask %-10s accuracy %5.1f%%  (%.1f s)", tasks[t].c_str(), to_string(poses[p]),
                 masks[m].c_str(), 100 * acc[t][p][m], lesson::now_seconds() - t1);
        }
    L.sayf("%zu runs in %.1f s.", tasks.size() * poses.size() * masks.size(), lesson::now_seconds() - t0);
    const double chance = 1.0 / static_cast<double>(s.T);
    L.check(acc[0][kNone][0] <= chance + 1e-9 && acc[0][kRope][0] <= chance + 1e-9 &&
                acc[0][kAlibi][0] <= chance + 1e-9,
            "index task, causal mask: none / rope / alibi cannot beat 1/T (all rows identical, shown above)",
            fmt("none %.3f rope %.3f alibi %.3f, 1/T %.3f", acc[0][kNone][0], acc[0][kRope][0], acc[0][kAlibi][0],
                chance));

    // ------------------------------------------------------------------------------------------------------
    L.step("The table, beside the paper");
    // the paper's accuracies without StableMask (docs/stablemask.md#claims-the-course-measures): index / marker / parity
    const char* paper[5] = {"-", "97 / 94 / 98", "98 / 99 / 96", "25 / 25 / 43", "22 / 27 / 47"};
    std::string md = "| pos | mask | index | marker | parity | paper, causal (index / marker / parity) |\n";
    md += "|---|---|---|---|---|---|\n";
    L.say("  pos        mask        index  marker  parity   paper (no StableMask)");
    for (std::size_t p = 0; p < poses.size(); ++p)
      for (std::size_t m = 0; m < masks.size(); ++m) {
        const char* pp = m == 0 ? paper[p] : "";
        L.sayf("  %-10s %-10s %5.0f%%  %5.0f%%  %5.0f%%   %s", to_string(poses[p]), masks[m].c_str(),
               100 * acc[0][p][m], 100 * acc[1][p][m], 100 * acc[2][p][m], pp);
        md += fmt("| %s | %s | %.0f | %.0f | %.0f | %s |\n", to_string(poses[p]), masks[m].c_str(),
                  100 * acc[0][p][m], 100 * acc[1][p][m], 100 * acc[2][p][m], pp);
      }
    md += fmt("\nSeed %llu, T = %lld, %lld steps, %lld layers, width %lld%s.\n", (unsigned long long)L.seed(),
              (long long)s.T, (long long)s.steps, (long long)s.n_layer, (long long)s.n_embd,
              quick ? " (--quick: too small to learn, for CI only)" : "");
    L.save_text("accuracy.md", md);

    lesson::BarChart chart;
    chart.title = fmt("Accuracy (%%) on the position tasks, T = %lld, %lld steps, seed %llu", (long long)s.T,
                      (long long)s.steps, (unsigned long long)L.seed());
    chart.y_label = "accuracy (%)";
    chart.groups = short_names;
    for (PosKind p : poses)
      for (const std::string& m : masks) chart.series.push_back(std::string(to_string(p)) + " " + m);
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      std::vector<double> row;
      for (std::size_t p = 0; p < poses.size(); ++p)
        for (std::size_t m = 0; m < masks.size(); ++m) row.push_back(std::round(100 * acc[t][p][m]));
      chart.values.push_back(row);
    }
    chart.value_labels = false;
    chart.width = 1300;
    L.wrote(lesson::save_bar_chart(chart, L.stem("accuracy")));

    // ------------------------------------------------------------------------------------------------------
    L.step("Did StableMask help? (measured, this seed, this scale)");
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      std::string line = "  " + short_names[t] + ":";
      for (std::size_t p : {std::size_t(kNone), std::size_t(kRope), std::size_t(kAlibi)}) {
        const double d = 100 * (acc[t][p][1] - acc[t][p][0]);
        const char* verdict = d > 5 ? "improved" : (d < -5 ? "WORSE" : "no clear change");
        line += fmt(" %s %.0f -> %.0f%% (%s);", to_string(poses[p]), 100 * acc[t][p][0], 100 * acc[t][p][1], verdict);
      }
      L.say(line);
    }
    L.say("('improved' = more than 5 points higher, one seed. Learned and sinusoidal tables already give the position.)");
    if (quick) L.say("--quick trains for a few steps only: these numbers say nothing; run without --quick.");
  });
}
