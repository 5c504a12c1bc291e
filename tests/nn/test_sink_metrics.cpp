// nn/sink_metrics: the attention-sink metrics on hand-computed maps, and on a model's recorded attention.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "nn/sink_metrics.h"
#include "tensor/error.h"

using namespace gradlab;

namespace {

// One layer, two heads, T = 4. Head 0 is causal (rows sum to 1); head 1 gives part of rows 0..2 to a pseudo
// key (R = 0.5, 0.8, 0.9, 1).
Tensor hand_maps() {
  const std::vector<double> v = {
      1.0, 0, 0, 0, 0.5, 0.5, 0, 0, 0.2, 0.3, 0.5, 0, 0.1, 0.1, 0.2, 0.6,           // head 0
      0.5, 0, 0, 0, 0.4, 0.4, 0, 0, 0.3, 0.3, 0.3, 0, 0.25, 0.25, 0.25, 0.25,       // head 1
  };
  return Tensor::from_values({1, 2, 4, 4}, v, DType::F32);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_SUITE("attention") {

TEST_CASE("sink metrics: every share of a hand-computed map") {
  SinkOptions o;
  o.min_row = 2;
  o.eps = 0.29;
  o.bos = 5;
  // BOS at positions 0 and 2
  SinkReport r = sink_metrics(hand_maps(), {5, 1, 5, 2}, o);
  REQUIRE(r.heads.size() == 2);
  const double tol = 1e-6;  // float32 maps summed in double
  const HeadSink& h0 = r.at(0, 0);
  CHECK(h0.first_raw == doctest::Approx(0.8 / 3).epsilon(tol));  // rows 1..3: 0.5, 0.2, 0.1
  CHECK(h0.first_norm == doctest::Approx(0.8 / 3).epsilon(tol));
  CHECK(h0.late_raw == doctest::Approx(0.15).epsilon(tol));  // rows 2, 3: 0.2, 0.1
  CHECK(h0.late_norm == doctest::Approx(0.15).epsilon(tol));
  CHECK(h0.real_mass == doctest::Approx(1.0).epsilon(tol));
  CHECK(h0.bos_raw == doctest::Approx((0.5 + 0.7 + 0.3) / 3).epsilon(tol));  // keys 0 and 2 together
  CHECK(h0.mid_bos_norm == doctest::Approx((0.5 + 0.2) / 2).epsilon(tol));   // key 2, rows 2 and 3
  const HeadSink& h1 = r.at(0, 1);
  CHECK(h1.first_raw == doctest::Approx(0.95 / 3).epsilon(tol));
  CHECK(h1.first_norm == doctest::Approx((0.4 / 0.8 + 0.3 / 0.9 + 0.25) / 3).epsilon(tol));
  CHECK(h1.late_raw == doctest::Approx(0.275).epsilon(tol));
  CHECK(h1.late_norm == doctest::Approx((0.3 / 0.9 + 0.25) / 2).epsilon(tol));
  CHECK(h1.real_mass == doctest::Approx(0.95).epsilon(tol));
  CHECK(h1.pseudo_mass() == doctest::Approx(0.05).epsilon(tol));
  CHECK(h1.bos_raw == doctest::Approx(0.5).epsilon(tol));
  CHECK(h1.bos_norm == doctest::Approx((0.4 / 0.8 + 0.6 / 0.9 + 0.5) / 3).epsilon(tol));
  CHECK(h1.mid_bos_norm == doctest::Approx((0.3 / 0.9 + 0.25) / 2).epsilon(tol));
  // the model-level numbers
  CHECK(r.uniform_late == doctest::Approx((1.0 / 3 + 1.0 / 4) / 2).epsilon(1e-12));
  // sink ratio on rows i >= 1: head 1 (0.3611) is above 0.29, head 0 (0.2667) is not; on rows >= 2 the same
  CHECK(r.sink_heads == 1);
  CHECK(r.sink_ratio == 0.5);
  CHECK(r.sink_heads_late == 1);  // head 1: 0.2917 > 0.29
  CHECK(r.sink_ratio_late == 0.5);
  CHECK(r.strongest.head == 1);
  CHECK(r.layers[0].late_norm == doctest::Approx((0.15 + (0.3 / 0.9 + 0.25) / 2) / 2).epsilon(tol));
  CHECK(r.mean.real_mass == doctest::Approx(0.975).epsilon(tol));
  // eps = 0.3: head 1 is a sink on rows i >= 1 (0.3611) but not on the late rows (0.2917)
  o.eps = 0.3;
  const SinkReport r3 = sink_metrics(hand_maps(), {5, 1, 5, 2}, o);
  CHECK(r3.sink_ratio == 0.5);
  CHECK(r3.sink_ratio_late == 0.0);
  o.eps = 0.4;
  CHECK(sink_metrics(hand_maps(), {5, 1, 5, 2}, o).sink_ratio == 0.0);
}

TEST_CASE("sink metrics: averages weigh every row of every probe text the same") {
  SinkOptions o;
  o.min_row = 2;
  o.bos = 5;
  SinkAccumulator acc(o);
  acc.add(hand_maps(), {5, 1, 5, 2});
  acc.add(hand_maps(), {5, 1, 3, 2});  // no BOS in mid-text
  SinkReport r = acc.report();
  CHECK(r.probes == 2);
  CHECK(r.at(0, 0).first_raw == doctest::Approx(0.8 / 3).epsilon(1e-6));         // same maps: same mean
  CHECK(r.at(0, 0).bos_raw == doctest::Approx((1.5 + 0.8) / 6).epsilon(1e-6));   // second text: key 0 only
  CHECK(r.at(0, 0).mid_bos_norm == doctest::Approx(0.35).epsilon(1e-6));        // only the first text's rows
  // no BOS declared: the BOS metrics are NaN, the rest unchanged
  SinkReport n = sink_metrics(hand_maps(), {5, 1, 5, 2}, SinkOptions{2, 0.3, -1});
  CHECK(std::isnan(n.at(0, 0).bos_norm));
  CHECK(n.at(0, 0).late_norm == doctest::Approx(0.15).epsilon(1e-6));
  // CSV: a header and one row per head; JSON names the summary
  const std::string csv = sink_csv_header("seed,") + sink_csv_rows(n, "7,");
  CHECK(csv.find("seed,layer,head,first_raw") == 0);
  CHECK(csv.find("\n7,0,1,") != std::string::npos);
  CHECK(sink_json(n).find("\"sink_ratio\":") != std::string::npos);
  CHECK(format_sink_report(n).find("strongest head L0/H") != std::string::npos);
}

TEST_CASE("sink metrics: short probes and bad input") {
  // T = 4 with min_row 8: the late rows fall back to rows 1..3
  SinkReport r = sink_metrics(hand_maps(), {0, 1, 2, 3});
  CHECK(r.min_row == 1);
  CHECK(r.at(0, 0).late_raw == doctest::Approx(r.at(0, 0).first_raw));
  CHECK(error_of([] { sink_metrics(Tensor::zeros({2, 4, 4}), {0, 1, 2, 3}); }).find("(n_layer, n_head, T, T)") !=
        std::string::npos);
  CHECK(error_of([] { sink_metrics(hand_maps(), {0, 1, 2}); }).find("3 token ids for maps of T = 4") !=
        std::string::npos);
  CHECK(error_of([] { SinkAccumulator a(SinkOptions{8, 1.5, -1}); }).find("eps = 1.5") != std::string::npos);
  SinkAccumulator acc;
  CHECK(error_of([&] { acc.report(); }).find("no probe text") != std::string::npos);
  acc.add(hand_maps(), {0, 1, 2, 3});
  CHECK(error_of([&] { acc.add(Tensor::zeros({2, 2, 4, 4}), {0, 1, 2, 3}); }).find("same model") != std::string::npos);
}

TEST_CASE("measure_sinks: recorded from a GPT, causal rows hold all the mass and StableMask rows less") {
  GPTConfig c;
  c.vocab_size = 12;
  c.block_size = 16;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  std::vector<std::vector<std::int32_t>> probes = {{0, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7, 8},
                                                   {0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5}};
  SinkOptions o;
  o.bos = 0;
  for (const std::string mk : {"causal", "stablemask"}) {
    c.mask = mk;
    GPT model(c, 5);
    SinkReport r = measure_sinks(model, probes, o);
    CHECK(r.probes == 2);
    CHECK(r.heads.size() == 4);
    if (mk == "causal") CHECK(r.mean.real_mass == doctest::Approx(1.0).epsilon(1e-5));
    else CHECK(r.mean.real_mass < 0.99);
    // the same as accumulating the recorded maps by hand
    SinkAccumulator acc(o);
    for (const auto& p : probes) acc.add(record_attention(model, p), p);
    CHECK(acc.report().mean.late_norm == r.mean.late_norm);
    CHECK(model.training());  // the mode is restored
  }
}

TEST_CASE("massive_activations: the largest |h| after each block against the median, as computed by hand") {
  GPTConfig c;
  c.vocab_size = 12;
  c.block_size = 16;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  const std::vector<std::vector<std::int32_t>> probes = {{0, 3, 4, 5, 6, 7}, {0, 9, 8, 7, 6, 5, 4}};
  GPT model(c, 5);
  const MassiveActivations m = massive_activations(model, probes);
  REQUIRE(m.top.size() == 2);
  REQUIRE(m.median.size() == 2);
  REQUIRE(m.ratio.size() == 2);
  CHECK(model.training());
  // by hand: the residual stream after block l is what the recorder keeps
  for (std::size_t l = 0; l < 2; ++l) {
    std::vector<double> all;
    for (const auto& p : probes) {
      NoGrad ng;
      model.eval();
      AttentionRecorder rec;
      ForwardOptions fo;
      fo.recorder = &rec;
      model.forward(p, 1, static_cast<std::int64_t>(p.size()), fo);
      model.train();
      REQUIRE(rec.residual.size() == 2);
      CHECK(rec.residual[l].shape() == Shape{1, static_cast<std::int64_t>(p.size()), 16});
      for (double v : rec.residual[l].to_vector()) all.push_back(std::abs(v));
    }
    std::sort(all.begin(), all.end());
    REQUIRE(all.size() % 2 == 0);  // (6 + 7) tokens x 16 channels
    const double med = 0.5 * (all[all.size() / 2 - 1] + all[all.size() / 2]);
    CHECK(m.top[l] == all.back());
    CHECK(m.median[l] == med);
    CHECK(m.ratio[l] == doctest::Approx(all.back() / med));
    CHECK(m.ratio[l] > 1.0);
  }
  CHECK_THROWS_AS(massive_activations(model, {}), Error);
}

}  // TEST_SUITE
