// LayerNorm/RMSNorm row kernels: the portable reference (double accumulation), the portable float32 rows, and
// the float32 entry points that pick the AVX2/NEON or the portable float32 rows and split the rows over the
// worker pool (see tensor/norm.h).
#include "tensor/norm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/threads.h"
#include "tensor/vec4.h"

namespace gradlab::kernels {

template <typename T>
void norm_forward_portable(const T* x, const T* w, const T* b, T* out, T* mean, T* rstd, std::int64_t rows,
                           std::int64_t C, double eps, bool rms) {
  // x is (rows, C): mean and variance in double, two loops over the row (the variance of the deviations,
  // not E[x^2] - mean^2, which cancels badly when |mean| >> std)
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    double mu = 0, var = 0;
    if (!rms) {
      for (std::int64_t c = 0; c < C; ++c) mu += xr[c];
      mu /= static_cast<double>(C);
    }
    for (std::int64_t c = 0; c < C; ++c) var += (xr[c] - mu) * (xr[c] - mu);
    var /= static_cast<double>(C);
    // xhat from the stored (rounded) mean and rstd, exactly as the backward recomputes it
    const T m = static_cast<T>(mu), rs = static_cast<T>(1.0 / std::sqrt(var + eps));
    mean[r] = m;
    rstd[r] = rs;
    for (std::int64_t c = 0; c < C; ++c) {
      const T h = static_cast<T>((static_cast<double>(xr[c]) - m) * rs);
      out[r * C + c] = h * w[c] + (b ? b[c] : T(0));
    }
  }
}

template <typename T>
void norm_backward_portable(const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* dx, T* dw, T* db,
                            std::int64_t rows, std::int64_t C, bool rms) {
  // exercise 05.2 begin: layernorm (and rmsnorm) backward of one row: dx, dw, db
  // g, x are (rows, C); the row means and the dw/db sums accumulate in double
  std::vector<double> acc_w(static_cast<std::size_t>(C), 0.0), acc_b(static_cast<std::size_t>(C), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * C;
    const T* xr = x + r * C;
    const double m = mean[r], rs = rstd[r];
    auto xhat = [&](std::int64_t c) { return static_cast<T>((static_cast<double>(xr[c]) - m) * rs); };
    double mean_d = 0, mean_dh = 0;
    for (std::int64_t c = 0; c < C; ++c) {
      const double d = static_cast<double>(gr[c]) * w[c], h = xhat(c);
      mean_d += d;
      mean_dh += d * h;
      acc_w[c] += static_cast<double>(gr[c]) * h;
      acc_b[c] += gr[c];
    }
    mean_d = rms ? 0.0 : mean_d / static_cast<double>(C);
    mean_dh /= static_cast<double>(C);
    for (std::int64_t c = 0; c < C; ++c) {
      const double d = static_cast<double>(gr[c]) * w[c];
      dx[r * C + c] = static_cast<T>(rs * (d - mean_d - xhat(c) * mean_dh));
    }
  }
  for (std::int64_t c = 0; c < C; ++c) {
    dw[c] = static_cast<T>(acc_w[c]);
    if (db) db[c] = static_cast<T>(acc_b[c]);
  }
  // exercise 05.2 end
}

template void norm_forward_portable<float>(const float*, const float*, const float*, float*, float*, float*,
                                           std::int64_t, std::int64_t, double, bool);
template void norm_forward_portable<double>(const double*, const double*, const double*, double*, double*, double*,
                                            std::int64_t, std::int64_t, double, bool);
template void norm_backward_portable<float>(const float*, const float*, const float*, const float*, const float*,
                                            float*, float*, float*, std::int64_t, std::int64_t, bool);
template void norm_backward_portable<double>(const double*, const double*, const double*, const double*,
                                             const double*, double*, double*, double*, std::int64_t, std::int64_t,
                                             bool);

// ---- float32 portable rows: norm_avx2.cpp's algorithm (float accumulators, 8 partial sums) in plain C++ ----

namespace {
#if defined(__GNUC__)
// Eight partial sums in two 4-float vectors (GCC/Clang vector extension: SSE on x86, NEON on ARM), added up in
// the order of norm_avx2.cpp's hsum; a float loop with one running sum would not vectorize without
// reassociation.
inline float hsum(v4 a, v4 b) {
  const v4 s = a + b;
  return (s[0] + s[2]) + (s[1] + s[3]);
}
constexpr std::int64_t kLanes = 8;
#else
constexpr std::int64_t kLanes = 1;  // no vector extension: the scalar tails do all the work
#endif
}  // namespace

void norm_forward_f32_portable(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                               std::int64_t rows, std::int64_t C, float eps, bool rms) {
  // x, out are (rows, C); mean, rstd are (rows)
  const std::int64_t C8 = C - C % kLanes;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* orow = out + r * C;
    float mu = 0.0f;
    std::int64_t c = 0;
    if (!rms) {
      float sum = 0.0f;
#if defined(__GNUC__)
      v4 s0 = {0, 0, 0, 0}, s1 = s0;
      for (; c < C8; c += 8) s0 += load4(xr + c), s1 += load4(xr + c + 4);
      sum = hsum(s0, s1);
#endif
      for (; c < C; ++c) sum += xr[c];
      mu = sum / static_cast<float>(C);
    }
    // variance of the deviations (stable when |mean| >> std)
    float var = 0.0f;
    c = 0;
#if defined(__GNUC__)
    v4 s0 = {0, 0, 0, 0}, s1 = s0;
    for (; c < C8; c += 8) {
      const v4 d0 = load4(xr + c) - mu, d1 = load4(xr + c + 4) - mu;
      s0 += d0 * d0;
      s1 += d1 * d1;
    }
    var = hsum(s0, s1);
#endif
    for (; c < C; ++c) var += (xr[c] - mu) * (xr[c] - mu);
    const float rs = 1.0f / std::sqrt(var / static_cast<float>(C) + eps);
    mean[r] = mu;
    rstd[r] = rs;
    // a plain loop: independent elements, so it vectorizes as written
    for (c = 0; c < C; ++c) orow[c] = (xr[c] - mu) * rs * w[c] + (b ? b[c] : 0.0f);
  }
}

void norm_backward_f32_portable(const float* g, const float* x, const float* w, const float* mean, const float* rstd,
                                float* dx, float* dw, float* db, std::int64_t rows, std::int64_t C, bool rms) {
  // g, x, dx are (rows, C); dw, db (C) get the sums over these rows, accumulated row by row in float
  const std::int64_t C8 = C - C % kLanes;
  for (std::int64_t c = 0; c < C; ++c) dw[c] = 0.0f;
  if (db)
    for (std::int64_t c = 0; c < C; ++c) db[c] = 0.0f;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* gr = g + r * C;
    const float* xr = x + r * C;
    float* dxr = dx + r * C;
    const float mu = mean[r], rs = rstd[r];
    // first pass: the two row sums, and this row's share of dw and db
    float sum_d = 0.0f, sum_dh = 0.0f;
    std::int64_t c = 0;
#if defined(__GNUC__)
    v4 sd0 = {0, 0, 0, 0}, sd1 = sd0, sdh0 = sd0, sdh1 = sd0;
    for (; c < C8; c += 8) {
      const v4 g0 = load4(gr + c), g1 = load4(gr + c + 4);
      const v4 h0 = (load4(xr + c) - mu) * rs, h1 = (load4(xr + c + 4) - mu) * rs;
      const v4 d0 = g0 * load4(w + c), d1 = g1 * load4(w + c + 4);
      sd0 += d0, sd1 += d1;
      sdh0 += d0 * h0, sdh1 += d1 * h1;
      store4(dw + c, load4(dw + c) + g0 * h0);
      store4(dw + c + 4, load4(dw + c + 4) + g1 * h1);
      if (db) {
        store4(db + c, load4(db + c) + g0);
        store4(db + c + 4, load4(db + c + 4) + g1);
      }
    }
    sum_d = hsum(sd0, sd1);
    sum_dh = hsum(sdh0, sdh1);
#endif
    for (; c < C; ++c) {
      const float h = (xr[c] - mu) * rs, d = gr[c] * w[c];
      sum_d += d;
      sum_dh += d * h;
      dw[c] += gr[c] * h;
      if (db) db[c] += gr[c];
    }
    const float mean_d = rms ? 0.0f : sum_d / static_cast<float>(C), mean_dh = sum_dh / static_cast<float>(C);
    // second pass: dx = rstd * (d - mean_d - xhat * mean_dh), independent elements
    for (c = 0; c < C; ++c) {
      const float h = (xr[c] - mu) * rs, d = gr[c] * w[c];
      dxr[c] = rs * ((d - mean_d) - h * mean_dh);
    }
  }
}

namespace {
// Rows per chunk: a fixed number, so the dw/db partial sums (one per chunk) and the order in which they are
// added are the same for every thread count.
constexpr std::int64_t kChunkRows = 64;
// Below kParallelMinElements the whole array runs on the calling thread (waking a worker costs more).
int threads_for(std::int64_t elements, std::int64_t chunks) {
  if (elements < kParallelMinElements) return 1;
  return static_cast<int>(std::min<std::int64_t>(max_threads(), chunks));
}
}  // namespace

void norm_forward(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                  std::int64_t N, std::int64_t C, float eps, bool rms) {
  // x, out are (N, C); mean, rstd are (N)
  if (N < 0 || C < 1 || (N > 0 && (!x || !w || !out || !mean || !rstd)))
    throw_error("norm_forward: got N = ", N, ", C = ", C,
                ", expected N >= 0, C >= 1 and non-null x, w, out, mean, rstd (b may be null)");
  const std::int64_t chunks = (N + kChunkRows - 1) / kChunkRows;
  parallel_for_dynamic(chunks, threads_for(N * C, chunks), [&](std::int64_t k, int) {
    const std::int64_t r0 = k * kChunkRows, rows = std::min(kChunkRows, N - r0);
#ifdef GRADLAB_HAVE_AVX2_KERNELS
    if (use_avx2())
      return norm_forward_avx2(x + r0 * C, w, b, out + r0 * C, mean + r0, rstd + r0, rows, C, eps, rms);
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
    if (use_neon())
      return norm_forward_neon(x + r0 * C, w, b, out + r0 * C, mean + r0, rstd + r0, rows, C, eps, rms);
#endif
    norm_forward_f32_portable(x + r0 * C, w, b, out + r0 * C, mean + r0, rstd + r0, rows, C, eps, rms);
  });
}

void norm_backward(const float* g, const float* x, const float* w, const float* mean, const float* rstd, float* dx,
                   float* dw, float* db, std::int64_t N, std::int64_t C, bool rms) {
  // g, x, dx are (N, C); each chunk of rows writes its own dw/db partial sums, added below in chunk order
  if (N < 0 || C < 1 || !dw || (N > 0 && (!g || !x || !w || !mean || !rstd || !dx)))
    throw_error("norm_backward: got N = ", N, ", C = ", C,
                ", expected N >= 0, C >= 1 and non-null g, x, w, mean, rstd, dx, dw (db may be null)");
  const std::int64_t chunks = (N + kChunkRows - 1) / kChunkRows;
  std::vector<float> partial(static_cast<std::size_t>(chunks * 2 * C));
  parallel_for_dynamic(chunks, threads_for(N * C, chunks), [&](std::int64_t k, int) {
    const std::int64_t r0 = k * kChunkRows, rows = std::min(kChunkRows, N - r0);
    float* pw = partial.data() + k * 2 * C;
    float* pb = pw + C;
#ifdef GRADLAB_HAVE_AVX2_KERNELS
    if (use_avx2())
      return norm_backward_avx2(g + r0 * C, x + r0 * C, w, mean + r0, rstd + r0, dx + r0 * C, pw, pb, rows, C, rms);
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
    if (use_neon())
      return norm_backward_neon(g + r0 * C, x + r0 * C, w, mean + r0, rstd + r0, dx + r0 * C, pw, pb, rows, C, rms);
#endif
    norm_backward_f32_portable(g + r0 * C, x + r0 * C, w, mean + r0, rstd + r0, dx + r0 * C, pw, pb, rows, C, rms);
  });
  for (std::int64_t c = 0; c < C; ++c) {
    double sw = 0, sb = 0;
    for (std::int64_t k = 0; k < chunks; ++k) {
      sw += partial[static_cast<std::size_t>(k * 2 * C + c)];
      sb += partial[static_cast<std::size_t>(k * 2 * C + C + c)];
    }
    dw[c] = static_cast<float>(sw);
    if (db) db[c] = static_cast<float>(sb);
  }
}

}  // namespace gradlab::kernels
