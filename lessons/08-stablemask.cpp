// Lesson 08: StableMask. The pseudo-attention values, the P matrix, the real mass R_i of each row for several
// decay rates, the closed form Z(i) checked against the materialized softmax, and an untrained model's
// attention under both masks side by side (docs/stablemask.md#training-form and #closed-form).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "nn/gpt.h"
#include "data/grammar.h"
#include "nn/stablemask.h"
#include "tensor/attention_kernel.h"
#include "tensor/rng.h"
#include "viz/attention.h"
#include "viz/heatmap.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The training-form StableMask attention of one row, materialized: softmax over all L columns of
// (a_ij for j <= i, -j*gamma for j > i), then the future columns zeroed. scores is (L, L) row-major.
std::vector<double> stablemask_row_materialized(const std::vector<double>& scores, std::int64_t L, std::int64_t i,
                                                double gamma) {
  std::vector<double> logits(static_cast<std::size_t>(L));
  for (std::int64_t j = 0; j < L; ++j) logits[j] = j <= i ? scores[i * L + j] : -static_cast<double>(j) * gamma;
  const double mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (double& x : logits) sum += (x = std::exp(x - mx));
  std::vector<double> row(static_cast<std::size_t>(L), 0.0);
  for (std::int64_t j = 0; j <= i; ++j) row[j] = logits[j] / sum;  // the outer "⊙ C": future slots dropped
  return row;
}

// The same row from the closed form: Attn_ij = e^{a_ij} / (sum_{k<=i} e^{a_ik} + Z(i)).
std::vector<double> stablemask_row_closed_form(const std::vector<double>& scores, std::int64_t L, std::int64_t i,
                                               double gamma) {
  const double Z = std::exp(stablemask_tau(gamma, L, i, StableMaskTail::Finite));  // 0 for i = L-1
  double denom = Z;
  for (std::int64_t k = 0; k <= i; ++k) denom += std::exp(scores[i * L + k]);
  std::vector<double> row(static_cast<std::size_t>(L), 0.0);
  for (std::int64_t j = 0; j <= i; ++j) row[j] = std::exp(scores[i * L + j]) / denom;
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{8, "stablemask", "StableMask: pseudo-attention, real mass and the sink logit", 8};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    const bool quick = L.quick();

    // ------------------------------------------------------------------------------------------------------
    L.step("Pseudo-attention values");
    const std::int64_t n = 8;
    const double gamma = 0.5;
    L.say("Causal attention puts -inf on every future key (j > i), so each row's softmax sums to 1 over the past.");
    L.say("StableMask puts a finite pseudo-attention value P_ij = -j*gamma there instead. The future slots take part");
    L.say("in the softmax (they absorb probability mass) and are then zeroed, so no future value leaks:");
    L.say("    Attn = softmax_row(A ⊙ C + P) ⊙ C,   C_ij = [j <= i],   P_ij = -j*gamma [j > i]");
    L.sayf("P for L = %lld, gamma = %.2f (rows i = queries, columns j = keys; '.' = real score slot):", (long long)n, gamma);
    std::string header = "        ";
    for (std::int64_t j = 0; j < n; ++j) header += fmt("%6lld", (long long)j);
    L.say(header);
    lesson::MatrixFigure pf;
    pf.rows = pf.cols = n;
    for (std::int64_t i = 0; i < n; ++i) {
      std::string line = fmt("  i=%-3lld ", (long long)i);
      for (std::int64_t j = 0; j < n; ++j) {
        line += j > i ? fmt("%6.1f", -j * gamma) : std::string("     .");
        pf.values.push_back(j > i ? -j * gamma : NAN);
      }
      L.say(line);
    }
    L.say("The value depends on the key column j, not on the distance j - i: far-right columns are the most negative.");
    pf.title = fmt("StableMask pseudo-attention values P_ij = -j * gamma (gamma = %.2f)", gamma);
    pf.subtitle = "hatched: real-score slots (j <= i); coloured: pseudo slots (j > i)";
    pf.colormap = "cividis";
    pf.value_format = "%.1f";
    pf.colorbar_caption = "pseudo value P_ij";
    L.wrote(lesson::save_matrix_figure(pf, L.stem("p_matrix")));

    // With all real scores zero, the full softmax (before the outer mask) shows where each row's mass goes.
    lesson::MatrixFigure sf;
    sf.rows = sf.cols = n;
    sf.lo = 0;
    sf.hi = 1;
    std::vector<double> zeros(static_cast<std::size_t>(n * n), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
      double denom = 0;
      for (std::int64_t j = 0; j < n; ++j) denom += std::exp(j <= i ? 0.0 : -j * gamma);
      for (std::int64_t j = 0; j < n; ++j) sf.values.push_back(std::exp(j <= i ? 0.0 : -j * gamma) / denom);
    }
    sf.staircase = true;
    sf.colorbar_caption = "share of row i's softmax (real + pseudo slots)";
    sf.title = fmt("softmax(A ⊙ C + P) with all scores A = 0, before the outer ⊙ C (gamma = %.2f)", gamma);
    sf.subtitle = "left of the red line: real attention; right: mass absorbed by the pseudo slots, then dropped";
    L.wrote(lesson::save_matrix_figure(sf, L.stem("softmax_with_pseudo")));
    L.sayf("With all scores 0, row 0 keeps only %.3f of its mass on token 0; row %lld keeps all of it.", sf.values[0],
           (long long)n - 1);

    // ------------------------------------------------------------------------------------------------------
    L.step("The real mass R_i of each row, for several gamma");
    L.say("R_i = sum_{j<=i} Attn_ij is what a row really reads from the values; 1 - R_i went to the pseudo slots.");
    L.say("With uniform scores (a_ij = 0) R_i = (i+1) / (i+1 + Z(i)), Z(i) = sum_{j=i+1}^{L-1} e^{-j gamma}.");
    const std::int64_t Lr = quick ? 32 : 64;
    const std::vector<double> gs = {0.0625, 0.125, 0.25, 0.5, 1.0};
    lesson::LinePlot rp;
    rp.title = fmt("Real mass R_i with uniform scores, L = %lld", (long long)Lr);
    rp.x_label = "row i (query position)";
    rp.y_label = "R_i = sum of real attention";
    std::string head = fmt("  %6s", "i");
    for (double g : gs) head += fmt("  g=%-7.4g", g);
    L.say(head);
    std::string csv = "i";
    for (double g : gs) csv += fmt(",R_gamma_%g", g);
    csv += "\n";
    std::vector<std::vector<double>> R(gs.size(), std::vector<double>(static_cast<std::size_t>(Lr)));
    for (std::size_t k = 0; k < gs.size(); ++k)
      for (std::int64_t i = 0; i < Lr; ++i) {
        const double Z = std::exp(stablemask_tau(gs[k], Lr, i, StableMaskTail::Finite));
        R[k][i] = (i + 1.0) / (i + 1.0 + Z);
      }
    for (std::int64_t i = 0; i < Lr; ++i) {
      csv += std::to_string(i);
      for (std::size_t k = 0; k < gs.size(); ++k) csv += fmt(",%.8f", R[k][i]);
      csv += "\n";
      if (i < 4 || i % 16 == 0 || i == Lr - 1) {
        std::string line = fmt("  %6lld", (long long)i);
        for (std::size_t k = 0; k < gs.size(); ++k) line += fmt("  %-9.4f", R[k][i]);
        L.say(line);
      }
    }
    for (std::size_t k = 0; k < gs.size(); ++k) rp.series.push_back({fmt("gamma = %g", gs[k]), {}, R[k]});
    L.save_text("real_mass.csv", csv);
    L.wrote(lesson::save_line_plot(rp, L.stem("real_mass")));
    // 1 - R_i = Z(i) / (i+1 + Z(i)), computed directly: near 1, R_i itself rounds to 1.0 in float64.
    bool increasing = true;
    for (std::size_t k = 0; k < gs.size(); ++k) {
      double prev = 2.0;
      for (std::int64_t i = 0; i < Lr; ++i) {
        const double Z = std::exp(stablemask_tau(gs[k], Lr, i, StableMaskTail::Finite));
        const double pseudo = Z / (i + 1.0 + Z);
        increasing = increasing && pseudo < prev;
        prev = pseudo;
      }
    }
    L.check(increasing, "with identical inputs R_i strictly increases with i, for every gamma (1 - R_i strictly falls)");
    L.say("That is the paper's Theorem 4.1 in one line: identical tokens give outputs R_i * v, so a layer can read");
    L.say("its absolute position even with W_Q = W_K = 0. A plain causal row always has R_i = 1 and cannot.");
    L.say("Small gamma: the pseudo slots are heavy for a long stretch (early rows read little). Large gamma: only the");
    L.say("first few rows lose mass. The model uses one gamma per head: the ALiBi slopes 2^(-8(h+1)/H).");

    // ------------------------------------------------------------------------------------------------------
    L.step("The closed form: one sink key with logit tau_i = log Z(i)");
    L.say("The pseudo values never depend on Q, K or V, so a row's pseudo part is the constant");
    L.say("    Z(i) = sum_{j=i+1}^{L-1} e^{-j gamma} = e^{-(i+1)gamma} (1 - e^{-(L-1-i)gamma}) / (1 - e^{-gamma})");
    L.say("and StableMask = causal attention plus one extra key per row with value 0 and logit tau_i = log Z(i):");
    L.say("    Attn_ij = e^{a_ij} / (sum_{k<=i} e^{a_ik} + Z(i))");
    const std::int64_t Lc = quick ? 24 : 64;
    Rng rng(L.seed());
    std::vector<double> scores(static_cast<std::size_t>(Lc * Lc));
    for (double& s : scores) s = rng.normal(0.0, 2.0);
    double worst_cf = 0, worst_geo = 0;
    for (double g : gs) {
      for (std::int64_t i = 0; i < Lc; ++i) {
        const auto a = stablemask_row_materialized(scores, Lc, i, g);
        const auto b = stablemask_row_closed_form(scores, Lc, i, g);
        for (std::int64_t j = 0; j < Lc; ++j) worst_cf = std::max(worst_cf, std::fabs(a[j] - b[j]));
        // The geometric formula against the direct sum, where the formula is defined (i < L-1).
        double direct = 0;
        for (std::int64_t j = i + 1; j < Lc; ++j) direct += std::exp(-j * g);
        const double geo = i < Lc - 1 ? std::exp(-(i + 1) * g) * (1 - std::exp(-(Lc - 1 - i) * g)) / (1 - std::exp(-g)) : 0.0;
        const double lib = std::exp(stablemask_tau(g, Lc, i, StableMaskTail::Finite));
        worst_geo = std::max({worst_geo, std::fabs(geo - direct) / std::max(direct, 1e-300) * (direct > 0),
                              std::fabs(lib - direct) / std::max(direct, 1e-300) * (direct > 0)});
      }
    }
    L.sayf("Random scores a_ij ~ N(0, 2^2), L = %lld, gamma in {0.0625 .. 1}, every row and column:", (long long)Lc);
    L.check(worst_cf < 1e-12, "closed form = materialized softmax (float64)", fmt("max |diff| %.2e", worst_cf));
    L.check(worst_geo < 1e-10, "nn/stablemask.h's tau and the geometric formula equal the direct sum of e^{-j gamma}",
            fmt("max relative error %.2e", worst_geo));
    L.check(stablemask_tau(0.5, Lc, Lc - 1, StableMaskTail::Finite) == -kInf,
            "the last row (i = L-1) has no pseudo slots: tau = -inf, a plain softmax");
    L.say("Careful: the geometric formula turns negative for i >= L; the library uses the stable log form");
    L.say("    tau_i = -(i+1)gamma + log(-expm1(-(L-1-i)gamma)) - log(-expm1(-gamma))   and -inf from i = L-1 on.");

    // The library's float32 attention kernel, given the (H, T) table of tau, against the float64 materialized form.
    {
      const std::int64_t H = 4, T = Lc, D = 8;
      std::vector<double> g4 = alibi_slopes(H);
      std::vector<float> tau(static_cast<std::size_t>(H * T));
      stablemask_tau_table(g4, T, T, 0, StableMaskTail::Finite, tau.data());
      std::vector<float> q(H * T * D), k(H * T * D), v(H * T * D), probs(H * T * T), o(H * T * D);
      for (auto* arr : {&q, &k, &v})
        for (float& x : *arr) x = static_cast<float>(rng.normal());
      const float scale = 1.0f / std::sqrt(static_cast<float>(D));
      attention::materialized_forward({1, H, T, D}, {scale, tau.data(), nullptr}, q.data(), k.data(), v.data(),
                                   probs.data(), o.data());
      double worst = 0;
      for (std::int64_t h = 0; h < H; ++h) {
        std::vector<double> sc(static_cast<std::size_t>(T * T));
        for (std::int64_t i = 0; i < T; ++i)
          for (std::int64_t j = 0; j < T; ++j) {
            double s = 0;
            for (std::int64_t d = 0; d < D; ++d) s += (double)q[(h * T + i) * D + d] * k[(h * T + j) * D + d];
            sc[i * T + j] = s * scale;
          }
        for (std::int64_t i = 0; i < T; ++i) {
          const auto row = stablemask_row_materialized(sc, T, i, g4[h]);
          for (std::int64_t j = 0; j < T; ++j) worst = std::max(worst, std::fabs(row[j] - probs[(h * T + i) * T + j]));
        }
      }
      L.check(worst < 2e-6, "tensor/attention_kernel.h (float32, sink logit tau) = the P-matrix form (float64)",
              fmt("4 heads, ALiBi gammas, max |diff| %.2e", worst));
    }

    // ------------------------------------------------------------------------------------------------------
    L.step("An untrained model under both masks");
    L.say("Two GPTs with the same seed (identical weights), one per mask, read the same sentence. Untrained, the");
    L.say("scores are small, so each causal row is nearly uniform over its past (1/(i+1)); under StableMask the");
    L.say("same pattern is scaled down by R_i, most in early rows and in heads with small gamma.");
    GrammarOptions go;
    go.target_chars = 4000;
    auto data = make_grammar_dataset(go);
    const std::int64_t T = quick ? 24 : 32;
    Batch b = data->eval_windows(Split::Val, T, 0, 1);
    std::vector<std::string> tokens;
    for (std::int32_t id : b.inputs) tokens.push_back(data->tokenizer()->decode_one(id));
    GPTConfig cfg;
    cfg.vocab_size = data->vocab_size();
    cfg.block_size = T;
    cfg.n_layer = 2;
    cfg.n_head = 4;
    cfg.n_embd = 32;
    std::vector<viz::AttentionMaps> maps;
    for (const std::string& mk : compared_strategies()) {
      GPTConfig c = cfg;
      c.mask = mk;
      GPT model(c, L.seed());
      NoGrad ng;
      AttentionRecorder rec;
      ForwardOptions opt;
      opt.recorder = &rec;
      model.forward(b.inputs, 1, T, opt);
      maps.push_back(viz::AttentionMaps::from_tensor(rec.stacked(0), strategy_info(mk).label, strategy_info(mk).has_sink));
    }
    L.say("Mean real mass R_i per head (layer 0), rows 0..3 and the last row:");
    std::vector<double> g = cfg.gammas();
    double max_last_dev = 0;
    for (std::int64_t h = 0; h < cfg.n_head; ++h) {
      L.sayf("  head %lld (gamma %.4f): causal %.3f %.3f %.3f %.3f .. %.3f | StableMask %.3f %.3f %.3f %.3f .. %.3f",
             (long long)h, g[h], maps[0].row_mass(0, h, 0), maps[0].row_mass(0, h, 1), maps[0].row_mass(0, h, 2),
             maps[0].row_mass(0, h, 3), maps[0].row_mass(0, h, T - 1), maps[1].row_mass(0, h, 0),
             maps[1].row_mass(0, h, 1), maps[1].row_mass(0, h, 2), maps[1].row_mass(0, h, 3),
             maps[1].row_mass(0, h, T - 1));
      for (std::int64_t l = 0; l < cfg.n_layer; ++l) max_last_dev = std::max(max_last_dev, std::fabs(maps[1].row_mass(l, h, T - 1) - 1));
    }
    L.check(max_last_dev < 1e-5, "StableMask's last row (T = L) sums to 1 in every head", fmt("max |R - 1| %.1e", max_last_dev));
    viz::HeatmapOptions ho;
    ho.layers = {0};
    ho.max_width = 1300;
    ho.max_height = 2000;
    ho.cell_values = false;
    ho.title = fmt("untrained model, layer 0, every head: causal vs StableMask (seed %llu)", (unsigned long long)L.seed());
    viz::Canvas fig = viz::heatmap_compare(maps[0], maps[1], tokens, ho);
    L.wrote(viz::save_attention_figure(L.stem("untrained_compare"), fig, {&maps[0], &maps[1]}, tokens, ho));
    L.say("In the figure, the extra column beside each StableMask panel is the sink: 1 - R_i per row.");
  });
}
