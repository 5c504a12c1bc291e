// The vectorizable float32 exp and tanh against the standard library.
#include <doctest/doctest.h>

#include <cmath>

#include "tensor/fastmath.h"

using namespace gradlab;

TEST_SUITE("tensor") {
  TEST_CASE("fast_exp: relative error below 3e-7 on [-87, 88], exact limits") {
    double worst = 0;
    for (double x = -87.0; x <= 88.0; x += 0.0137) {
      float xf = static_cast<float>(x);
      double ref = std::exp(static_cast<double>(xf));
      worst = std::max(worst, std::abs(fast_exp(xf) - ref) / ref);
    }
    CHECK(worst < 3e-7);
    CHECK(fast_exp(-INFINITY) == 0.0f);
    CHECK(fast_exp(-100.0f) == 0.0f);
    CHECK(std::isinf(fast_exp(100.0f)));
    CHECK(std::isnan(fast_exp(NAN)));
    CHECK(fast_exp(0.0f) == 1.0f);
  }
  TEST_CASE("fast_tanh: absolute error below 1e-6, odd, saturates") {
    double worst = 0;
    for (double x = -12.0; x <= 12.0; x += 0.00173) {
      float xf = static_cast<float>(x);
      worst = std::max(worst, std::abs(fast_tanh(xf) - std::tanh(static_cast<double>(xf))));
      CHECK(fast_tanh(-xf) == -fast_tanh(xf));
    }
    CHECK(worst < 1e-6);
    CHECK(fast_tanh(50.0f) == 1.0f);
    CHECK(fast_tanh(-INFINITY) == -1.0f);
  }
}
