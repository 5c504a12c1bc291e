// LayerNorm/RMSNorm row kernels: the portable reference, and the float32 entry points that pick the AVX2
// loops and split the rows over the worker pool (see tensor/norm.h).
#include "tensor/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/threads.h"

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
    norm_forward_portable<float>(x + r0 * C, w, b, out + r0 * C, mean + r0, rstd + r0, rows, C, eps, rms);
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
    norm_backward_portable<float>(g + r0 * C, x + r0 * C, w, mean + r0, rstd + r0, dx + r0 * C, pw, pb, rows, C, rms);
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
