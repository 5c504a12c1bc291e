// Lesson 07: attention from scratch. One head reads a short sentence: queries, keys and values, the scores,
// the causal mask, the softmax, the output, and a heatmap. Then the same numbers from the library's
// attention op, and why the scores are divided by sqrt(d).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "autograd/attention.h"
#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "tensor/ops.h"
#include "tensor/rng.h"
#include "viz/attention.h"
#include "viz/heatmap.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string matrix_text(const Tensor& m, const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                        const char* cell = "%7.2f") {
  // m is (R, K)
  std::string out = fmt("%8s", "");
  for (const auto& c : cols) out += fmt("%7s", c.substr(0, 6).c_str());
  out += "\n";
  for (std::int64_t i = 0; i < m.size(0); ++i) {
    out += fmt("%8s", rows[i].substr(0, 7).c_str());
    for (std::int64_t j = 0; j < m.size(1); ++j) {
      const double v = m.at({i, j});
      out += std::isinf(v) ? fmt("%7s", v < 0 ? "-inf" : "inf") : fmt(cell, v);
    }
    out += "\n";
  }
  return out;
}

lesson::MatrixFigure figure_of(const Tensor& m, const std::vector<std::string>& labels, std::string title) {
  lesson::MatrixFigure f;
  f.rows = m.size(0);
  f.cols = m.size(1);
  f.values = m.to_vector();
  f.row_labels = f.col_labels = labels;
  f.title = std::move(title);
  f.cell = 56;
  return f;
}

// Shannon entropy (nats) of a probability row.
double entropy(const std::vector<double>& p) {
  double h = 0;
  for (double x : p)
    if (x > 0) h -= x * std::log(x);
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{7, "attention", "Attention from scratch: one head on a short sentence", 7};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    // ------------------------------------------------------------------------------------------------------
    L.step("A sentence as vectors");
    const std::vector<std::string> words = {"the", "cat", "sat", "on", "the", "mat"};
    const std::int64_t T = static_cast<std::int64_t>(words.size()), C = 8, hs = 8;
    L.say("Six tokens. Each distinct word gets a random embedding of width C = 8 (seeded); both \"the\" share one.");
    Rng rng(L.seed());
    std::map<std::string, std::vector<double>> table;
    std::vector<double> xv;
    for (const auto& w : words) {
      if (!table.count(w)) {
        std::vector<double> e(static_cast<std::size_t>(C));
        for (double& v : e) v = rng.normal();
        table[w] = e;
      }
      xv.insert(xv.end(), table[w].begin(), table[w].end());
    }
    Tensor X = Tensor::from_values({T, C}, xv);  // (T, C)
    L.say("X (T, C) =");
    L.say(X.str());

    // ------------------------------------------------------------------------------------------------------
    L.step("Queries, keys and values");
    L.say("A head projects every token three ways: q = x Wq (what I look for), k = x Wk (what I offer),");
    L.say("v = x Wv (what I hand over when chosen). We pick Wq = Wk = identity, so q_i . k_j = x_i . x_j: this head");
    L.say("looks for tokens similar to itself (a 'same word' head). Wv is random.");
    std::vector<double> eye(static_cast<std::size_t>(C * hs), 0.0), wv(static_cast<std::size_t>(C * hs));
    for (std::int64_t i = 0; i < C; ++i) eye[i * hs + i] = 1.0;
    for (double& v : wv) v = rng.normal(0.0, 1.0 / std::sqrt(static_cast<double>(C)));
    Tensor Wq = Tensor::from_values({C, hs}, eye), Wk = Wq, Wv = Tensor::from_values({C, hs}, wv);
    Tensor Q = ops::matmul(X, Wq), K = ops::matmul(X, Wk), V = ops::matmul(X, Wv);  // each (T, hs)
    L.sayf("Q, K, V are each %s.", shape_str(Q.shape()).c_str());

    // ------------------------------------------------------------------------------------------------------
    L.step("Scores");
    L.say("S = Q K^T / sqrt(hs): row i holds how well query i matches every key j. (T, hs) @ (hs, T) -> (T, T).");
    L.say("K.transpose(0, 1) is a view: the same numbers with swapped strides, no copy.");
    Tensor S = ops::mul_scalar(ops::matmul(Q, K.transpose(0, 1)), 1.0 / std::sqrt(static_cast<double>(hs)));
    L.say(matrix_text(S, words, words));
    L.check(S.at({4, 0}) > S.at({4, 1}) && S.at({4, 0}) > S.at({4, 2}) && S.at({4, 0}) > S.at({4, 3}),
            "the second \"the\" (i = 4) scores the first \"the\" (j = 0) above every other earlier word");
    L.wrote(lesson::save_matrix_figure(figure_of(S, words, "scores S = Q K^T / sqrt(hs)"), L.stem("scores")));

    // ------------------------------------------------------------------------------------------------------
    L.step("The causal mask");
    L.say("A language model predicts token i+1 from tokens 0..i, so row i may not look at j > i. We add -inf there:");
    L.say("e^{-inf} = 0, so those keys get no probability at all.");
    Tensor M = S.clone();
    for (std::int64_t i = 0; i < T; ++i)
      for (std::int64_t j = i + 1; j < T; ++j) M.set({i, j}, -kInf);
    L.say(matrix_text(M, words, words));

    // ------------------------------------------------------------------------------------------------------
    L.step("Softmax, row by row");
    L.say("Attn_ij = e^{S_ij} / sum_{k<=i} e^{S_ik}. (In code: subtract the row max first, so exp never overflows.)");
    Tensor A = ops::softmax_lastdim(M);  // (T, T)
    L.say(matrix_text(A, words, words, "%7.3f"));
    double max_row_err = 0, future = 0;
    for (std::int64_t i = 0; i < T; ++i) {
      double s = 0;
      for (std::int64_t j = 0; j < T; ++j) {
        s += A.at({i, j});
        if (j > i) future = std::max(future, std::fabs(A.at({i, j})));
      }
      max_row_err = std::max(max_row_err, std::fabs(s - 1.0));
    }
    L.check(max_row_err < 1e-6, "every row sums to 1", fmt("max |sum - 1| %.1e", max_row_err));
    L.check(future == 0.0, "future keys get exactly 0");
    L.check(A.at({0, 0}) == 1.0f, "row 0 can only read token 0, so it puts all its mass there");
    L.sayf("Row 4 (\"the\"): %.3f on the first \"the\", %.3f on itself: the head found the repeated word.",
           A.at({4, 0}), A.at({4, 4}));
    viz::AttentionMaps maps = viz::AttentionMaps::from_tensor(A, "causal", false);
    viz::HeatmapOptions ho;
    ho.title = "one head, causal attention";
    ho.subtitle = "\"the cat sat on the mat\"";
    ho.panel_stats = false;  // the first-token share and the real mass R_i come in lessons 08 and 09
    viz::Canvas fig = viz::heatmap_single(maps, words, 0, 0, ho);
    L.wrote(viz::save_attention_figure(L.stem("attention"), fig, {&maps}, words, ho));

    // ------------------------------------------------------------------------------------------------------
    L.step("The output");
    L.say("O = Attn V: each row is a weighted average of the value vectors it attended to. (T, T) @ (T, hs).");
    Tensor O = ops::matmul(A, V);
    L.say(O.str());
    L.say("The library does all of this in one op (autograd/attention.h): q, k, v shaped (B, H, T, hs) and an");
    L.say("additive bias with -inf above the diagonal. Same numbers?");
    Tensor bias = Tensor::zeros({1, T, T});
    for (std::int64_t i = 0; i < T; ++i)
      for (std::int64_t j = i + 1; j < T; ++j) bias.set({0, i, j}, -kInf);
    Tensor probs;
    Var out = attention_materialized(Var::leaf(Q.reshape({1, 1, T, hs})), Var::leaf(K.reshape({1, 1, T, hs})),
                                     Var::leaf(V.reshape({1, 1, T, hs})), bias, Tensor(), 1.0 / std::sqrt((double)hs),
                                     &probs);
    const double d_attn = ops::max_abs_diff(probs.reshape({T, T}), A);
    const double d_out = ops::max_abs_diff(out.data().reshape({T, hs}), O);
    L.check(d_attn < 1e-6 && d_out < 1e-5, "attention_materialized gives the same probabilities and output",
            fmt("max |diff| %.1e and %.1e", d_attn, d_out));
    Var fused = attention_fused(Var::leaf(Q.reshape({1, 1, T, hs})), Var::leaf(K.reshape({1, 1, T, hs})),
                                Var::leaf(V.reshape({1, 1, T, hs})), Tensor(), {}, 1.0 / std::sqrt((double)hs));
    const double d_fused = ops::max_abs_diff(fused.data().reshape({T, hs}), O);
    L.check(d_fused < 1e-5, "the fused (flash) kernel, which never builds the T x T matrix, agrees",
            fmt("max |diff| %.1e", d_fused));

    // ------------------------------------------------------------------------------------------------------
    L.step("Why divide by sqrt(hs)?");
    L.say("For random q, k with unit-variance entries, q . k has variance hs. Without the scale, wide heads get");
    L.say("huge scores, the softmax saturates to one-hot and its gradient vanishes. Measured on random rows:");
    L.sayf("  %6s  %22s  %22s", "hs", "mean entropy (scaled)", "mean entropy (unscaled)");
    const std::int64_t rows = L.quick() ? 16 : 64, keys = 32;
    double last_scaled = 0, last_unscaled = 0;
    for (std::int64_t d : {4, 16, 64, 256}) {
      double hsum = 0, husum = 0;
      for (std::int64_t r = 0; r < rows; ++r) {
        std::vector<double> q(d), s(keys), su(keys);
        for (double& x : q) x = rng.normal();
        for (std::int64_t j = 0; j < keys; ++j) {
          double dot = 0;
          for (std::int64_t c = 0; c < d; ++c) dot += q[c] * rng.normal();
          s[j] = dot / std::sqrt(static_cast<double>(d));
          su[j] = dot;
        }
        for (auto* v : {&s, &su}) {
          const double mx = *std::max_element(v->begin(), v->end());
          double z = 0;
          for (double& x : *v) z += (x = std::exp(x - mx));
          for (double& x : *v) x /= z;
        }
        hsum += entropy(s);
        husum += entropy(su);
      }
      last_scaled = hsum / rows;
      last_unscaled = husum / rows;
      L.sayf("  %6lld  %22.3f  %22.3f", (long long)d, last_scaled, last_unscaled);
    }
    L.sayf("(uniform over %lld keys would be log %lld = %.3f nats)", (long long)keys, (long long)keys, std::log((double)keys));
    L.check(last_unscaled < last_scaled, "at hs = 256 the unscaled softmax is far more peaked (lower entropy)");
  });
}
