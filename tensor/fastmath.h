#pragma once
// exp and tanh for float32 that the compiler can vectorize: no libm call, no branch and no float-to-int
// conversion in the body, so a plain loop over a row becomes SSE2 code on baseline x86-64 (and AVX2 code where
// that is enabled) under -O3. std::exp/std::tanh stay scalar calls without -ffast-math, which gradlab never
// uses. float64 paths keep std::exp/std::tanh: they are the reference.
//
// fast_exp: e^x = 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]; e^r by a degree-6
// Taylor/Horner polynomial (truncation error below 1.7e-7 relative on that range); 2^n built in the exponent
// bits. Measured max relative error against std::exp over [-87, 88]: below 3e-7 (tests/tensor).
// Limits: x below -87.683 (and -inf) give +0 and up to -87.337 the result is subnormal; above 88.376 (e^x
// ~ 2^127.5, near FLT_MAX) +inf; NaN gives NaN.
#include <bit>
#include <cmath>
#include <cstdint>

namespace gradlab {

// e^x = 2^n e^r with n = round(x / ln2) and |r| <= ln2 / 2: the part fast_exp and fast_exp_estrin share.
struct ExpReduced {
  float r;      // the remainder, for the polynomial
  float scale;  // 2^n
};
inline ExpReduced exp_reduce(float x) {
  // The clamps keep n in [-127, 128]. Written as "x < lo ? lo : x", a NaN passes through them (the compiler
  // keeps that with maxps/minps operand order) and then through the arithmetic: NaN in, NaN out.
  float c = x < -88.0f ? -88.0f : x;
  c = c > 88.8f ? 88.8f : c;
  // Adding 1.5 * 2^23 rounds x / ln2 to an integer in the low mantissa bits; the extra 127 makes those bits
  // n's biased exponent, so the float's bits shifted left by 23 are 2^n: 0 for n = -127, +inf for n = 128.
  // No float-to-int conversion, which is undefined for NaN and does not vectorize on every target.
  constexpr float kShift = 12582912.0f + 127.0f;
  const float t = c * 1.44269504088896341f + kShift;
  const float n = t - kShift;
  // two-step Cody-Waite reduction keeps r accurate: ln2 = hi + lo
  float r = c - n * 0.693145751953125f;
  r = r - n * 1.428606765330187045e-06f;
  return {r, std::bit_cast<float>(std::bit_cast<std::uint32_t>(t) << 23)};
}

inline float fast_exp(float x) {
  const ExpReduced e = exp_reduce(x);
  const float r = e.r;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * e.scale;
}

// fast_exp's algorithm and limits with the polynomial in Estrin's scheme, (1 + r + r^2/2 + r^3/6) +
// r^4 (1/24 + r/120 + r^2/720): two more operations, but a dependency chain of 4 steps instead of 6, which is
// what bounds the portable kernels' vectorized loops without FMA (their mul+add chains have the latency of two
// instructions). Rounds differently from fast_exp; measured max relative error 2.7e-7 (tests/tensor).
inline float fast_exp_estrin(float x) {
  const ExpReduced e = exp_reduce(x);  // the clamps, the rounding and 2^n exactly as in fast_exp
  const float r = e.r;
  const float r2 = r * r, r4 = r2 * r2;
  const float lo = (1.0f + r) + r2 * (0.5f + r * (1.0f / 6.0f));
  const float hi = (1.0f / 24.0f + r * (1.0f / 120.0f)) + r2 * (1.0f / 720.0f);
  return (lo + r4 * hi) * e.scale;
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
