// AVX2+FMA activation kernels: eight floats at a time, the same algorithm as tensor/fastmath.h.
#include <immintrin.h>

#include "tensor/activations.h"

namespace gradlab::kernels {

namespace {

// e^x for 8 lanes: n = round(x / ln2), r = x - n ln2 (two steps), degree-6 polynomial, times 2^n.
inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.7f);
  __m256 c = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), c);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// tanh for 8 lanes: 1 - 2/(e^{2|x|} + 1) with the sign restored; the odd series below |x| < 0.02.
inline __m256 tanh8(__m256 x) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  __m256 ax = _mm256_andnot_ps(sign_mask, x);
  __m256 e = exp8(_mm256_add_ps(ax, ax));
  __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  big = _mm256_or_ps(big, _mm256_and_ps(x, sign_mask));
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 series = _mm256_fnmadd_ps(x2, _mm256_set1_ps(2.0f / 15.0f), _mm256_set1_ps(1.0f / 3.0f));
  series = _mm256_mul_ps(x, _mm256_fnmadd_ps(x2, series, _mm256_set1_ps(1.0f)));
  __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.02f), _CMP_LT_OQ);
  return _mm256_blendv_ps(big, series, is_small);
}

// erf for 8 lanes, and e^{-z^2} as a by-product (the GELU backward needs the normal density too).
// Two pieces, blended per lane:
//   |z| < 1:   erf(z) = z P(z^2), P of degree 6 (an odd polynomial of degree 13 in z), evaluated as
//              z + z (P(z^2) - 1) so the leading term is not rounded before the sum
//   |z| >= 1:  erf(z) = sign(z) (1 - e^{-z^2} Q(v)), v = min(|z|, 4) - 2.5, Q of degree 8 fitting erfc(z) e^{z^2}
// Past |z| = 4, erfc(z) < 1.6e-8 is below half an ulp of 1, so the result rounds to +-1.
// The coefficients are near-minimax fits made for gradlab with mpmath at 40 digits: weighted least squares on
// 400 Chebyshev-spaced points, reweighted by each point's error (Lawson's iteration) until the error curve
// equioscillates. P fits erf(z)/z as a polynomial in w = z^2 on [0, 1] (max relative error 1.2e-9); Q fits
// erfc(z) e^{z^2} in v on [1, 4] with weight e^{-z^2}, i.e. minimising erfc's absolute error (max 2.4e-9). What
// remains is float rounding: measured max error 7.2e-8 absolute, 8.4e-8 relative against std::erf (about
// 1.2 ulp), tested in tests/tensor/test_gelu_exact.cpp. NaN stays NaN.
inline __m256 erf8(__m256 z, __m256* gauss) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 az = _mm256_andnot_ps(sign_mask, z);
  const __m256 z2 = _mm256_mul_ps(z, z);
  // small piece: z P(z^2)
  __m256 p = _mm256_set1_ps(7.8538577031041551e-5f);
  p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(-8.0101925198704981e-4f));
  p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(5.1883275599296844e-3f));
  p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(-2.6853811869089372e-2f));
  p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(1.1283585147031536e-1f));
  p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(-3.761262582409362e-1f));
  p = _mm256_fmadd_ps(p, z2, _mm256_set1_ps(1.283791657266903e-1f));   // the fitted 1.1283791657266903, less 1
  const __m256 small = _mm256_fmadd_ps(az, p, az);                       // az + az (P - 1): rounds once at the end
  // large piece: 1 - e^{-z^2} Q(v); min(4, az) keeps a NaN lane NaN (minps returns its second operand then)
  const __m256 v = _mm256_sub_ps(_mm256_min_ps(_mm256_set1_ps(4.0f), az), _mm256_set1_ps(2.5f));
  __m256 q = _mm256_set1_ps(1.0684321429387194e-4f);
  q = _mm256_fmadd_ps(q, v, _mm256_set1_ps(2.2506283416838555e-4f));
  q = _mm256_fmadd_ps(q, v, _mm256_set1_ps(5.4332004621190177e-4f));
  q = _mm256_fmadd_ps(q, v, _mm256_set1_ps(-6.611205443239209e-4f));
  q = _mm256_fmadd_ps(q, v, _mm256_set1_ps(2.3025031200668662e-3f));
  q = _mm256_fmadd_ps(q, v, _mm256_set1_ps(-8.1322517735636514e-3f));
  q = _mm256_fmadd_ps(q, v, _mm256_set1_ps(2.4914625740715879e-2f));
  q = _mm256_fmadd_ps(q, v, _mm256_set1_ps(-7.4342186752907787e-2f));
  q = _mm256_fmadd_ps(q, v, _mm256_set1_ps(2.1080760553366885e-1f));
  // e^{-z^2}, set to 0 where it underflows (exp8 clamps its argument at -87.3, so would give 1.2e-38, and the
  // backward's x e^{-x^2/2} must not grow back from that for huge x)
  const __m256 g = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_setzero_ps(), z2)),
                                 _mm256_cmp_ps(z2, _mm256_set1_ps(87.0f), _CMP_LT_OQ));
  const __m256 large = _mm256_fnmadd_ps(g, q, _mm256_set1_ps(1.0f));
  const __m256 is_small = _mm256_cmp_ps(az, _mm256_set1_ps(1.0f), _CMP_LT_OQ);
  *gauss = g;
  return _mm256_or_ps(_mm256_blendv_ps(large, small, is_small), _mm256_and_ps(z, sign_mask));
}

}  // namespace

void gelu_forward_avx2(const float* x, float* y, std::int64_t n) {
  // constants live inside the functions: a global __m256 would run AVX code at start-up on any CPU
  const __m256 kK = _mm256_set1_ps(0.7978845608028654f), kC = _mm256_set1_ps(0.044715f);
  std::int64_t i = 0;
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    __m256 u = _mm256_mul_ps(kK, _mm256_fmadd_ps(_mm256_mul_ps(kC, v), _mm256_mul_ps(v, v), v));
    __m256 t = tanh8(u);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
  }
  gelu_forward_portable(x + i, y + i, n - i);
}

void gelu_backward_avx2(const float* x, const float* g, float* dx, std::int64_t n) {
  // constants live inside the functions: a global __m256 would run AVX code at start-up on any CPU
  const __m256 kK = _mm256_set1_ps(0.7978845608028654f), kC = _mm256_set1_ps(0.044715f);
  std::int64_t i = 0;
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), three_c = _mm256_set1_ps(3.0f * 0.044715f);
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    __m256 v2 = _mm256_mul_ps(v, v);
    __m256 t = tanh8(_mm256_mul_ps(kK, _mm256_fmadd_ps(_mm256_mul_ps(kC, v), v2, v)));
    __m256 du = _mm256_mul_ps(kK, _mm256_fmadd_ps(three_c, v2, one));
    __m256 left = _mm256_mul_ps(half, _mm256_add_ps(one, t));
    __m256 right = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_mul_ps(_mm256_fnmadd_ps(t, t, one), du));
    _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(g + i), _mm256_add_ps(left, right)));
  }
  gelu_backward_portable(x + i, g + i, dx + i, n - i);
}

// ---- exact (erf) GELU -----------------------------------------------------------------------------------
// Each kernel runs the vector body on 8 lanes; the last n % 8 elements are copied into a zero-padded block and
// run through the same body, so no element takes a different code path.

namespace {
// Runs body(in, out) on 8 floats at a time; the last n % 8 go through the same body on a zero-padded block.
template <typename Body>
void map_blocks8(const float* x, float* y, std::int64_t n, Body body) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) body(x + i, y + i);
  if (i < n) {
    float xb[8] = {}, yb[8];
    for (std::int64_t j = i; j < n; ++j) xb[j - i] = x[j];
    body(xb, yb);
    for (std::int64_t j = i; j < n; ++j) y[j] = yb[j - i];
  }
}
}  // namespace

void erf_avx2(const float* x, float* y, std::int64_t n) {
  // x, y are (n)
  auto body = [](const float* xi, float* yi) {
    __m256 gauss;
    _mm256_storeu_ps(yi, erf8(_mm256_loadu_ps(xi), &gauss));
  };
  map_blocks8(x, y, n, body);
}

void gelu_exact_forward_avx2(const float* x, float* y, std::int64_t n) {
  // x, y are (n):  y = x Phi(x),  Phi(x) = 0.5 + 0.5 erf(x / sqrt 2)
  auto body = [](const float* xi, float* yi) {
    const __m256 half = _mm256_set1_ps(0.5f), inv_sqrt2 = _mm256_set1_ps(0.70710678118654752f);
    const __m256 v = _mm256_loadu_ps(xi);
    __m256 gauss;
    const __m256 cdf = _mm256_fmadd_ps(half, erf8(_mm256_mul_ps(v, inv_sqrt2), &gauss), half);
    _mm256_storeu_ps(yi, _mm256_mul_ps(v, cdf));
  };
  map_blocks8(x, y, n, body);
}

void gelu_exact_backward_avx2(const float* x, const float* g, float* dx, std::int64_t n) {
  // x, g, dx are (n):  y = x Phi(x)  ->  dx = g (Phi(x) + x phi(x)),  phi(x) = e^{-x^2/2} / sqrt(2 pi)
  auto body = [](const float* xi, const float* gi, float* dxi) {
    const __m256 half = _mm256_set1_ps(0.5f), inv_sqrt2 = _mm256_set1_ps(0.70710678118654752f);
    const __m256 inv_sqrt_2pi = _mm256_set1_ps(0.39894228040143268f);
    const __m256 v = _mm256_loadu_ps(xi);
    __m256 gauss;  // e^{-z^2} with z = x / sqrt 2, that is e^{-x^2/2}
    const __m256 cdf = _mm256_fmadd_ps(half, erf8(_mm256_mul_ps(v, inv_sqrt2), &gauss), half);
    const __m256 pdf = _mm256_mul_ps(inv_sqrt_2pi, gauss);
    _mm256_storeu_ps(dxi, _mm256_mul_ps(_mm256_loadu_ps(gi), _mm256_fmadd_ps(v, pdf, cdf)));
  };
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) body(x + i, g + i, dx + i);
  if (i < n) {
    float xb[8] = {}, gb[8] = {}, db[8];
    for (std::int64_t j = i; j < n; ++j) xb[j - i] = x[j], gb[j - i] = g[j];
    body(xb, gb, db);
    for (std::int64_t j = i; j < n; ++j) dx[j] = db[j - i];
  }
}

}  // namespace gradlab::kernels
