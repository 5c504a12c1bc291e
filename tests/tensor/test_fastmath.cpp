// The vectorizable float32 exp and tanh against the standard library.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tensor/fastmath.h"

using namespace gradlab;

TEST_SUITE("tensor") {
  TEST_CASE("fast_exp: relative error below 3e-7 on [-87 / 88] / exact limits") {
    double worst = 0;
    for (double x = -87.0; x <= 88.0; x += 0.0137) {
      float xf = static_cast<float>(x);
      double ref = std::exp(static_cast<double>(xf));
      worst = std::max(worst, std::abs(fast_exp(xf) - ref) / ref);
    }
    CHECK(worst < 3e-7);
    CHECK(fast_exp(-INFINITY) == 0.0f);
    CHECK(fast_exp(-100.0f) == 0.0f);
    CHECK(fast_exp(-87.7f) == 0.0f);  // n = -127: the scale 2^n is the float 0
    CHECK(std::isinf(fast_exp(100.0f)));
    CHECK(std::isinf(fast_exp(88.4f)));  // n = 128: the scale is +inf
    CHECK(std::isinf(fast_exp(INFINITY)));
    CHECK(std::isnan(fast_exp(NAN)));
    CHECK(fast_exp(0.0f) == 1.0f);
  }
  TEST_CASE("fast_exp_estrin: relative error below 3e-7 on [-87 / 88], fast_exp's limits, NaN in and NaN out") {
    double worst = 0;
    for (double x = -87.0; x <= 88.0; x += 0.0137) {
      const float xf = static_cast<float>(x);
      const double ref = std::exp(static_cast<double>(xf));
      worst = std::max(worst, std::abs(fast_exp_estrin(xf) - ref) / ref);
    }
    MESSAGE("fast_exp_estrin: max relative error " << worst);
    CHECK(worst < 3e-7);
    for (float x : {-INFINITY, -100.0f, -87.7f}) CHECK(fast_exp_estrin(x) == 0.0f);
    for (float x : {INFINITY, 100.0f, 88.4f}) CHECK(std::isinf(fast_exp_estrin(x)));
    CHECK(std::isnan(fast_exp_estrin(NAN)));
    CHECK(std::isnan(fast_exp_estrin(-NAN)));
    CHECK(fast_exp_estrin(0.0f) == 1.0f);
  }
  TEST_CASE("fast_exp: NaN in, NaN out, in a scalar call and in a vectorized loop, whatever the sign and payload") {
    // The exponent bits come from the float's representation, not from a float-to-int conversion (undefined
    // for NaN), so a NaN just flows through the arithmetic.
    const float payload = std::bit_cast<float>(std::uint32_t{0x7fc12345});
    const float nans[] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(), payload,
                          -payload};
    for (float x : nans) CHECK(std::isnan(fast_exp(x)));
    // NaNs among ordinary values, at every position of a vector and in the scalar tail
    std::vector<float> x;
    for (int i = 0; i < 67; ++i) x.push_back(i % 5 == 2 ? nans[i % 4] : -20.0f + 0.61f * static_cast<float>(i));
    std::vector<float> y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = fast_exp(x[i]);
    for (std::size_t i = 0; i < x.size(); ++i) {
      CAPTURE(i);
      if (std::isnan(x[i])) {
        CHECK(std::isnan(y[i]));
      } else {
        const double ref = std::exp(static_cast<double>(x[i]));
        CHECK(std::abs(y[i] - ref) <= 3e-7 * ref);
      }
    }
  }
  TEST_CASE("fast_tanh: absolute error below 1e-6 / odd / saturates") {
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

#include "simd_check.h"
#include "tensor/activations.h"

TEST_SUITE("tensor") {
  TEST_CASE("gelu kernels: SIMD (AVX2 or NEON) and portable agree with the float64 formula") {
    std::vector<float> x, g;
    for (int i = 0; i < 203; ++i) {  // not a multiple of 8: the tail runs the portable loop
      x.push_back(-6.0f + 0.06f * static_cast<float>(i));
      g.push_back(0.5f + 0.01f * static_cast<float>(i % 7));
    }
    // the tails of the portable loops' logistic form: e^{-2u} overflows to inf, or e^{-|2u|} underflows to 0
    for (float v : {-30.0f, -12.0f, -9.5f, 9.5f, 12.0f, 30.0f, 1e4f, -1e4f, 1e15f, -1e15f, 0.0f, -0.0f, 1e-30f}) {
      x.push_back(v);
      g.push_back(0.75f);
    }
    std::vector<float> y(x.size()), dx(x.size()), yp(x.size()), dxp(x.size());
    kernels::gelu_forward(x.data(), y.data(), static_cast<std::int64_t>(x.size()));
    kernels::gelu_backward(x.data(), g.data(), dx.data(), static_cast<std::int64_t>(x.size()));
    kernels::gelu_forward_portable(x.data(), yp.data(), static_cast<std::int64_t>(x.size()));
    kernels::gelu_backward_portable(x.data(), g.data(), dxp.data(), static_cast<std::int64_t>(x.size()));
    for (std::size_t i = 0; i < x.size(); ++i) {
      CAPTURE(x[i]);
      double v = x[i], k = 0.7978845608028654, t = std::tanh(k * (v + 0.044715 * v * v * v));
      double ref = 0.5 * v * (1 + t);
      double dref = g[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * 0.044715 * v * v));
      // absolute tolerances on the grid [-6, 6], relative ones for the far tails (gelu(x) = x to float precision)
      const double scale = std::abs(v) > 6.0 ? std::abs(v) : 1.0;
      CHECK(std::abs(y[i] - ref) < 2e-6 * scale);
      CHECK(std::abs(yp[i] - ref) < 2e-6 * scale);
      CHECK(std::abs(dx[i] - dref) < 4e-6);
      CHECK(std::abs(dxp[i] - dref) < 4e-6);
    }
    if (simd_in_use()) report_simd_validated("tanh GELU forward and backward");
  }
}
