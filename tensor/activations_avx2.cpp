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

}  // namespace gradlab::kernels
