// The AdamW update, 8 floats at a time (AVX2). Compiled with -mavx2 -mfma; called only behind use_avx2().
// The operations are the portable loop's (nn/optim.cpp), in the same order, with separate multiply and add
// (no FMA), and sqrt and division are correctly rounded in both: the results agree bit for bit.
#include <immintrin.h>

// GCC contracts a*b + c into an FMA by default (-ffp-contract=fast), even across intrinsics; clang (default
// -ffp-contract=on) fuses a*b + c within one expression, as in the tail loop. The portable loop is compiled
// without FMA, so contraction is switched off here to keep the two paths bit-identical. Clang ignores GCC's
// optimize pragma (with a warning) and has its own.
#if defined(__clang__)
#pragma clang fp contract(off)
#else
#pragma GCC optimize("fp-contract=off")
#endif

#include "nn/optim.h"

namespace gradlab {

bool adamw_update_f32_avx2(float* p, float* m, float* v, const float* g, std::int64_t n, const AdamWConstants& c) {
  const __m256 keep = _mm256_set1_ps(c.keep);
  const __m256 b1 = _mm256_set1_ps(c.beta1), one_b1 = _mm256_set1_ps(c.one_minus_beta1);
  const __m256 b2 = _mm256_set1_ps(c.beta2), one_b2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 step = _mm256_set1_ps(c.step_size), isb2 = _mm256_set1_ps(c.inv_sqrt_bias2);
  const __m256 eps = _mm256_set1_ps(c.eps), zero = _mm256_setzero_ps();
  __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));  // all lanes finite so far
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    // m = b1 m + (1-b1) g;  v = b2 v + ((1-b2) g) g   (the portable loop's association: (one_b2 * gi) * gi)
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(one_b1, gi));
    const __m256 vi =
        _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(one_b2, gi), gi));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), isb2), eps);
    // p = p keep - (step m) / denom
    const __m256 pi = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(p + i), keep),
                                    _mm256_div_ps(_mm256_mul_ps(step, mi), denom));
    _mm256_storeu_ps(p + i, pi);
    ok = _mm256_and_ps(ok, _mm256_cmp_ps(_mm256_sub_ps(pi, pi), zero, _CMP_EQ_OQ));
  }
  bool finite = _mm256_movemask_ps(ok) == 0xFF;
  // the tail: the portable loop's arithmetic, one element at a time
  for (; i < n; ++i) {
    const float gi = g[i];
    const float mi = c.beta1 * m[i] + c.one_minus_beta1 * gi;
    const float vi = c.beta2 * v[i] + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(vi))) * c.inv_sqrt_bias2 + c.eps;
    const float pi = p[i] * c.keep - c.step_size * mi / denom;
    p[i] = pi;
    finite = finite && (pi - pi == 0.0f);
  }
  return finite;
}

}  // namespace gradlab
