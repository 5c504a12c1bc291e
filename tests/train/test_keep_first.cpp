// StreamingLLM's kept first tokens in the sliding window (keep_first), and the document evaluation windows.
#include <doctest/doctest.h>

#include "eval_util.h"
#include "tensor/error.h"
#include "train/evaluate.h"

using namespace gradlab;
using namespace evaltest;

namespace {

// The logits of the token at position t when it attends to exactly keys 0..K-1 and t-(W-K)+1..t: the first K
// tokens fed at positions 0.., then the recent ones at their own absolute positions, through one fresh cache.
// Exact for one layer only: deeper keys depend on what their token attended to when it was read.
std::vector<double> reference_row(GPT& model, const std::vector<std::int32_t>& ids, std::int64_t t, std::int64_t W,
                                  std::int64_t K) {
  NoGrad ng;
  KVCache cache;
  ForwardOptions fo;
  fo.cache = &cache;
  fo.first_position = 0;
  model.forward(std::vector<std::int32_t>(ids.begin(), ids.begin() + K), 1, K, fo);
  const std::int64_t first_recent = t - (W - K) + 1;
  fo.first_position = first_recent;
  const std::vector<std::int32_t> recent(ids.begin() + first_recent, ids.begin() + t + 1);
  Var out = model.forward(recent, 1, static_cast<std::int64_t>(recent.size()), fo);  // (1, n, V)
  const std::int64_t V = model.config().vocab_size;
  return row(out.data().to_vector(), static_cast<std::int64_t>(recent.size()) - 1, V);
}

}  // namespace

TEST_SUITE("eval") {

TEST_CASE("keep_first: each query sees the first K tokens and the W-K most recent, at absolute positions") {
  for (const std::string mask : {"causal", "stablemask"}) {
    GPT model(tiny_config(PosKind::Rope, mask, /*n_layer=*/1), 3);
    perturb(model, 0.3, 4);
    model.eval();
    const std::vector<std::int32_t> ids = random_tokens(14, 11, 9);
    const std::int64_t W = 5, V = 11;
    for (std::int64_t K : {1, 2, 4}) {
      KVDecoder dec(model, W, K);
      const std::vector<double> got = dec.feed(ids).to_vector();  // (14, V)
      CHECK(dec.cached() <= W);
      // before the window is full nothing is evicted: rows equal the plain decoder's
      KVDecoder plain(model, W, 0);
      const std::vector<double> ref0 = plain.feed(ids).to_vector();
      for (std::int64_t t = 0; t < W; ++t) CHECK(worst_rel(row(got, t, V), row(ref0, t, V)) < 1e-5);
      for (std::int64_t t = W; t < 14; ++t) {
        const double e = worst_rel(row(got, t, V), reference_row(model, ids, t, W, K));
        CHECK_MESSAGE(e < 1e-5, "mask ", mask, " K ", K, " t ", t, " error ", e);
      }
      // and they differ from evicting the first tokens too (the kept tokens matter)
      double diff = 0;
      for (std::int64_t t = W + 1; t < 14; ++t) diff = std::max(diff, worst_rel(row(got, t, V), row(ref0, t, V)));
      CHECK(diff > 1e-4);
    }
  }
}

TEST_CASE("keep_first through evaluate: K > 0 changes the loss only past W, and bad K is refused") {
  GPT model(tiny_config(PosKind::Rope, "causal"), 5);
  perturb(model, 0.3, 6);
  Batch b = make_eval_windows(random_tokens(3 * 13, 11, 2), 12);
  EvalOptions w;
  w.window = 4;
  EvalResult evict = evaluate(model, b, w);
  w.keep_first = 1;
  EvalResult keep = evaluate(model, b, w);
  CHECK(keep.keep_first == 1);
  for (std::int64_t t = 0; t < 4; ++t) CHECK(keep.per_position[t] == doctest::Approx(evict.per_position[t]).epsilon(1e-6));
  CHECK(keep.loss != evict.loss);
  auto message = [&](std::int64_t W, std::int64_t K) {
    try {
      check_eval_length(model.config(), 12, W, K);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  CHECK(message(4, 4).find("expected K < W") != std::string::npos);
  CHECK(message(0, 2).find("needs a sliding window") != std::string::npos);
  CHECK(message(4, -1).find("K >= 0") != std::string::npos);
  CHECK(message(4, 3) == "<no error>");
}

TEST_CASE("make_document_eval_windows: windows start at the BOS, text before the first BOS is not scored") {
  // BOS = 0; documents "0 1 2 3", "0 4 5 6 7", after two stray tokens
  const std::vector<std::int32_t> t = {9, 9, 0, 1, 2, 3, 0, 4, 5, 6, 7};
  Batch b = make_document_eval_windows(t, 3, 0);
  REQUIRE(b.B == 2);
  CHECK(b.inputs == std::vector<std::int32_t>{0, 1, 2, 0, 4, 5});
  CHECK(b.targets == std::vector<std::int32_t>{1, 2, 3, 4, 5, 6});
  try {
    make_document_eval_windows(t, 9, 0);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("no BOS (id 0) followed by T+1 = 10 tokens") != std::string::npos);
  }
}

}  // TEST_SUITE

TEST_SUITE("eval") {

TEST_CASE("window positions: with RoPE and nothing kept they equal the absolute KV window, and with K kept, a direct pass") {
  // one layer of RoPE, causal: attention depends only on relative distances, and the recent W tokens are
  // contiguous, so counting positions inside the window changes nothing when no token is kept
  GPT model(tiny_config(PosKind::Rope, "causal", /*n_layer=*/1), 7);
  perturb(model, 0.3, 8);
  Batch b = make_eval_windows(random_tokens(2 * 15, 11, 3), 14);
  EvalOptions abs;
  abs.window = 5;
  EvalOptions rel = abs;
  rel.window_positions = true;
  const EvalResult a = evaluate(model, b, abs), r = evaluate(model, b, rel);
  CHECK(a.tokens == r.tokens);
  for (std::int64_t t = 0; t < 14; ++t) CHECK(r.per_position[t] == doctest::Approx(a.per_position[t]).epsilon(1e-5));
  // learned positions, K = 2: query t reads tokens 0, 1 and t-2..t at positions 0..4
  GPT learned(tiny_config(PosKind::Learned, "stablemask", 2), 9);
  perturb(learned, 0.3, 10);
  Batch one = make_eval_windows(random_tokens(15, 11, 4), 14);
  rel.keep_first = 2;
  const EvalResult k = evaluate(learned, one, rel);
  const std::int64_t t = 11;
  const std::vector<std::int32_t> ctx = {one.inputs[0], one.inputs[1], one.inputs[t - 2], one.inputs[t - 1], one.inputs[t]};
  std::vector<double> lg;
  {
    NoGrad ng;
    learned.eval();
    lg = row(learned.forward(ctx, 1, 5).data().to_vector(), 4, 11);
  }
  double m = -1e300, s = 0;
  for (double z : lg) m = std::max(m, z);
  for (double z : lg) s += std::exp(z - m);
  CHECK(k.per_position[t] == doctest::Approx(m + std::log(s) - lg[one.targets[t]]).epsilon(1e-5));
  // learned positions past L are fine inside the window, W > L is not
  rel.window = 9;  // tiny_config's L is 8
  CHECK_THROWS_AS(evaluate(learned, one, rel), Error);
}

}  // TEST_SUITE
