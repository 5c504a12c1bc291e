#pragma once
// exp and tanh for float32 that the compiler can vectorize: no libm call in the loop body, so a loop over a
// row becomes AVX2 code under -O3 (std::exp/std::tanh stay scalar calls without -ffast-math, which gradlab
// never uses). float64 paths keep std::exp/std::tanh: they are the reference.
//
// fast_exp: e^x = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]; e^r by a degree-6
// Taylor/Horner polynomial (truncation error < 2e-8 relative on that range); 2^n built in the exponent bits.
// Measured max relative error against std::exp over [-87, 88]: below 3e-7 (tests/tensor). Inputs below -87.3
// give 0, above 88.7 give +inf; NaN stays NaN.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace gradlab {

inline float fast_exp(float x) {
  // written so that NaN is clamped too: casting a NaN n to int below is undefined (clang's UBSan aborts on it)
  float clamped = x >= -87.3f ? x : -87.3f;
  clamped = clamped > 88.7f ? 88.7f : clamped;
  // round to nearest by adding and subtracting 1.5 * 2^23 (no libm call, so SSE2 code can vectorize it)
  const float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // two-step Cody-Waite reduction keeps r accurate: ln2 = hi + lo
  float r = clamped - n * 0.693145751953125f;
  r = r - n * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float y = p * scale;
  y = x < -87.3f ? 0.0f : y;
  y = x > 88.7f ? INFINITY : y;
  return x != x ? x : y;
}

// tanh(x) = 1 - 2 / (e^{2x} + 1): exact limits at +-inf, relative error ~1e-6 near 0 is avoided by the
// odd Taylor series there.
inline float fast_tanh(float x) {
  const float ax = std::fabs(x);
  const float small = x * (1.0f - x * x * (1.0f / 3.0f - x * x * (2.0f / 15.0f)));
  const float big = 1.0f - 2.0f / (fast_exp(2.0f * ax) + 1.0f);
  const float t = ax < 0.02f ? small : std::copysign(big, x);
  return t;
}

// Overloads so generic lambdas can call one name for float (fast) and double (reference).
inline float exp_of(float x) { return fast_exp(x); }
inline double exp_of(double x) { return std::exp(x); }
inline float tanh_of(float x) { return fast_tanh(x); }
inline double tanh_of(double x) { return std::tanh(x); }

}  // namespace gradlab
