// The evaluation rule on a known token stream, evaluation past the training length, accuracy on the position
// tasks, and the gradient of the evaluation loss.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "eval_util.h"
#include "train/evaluate.h"
#include "data/tasks.h"

using namespace gradlab;
using namespace evaltest;

namespace {

// Mean cross-entropy of one window computed independently: log_softmax of the full pass, picked by hand.
std::vector<double> window_losses(GPT& model, const std::vector<std::int32_t>& in, const std::vector<std::int32_t>& tg) {
  NoGrad ng;
  const std::int64_t T = static_cast<std::int64_t>(in.size());
  Tensor lp = ops::log_softmax_lastdim(model.forward(in, 1, T).data().to(DType::F64));  // (1, T, V)
  std::vector<double> out;
  for (std::int64_t t = 0; t < T; ++t) out.push_back(-lp.at({0, t, tg[t]}));
  return out;
}

}  // namespace

TEST_SUITE("eval") {

TEST_CASE("eval rule - consecutive non-overlapping windows of T+1 tokens from token 0 and the partial window dropped") {
  std::vector<std::int32_t> stream;
  for (int i = 0; i < 23; ++i) stream.push_back(i % 11);
  // T = 4: windows [0,5) [5,10) [10,15) [15,20); tokens 20..22 (3 < 5) are dropped
  CHECK(eval_window_count(23, 4) == 4);
  CHECK(eval_window_count(24, 4) == 4);
  CHECK(eval_window_count(25, 4) == 5);
  Batch b = make_eval_windows(stream, 4);
  REQUIRE(b.B == 4);
  REQUIRE(b.T == 4);
  CHECK(std::vector<std::int32_t>(b.inputs.begin() + 4, b.inputs.begin() + 8) == std::vector<std::int32_t>{5, 6, 7, 8});
  CHECK(std::vector<std::int32_t>(b.targets.begin() + 4, b.targets.begin() + 8) ==
        std::vector<std::int32_t>{6, 7, 8, 9});
  CHECK(b.inputs[12] == stream[15]);
  CHECK(b.targets[15] == stream[19]);
  CHECK(b.targets[15] != b.inputs[15]);
  CHECK_THROWS_WITH_AS(make_eval_windows(std::vector<std::int32_t>(4, 0), 4),
                       doctest::Contains("needs 5"), Error);

  GPTConfig c = tiny_config(PosKind::Rope, "stablemask");
  GPT model(c, 1);
  perturb(model, 0.3, 2);
  EvalOptions eo;
  eo.batch_size = 3;  // windows split over two forward passes
  EvalResult r = evaluate(model, b, eo);
  CHECK(r.windows == 4);
  CHECK(r.tokens == 16);
  REQUIRE(r.per_position.size() == 4);
  // the loss and per-position losses, recomputed window by window
  double total = 0;
  std::vector<double> per(4, 0.0);
  for (int w = 0; w < 4; ++w) {
    std::vector<std::int32_t> in(stream.begin() + 5 * w, stream.begin() + 5 * w + 4);
    std::vector<std::int32_t> tg(stream.begin() + 5 * w + 1, stream.begin() + 5 * w + 5);
    auto l = window_losses(model, in, tg);
    for (int t = 0; t < 4; ++t) total += l[t], per[t] += l[t] / 4;
  }
  CHECK(r.loss == doctest::Approx(total / 16).epsilon(1e-6));
  for (int t = 0; t < 4; ++t) CHECK(r.per_position[t] == doctest::Approx(per[t]).epsilon(1e-6));
  // the dropped tail does not matter; a 5th complete window does
  std::vector<std::int32_t> other_tail = stream;
  other_tail[20] = 3, other_tail[21] = 9, other_tail[22] = 1;
  CHECK(evaluate(model, make_eval_windows(other_tail, 4), eo).loss == doctest::Approx(r.loss).epsilon(1e-12));
  other_tail.push_back(7);  // 24 tokens: still 4 windows
  CHECK(evaluate(model, make_eval_windows(other_tail, 4), eo).windows == 4);
  other_tail.push_back(2);  // 25: a 5th complete window
  CHECK(evaluate(model, make_eval_windows(other_tail, 4), eo).windows == 5);
}

TEST_CASE("eval past the training length works for rope/alibi/sinusoidal/none and errors for learned positions") {
  auto stream = random_tokens(5 * 17, 11, 3);
  for (PosKind pos : {PosKind::Rope, PosKind::Alibi, PosKind::Sinusoidal, PosKind::None}) {
    for (const std::string& mask : strategy_names()) {
      INFO("pos " << std::string(to_string(pos)) << ", mask " << mask);
      GPT model(tiny_config(pos, mask), 4);
      perturb(model, 0.3, 5);
      EvalResult r = evaluate(model, make_eval_windows(stream, 16));  // T = 2L
      CHECK(r.windows == 5);
      CHECK(r.per_position.size() == 16);
      CHECK(std::isfinite(r.loss));
      for (double x : r.per_position) CHECK(std::isfinite(x));
      // the first L positions do not depend on the tokens after them (SM-I, causal)
      EvalResult r8 = evaluate(model, make_eval_windows(std::vector<std::int32_t>(stream.begin(), stream.begin() + 9), 8));
      CHECK(r8.per_position[5] == doctest::Approx(evaluate(model, make_eval_windows(
                                                               std::vector<std::int32_t>(stream.begin(), stream.begin() + 17), 16))
                                                      .per_position[5])
                                       .epsilon(1e-5));
    }
  }
  GPT learned(tiny_config(PosKind::Learned, "stablemask"), 4);
  CHECK_THROWS_WITH_AS(evaluate(learned, make_eval_windows(stream, 16)), doctest::Contains("learned"), Error);
  CHECK_THROWS_WITH_AS(check_eval_length(learned.config(), 9, 0), doctest::Contains("cannot extrapolate"), Error);
  CHECK_NOTHROW(evaluate(learned, make_eval_windows(stream, 8)));
  // W > T, T <= 0
  CHECK_THROWS_AS(check_eval_length(learned.config(), 8, 9), Error);
  CHECK_THROWS_AS(check_eval_length(learned.config(), 0, 0), Error);
}

TEST_CASE("sliding window evaluation - W = T equals no window and W < T differs and stays finite past L") {
  GPTConfig c = tiny_config(PosKind::Alibi, "stablemask");
  GPT model(c, 6);
  perturb(model, 0.3, 7);
  auto stream = random_tokens(3 * 21, 11, 8);
  Batch b = make_eval_windows(stream, 20);
  EvalResult full = evaluate(model, b);
  EvalOptions eo;
  eo.window = 20;
  EvalResult same = evaluate(model, b, eo);
  CHECK(same.loss == doctest::Approx(full.loss).epsilon(1e-6));
  eo.window = 4;
  EvalResult slid = evaluate(model, b, eo);
  CHECK(slid.window == 4);
  CHECK(std::isfinite(slid.loss));
  // rows 0..3 see the same keys either way; later ones do not
  for (int t = 0; t < 4; ++t) CHECK(slid.per_position[t] == doctest::Approx(full.per_position[t]).epsilon(1e-5));
  CHECK(std::abs(slid.loss - full.loss) > 1e-4);
  eo.grads = true;
  CHECK_THROWS_WITH_AS(evaluate(model, b, eo), doctest::Contains("sliding window"), Error);
}

TEST_CASE("position tasks: loss and accuracy count only the positions with a target") {
  auto task = make_task("position-marker", 8);
  GPTConfig c = tiny_config(PosKind::Learned, "causal");
  c.vocab_size = task->vocab_size();
  GPT model(c, 9);
  perturb(model, 0.3, 10);
  Batch b = task->eval_windows(Split::Val, 8);
  EvalOptions eo;
  eo.accuracy = true;
  EvalResult r = evaluate(model, b, eo);
  CHECK(r.windows == 8);
  CHECK(r.tokens == 8);  // one marker per sequence
  REQUIRE(r.per_position_accuracy.size() == 8);
  // accuracy recomputed from argmax at the marker positions
  NoGrad ng;
  Tensor logits = model.forward(b.inputs, b.B, b.T).data();
  int correct = 0;
  for (std::int64_t w = 0; w < b.B; ++w)
    for (std::int64_t t = 0; t < b.T; ++t) {
      const std::int32_t y = b.targets[w * b.T + t];
      if (y < 0) continue;
      std::int64_t best = 0;
      for (std::int64_t v = 1; v < c.vocab_size; ++v)
        if (logits.at({w, t, v}) > logits.at({w, t, best})) best = v;
      correct += best == y;
    }
  CHECK(r.accuracy == doctest::Approx(correct / 8.0));
  for (int t = 0; t < 8; ++t) CHECK(r.per_position_count[t] == 1);

  // no target anywhere is an error, not a NaN
  Batch empty = b;
  std::fill(empty.targets.begin(), empty.targets.end(), -1);
  CHECK_THROWS_WITH_AS(evaluate(model, empty, eo), doctest::Contains("target"), Error);
  Batch bad = b;
  bad.inputs[3] = 99;
  CHECK_THROWS_WITH_AS(evaluate(model, bad, eo), doctest::Contains("99"), Error);
}

TEST_CASE("gradient of the evaluation loss equals one backward over all windows at once") {
  GPTConfig c = tiny_config(PosKind::Rope, "stablemask");
  GPT model(c, 12);
  perturb(model, 0.2, 13);
  Batch b = make_eval_windows(random_tokens(7 * 9 + 4, 11, 14), 8);
  REQUIRE(b.B == 7);
  EvalOptions eo;
  eo.grads = true;
  eo.batch_size = 2;  // four chunks of unequal size: the weighting must make them add up to the mean
  EvalResult r = evaluate(model, b, eo);
  REQUIRE(r.grads.size() == model.named_parameters().size());
  model.zero_grad();
  Var loss = model.loss(model.forward(b.inputs, b.B, b.T), b.targets);
  CHECK(loss.item() == doctest::Approx(r.loss).epsilon(1e-5));
  loss.backward();
  double worst = 0, largest = 0;
  for (auto& named : model.named_parameters()) {
    const auto& name = named.first;  // not a structured binding: clang 14 cannot capture one (INFO)
    auto& p = named.second;
    INFO(name);
    REQUIRE(r.grads.count(name) == 1);
    worst = std::max(worst, ops::max_abs_diff(r.grads.at(name), p.grad()));
    for (double g : p.grad().to_vector()) largest = std::max(largest, std::abs(g));
  }
  CHECK(largest > 1e-3);
  CHECK(worst < 1e-5 * largest + 1e-7);
}

}  // TEST_SUITE
