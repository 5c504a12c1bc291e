// The op profiler (autograd/profile.h): what it records, and that it records nothing when off.
#include <doctest/doctest.h>

#include <string>

#include "autograd/ops.h"
#include "autograd/profile.h"
#include "tensor/error.h"
#include "tensor/ops.h"

using namespace gradlab;

namespace {
const profile::Entry* find(const std::vector<profile::Entry>& es, const std::string& name, profile::Kind kind) {
  for (const auto& e : es)
    if (e.name == name && e.kind == kind) return &e;
  return nullptr;
}

// y = sum(tanh(x @ w)): one matmul, one tanh, one sum, each forward and backward once.
void small_graph() {
  Var x = Var::leaf(Tensor::full({8, 16}, 0.5f), true);
  Var w = Var::leaf(Tensor::full({16, 4}, 0.25f), true);
  sum(tanh(matmul(x, w))).backward();
}
}  // namespace

TEST_SUITE("autograd") {
  TEST_CASE("profile: each op's forward and backward once per call, phases in order, nothing when off") {
    profile::reset();
    small_graph();  // off: records nothing
    CHECK(profile::entries().empty());

    profile::set_enabled(true);
    {
      profile::Phase p("step");
      small_graph();
    }
    {
      NoGrad no_grad;  // evaluation is not a training step: no forward entries
      matmul(Var::leaf(Tensor::full({2, 2}, 1.0f)), Var::leaf(Tensor::full({2, 2}, 1.0f)));
    }
    profile::set_enabled(false);
    small_graph();  // off again
    const auto es = profile::entries();
    for (const char* op : {"matmul", "tanh", "sum"}) {
      CAPTURE(op);
      const profile::Entry* f = find(es, op, profile::Kind::Forward);
      const profile::Entry* b = find(es, op, profile::Kind::Backward);
      REQUIRE(f != nullptr);
      REQUIRE(b != nullptr);
      CHECK(f->calls == 1);  // the NoGrad matmul and the runs while off are not counted
      CHECK(b->calls == 1);
      CHECK(f->seconds >= 0.0);
      CHECK(b->seconds >= 0.0);
    }
    const profile::Entry* step = find(es, "step", profile::Kind::Phase);
    REQUIRE(step != nullptr);
    CHECK(step->calls == 1);
    CHECK(es.front().kind == profile::Kind::Phase);  // phases come first
    // The ops ran inside the phase, so their times add up to at most the phase's.
    double ops = 0.0;
    for (const auto& e : es)
      if (e.kind != profile::Kind::Phase) ops += e.seconds;
    CHECK(ops <= step->seconds * 1.0001 + 1e-6);

    const std::string t = profile::table(es, 1);
    CHECK(t.find("| step |") != std::string::npos);
    CHECK(t.find("| matmul | 1.0 |") != std::string::npos);
    CHECK_THROWS_WITH_AS(profile::table(es, 0), doctest::Contains("expected at least 1 profiled step"), Error);
    profile::reset();
    CHECK(profile::entries().empty());
  }
}
