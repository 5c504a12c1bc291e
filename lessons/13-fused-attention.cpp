// Lesson 13: fused attention. The online softmax that lets a kernel walk the keys tile by tile without ever
// holding a T x T matrix, StableMask's sink logit tau_i as the running state's starting point, the flash
// kernel checked against the materialized kernel (forward and backward), then time and memory against T.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lessons/lesson.h"
#include "lessons/plot.h"
#include "nn/stablemask.h"
#include "tensor/attention_kernel.h"
#include "tensor/rng.h"

using namespace gradlab;
using gradlab::lesson::fmt;
using gradlab::lesson::Lesson;

namespace {

std::vector<float> randn(Rng& rng, std::size_t n) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m;
}

std::string bytes_str(double b) {
  if (b >= 1 << 30) return fmt("%.1f GiB", b / (1 << 30));
  if (b >= 1 << 20) return fmt("%.1f MiB", b / (1 << 20));
  return fmt("%.1f KiB", b / 1024);
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Info info{13, "fused-attention", "Fused attention: tiled online softmax with the sink logit", 13};
  return lesson::run(argc, argv, info, nullptr, [](Lesson& L) {
    const bool quick = L.quick();
    Rng rng(L.seed());

    // ------------------------------------------------------------------------------------------------------
    L.step("The memory problem");
    L.say("Materialized attention builds P = softmax(QK^T / sqrt(d)) as a (B, H, T, T) array: quadratic in T.");
    L.say("For B = 1, H = 8, float32:");
    for (std::int64_t T : {256, 1024, 4096, 16384})
      L.sayf("  T = %6lld   P takes %10s   the output O (d = 64) takes %10s", (long long)T,
             bytes_str(8.0 * T * T * 4).c_str(), bytes_str(8.0 * T * 64 * 4).c_str());
    L.say("A fused (FlashAttention-style) kernel never stores P: it walks the keys in tiles and keeps, per query");
    L.say("row, only a running maximum m, a running sum l and a running output vector.");

    // ------------------------------------------------------------------------------------------------------
    L.step("Online softmax on one row, with the sink");
    L.say("For scores a_0..a_{n-1}, values v_j and StableMask's sink logit tau (a key with value 0):");
    L.say("  start     m = tau, l = 1, o = 0                (the sink: e^{tau - m} = 1, contributes no value)");
    L.say("  per tile  m' = max(m, max_j a_j);  l = l e^{m - m'} + sum_j e^{a_j - m'};  o = o e^{m - m'} + sum_j e^{a_j - m'} v_j");
    L.say("  end       O = o / l,   LSE = m + log l");
    L.say("(Causal attention starts from m = -inf, l = 0.) Scalar values v_j here, tiles of 4 keys:");
    const int n = 12;
    std::vector<double> a(n), v(n);
    for (int j = 0; j < n; ++j) a[j] = rng.normal(0.0, 1.5), v[j] = rng.normal();
    const double gamma = 0.25;
    const std::int64_t row = n - 1, Ltrain = 24;
    const double tau = stablemask_tau(gamma, Ltrain, row, StableMaskTail::Finite);
    L.sayf("row i = %lld, training length L = %lld, gamma = %.2f:  tau_i = log Z(i) = %.4f", (long long)row,
           (long long)Ltrain, gamma, tau);
    double m = tau, l = 1.0, o = 0.0;
    L.sayf("  %-10s m = %8.4f   l = %8.4f   o = %8.4f", "start", m, l, o);
    for (int t0 = 0; t0 < n; t0 += 4) {
      double mt = m;
      for (int j = t0; j < t0 + 4; ++j) mt = std::max(mt, a[j]);
      const double scale = std::exp(m - mt);
      l *= scale;
      o *= scale;
      for (int j = t0; j < t0 + 4; ++j) {
        l += std::exp(a[j] - mt);
        o += std::exp(a[j] - mt) * v[j];
      }
      m = mt;
      L.sayf("  keys %2d-%-2d m = %8.4f   l = %8.4f   o = %8.4f", t0, t0 + 3, m, l, o);
    }
    const double online = o / l, lse_online = m + std::log(l);
    // direct: softmax over [a_0..a_{n-1}, tau], sink value 0
    double mx = tau, s = 0, num = 0;
    for (double x : a) mx = std::max(mx, x);
    s = std::exp(tau - mx);
    for (int j = 0; j < n; ++j) s += std::exp(a[j] - mx), num += std::exp(a[j] - mx) * v[j];
    const double direct = num / s, lse_direct = mx + std::log(s);
    L.check_close(online, direct, 1e-12, 1e-14, "online O equals softmax over all keys plus the sink, times V");
    L.check_close(lse_online, lse_direct, 1e-12, 0, "online LSE = logaddexp(logsumexp(a), tau)");
    L.say("Only the exponentials of differences to the running max are ever taken: nothing overflows.");

    // ------------------------------------------------------------------------------------------------------
    L.step("The flash kernel against the materialized kernel");
    const std::int64_t B = 1, H = 2, T = 100, D = 16;  // T not a multiple of the 64-row tile: edges are tested
    const std::size_t nq = static_cast<std::size_t>(B * H * T * D);
    std::vector<float> q = randn(rng, nq), k = randn(rng, nq), vv = randn(rng, nq), d_o = randn(rng, nq);
    std::vector<double> gammas = alibi_slopes(H);
    std::vector<float> taus(static_cast<std::size_t>(H * T));
    stablemask_tau_table(gammas, T, T, 0, StableMaskTail::Finite, taus.data());
    for (int stable = 0; stable < 2; ++stable) {
      attention::Bias bias{1.0f / std::sqrt(static_cast<float>(D)), stable ? taus.data() : nullptr, nullptr};
      const attention::Geometry g{B, H, T, D};
      std::vector<float> probs(static_cast<std::size_t>(B * H * T * T)), o_ref(nq), o_fl(nq), lse(B * H * T);
      attention::materialized_forward(g, bias, q.data(), k.data(), vv.data(), probs.data(), o_ref.data());
      attention::flash_forward(g, bias, q.data(), k.data(), vv.data(), o_fl.data(), lse.data());
      std::vector<float> dq_r(nq), dk_r(nq), dv_r(nq), dq_f(nq), dk_f(nq), dv_f(nq);
      attention::materialized_backward(g, bias, q.data(), k.data(), vv.data(), probs.data(), d_o.data(), dq_r.data(),
                                    dk_r.data(), dv_r.data());
      attention::flash_backward(g, bias, q.data(), k.data(), vv.data(), o_fl.data(), lse.data(), d_o.data(), dq_f.data(),
                                dk_f.data(), dv_f.data());
      const std::string name = stable ? "StableMask" : "causal";
      const double dout = max_diff(o_ref, o_fl);
      const double dgrad = std::max({max_diff(dq_r, dq_f), max_diff(dk_r, dk_f), max_diff(dv_r, dv_f)});
      L.check(dout < 1e-5, name + ": flash forward O = reference O", fmt("T = %lld, max |diff| %.1e", (long long)T, dout));
      L.check(dgrad < 1e-4, name + ": flash backward dQ, dK, dV = reference", fmt("max |diff| %.1e", dgrad));
      if (stable) {
        double mass_last = 0;
        for (std::int64_t j = 0; j < T; ++j) mass_last += probs[(T - 1) * T + j];
        L.sayf("(the reference's last row sums to %.6f: no pseudo slots at i = L-1; row 0 sums to %.4f)", mass_last,
               probs[0]);
      }
    }
    L.say("The backward recomputes P tile by tile from Q, K and the saved LSE; with the sink's value 0 it is the");
    L.say("ordinary softmax backward, dA_ij = P_ij (dO_i . v_j - D_i), D_i = dO_i . O_i.");

    // ------------------------------------------------------------------------------------------------------
    L.step("Time and memory against T");
    std::vector<std::int64_t> Ts = quick ? std::vector<std::int64_t>{64, 128, 256}
                                         : std::vector<std::int64_t>{128, 256, 512, 1024, 2048};
    const std::int64_t Hb = 4, Db = 32;
    L.sayf("B = 1, H = %lld, d = %lld, StableMask, forward only, best of 3 runs. Memory = the buffers each method", (long long)Hb,
           (long long)Db);
    L.say("needs besides Q, K, V and O (computed from their sizes, not measured):");
    L.sayf("  %6s %14s %14s %9s %14s %14s", "T", "reference ms", "flash ms", "speed-up", "reference mem", "flash mem");
    std::vector<double> xs, t_ref, t_fl, m_ref, m_fl;
    std::string csv = "T,reference_seconds,flash_seconds,reference_bytes,flash_bytes\n";
    for (std::int64_t Tb : Ts) {
      const std::size_t nb = static_cast<std::size_t>(Hb * Tb * Db);
      std::vector<float> qb = randn(rng, nb), kb = randn(rng, nb), vb = randn(rng, nb), ob(nb);
      std::vector<float> tb(static_cast<std::size_t>(Hb * Tb)), lse(static_cast<std::size_t>(Hb * Tb));
      stablemask_tau_table(alibi_slopes(Hb), Tb, Tb, 0, StableMaskTail::Finite, tb.data());
      attention::Bias bias{1.0f / std::sqrt(static_cast<float>(Db)), tb.data(), nullptr};
      const attention::Geometry g{1, Hb, Tb, Db};
      std::vector<float> probs(static_cast<std::size_t>(Hb * Tb * Tb));
      double best_r = 1e30, best_f = 1e30;
      for (int r = 0; r < 3; ++r) {
        double t0 = lesson::now_seconds();
        attention::materialized_forward(g, bias, qb.data(), kb.data(), vb.data(), probs.data(), ob.data());
        best_r = std::min(best_r, lesson::now_seconds() - t0);
        t0 = lesson::now_seconds();
        attention::flash_forward(g, bias, qb.data(), kb.data(), vb.data(), ob.data(), lse.data());
        best_f = std::min(best_f, lesson::now_seconds() - t0);
      }
      const double mr = 4.0 * Hb * Tb * Tb, mf = 4.0 * Hb * Tb;  // probs vs LSE
      L.sayf("  %6lld %14.2f %14.2f %8.1fx %14s %14s", (long long)Tb, best_r * 1e3, best_f * 1e3, best_r / best_f,
             bytes_str(mr).c_str(), bytes_str(mf).c_str());
      csv += fmt("%lld,%.6f,%.6f,%.0f,%.0f\n", (long long)Tb, best_r, best_f, mr, mf);
      xs.push_back(static_cast<double>(Tb));
      t_ref.push_back(best_r * 1e3);
      t_fl.push_back(best_f * 1e3);
      m_ref.push_back(mr);
      m_fl.push_back(mf);
    }
    L.save_text("attention_scaling.csv", csv);
    lesson::LinePlot tp;
    tp.title = fmt("Attention forward time vs T (H = %lld, d = %lld, StableMask, seed %llu)", (long long)Hb, (long long)Db,
                   (unsigned long long)L.seed());
    tp.x_label = "sequence length T";
    tp.y_label = "milliseconds (best of 3)";
    tp.log_x = tp.log_y = true;
    tp.series = {{"materialized kernel", xs, t_ref}, {"flash (fused, tiled)", xs, t_fl}};
    L.wrote(lesson::save_line_plot(tp, L.stem("time_vs_T")));
    lesson::LinePlot mp;
    mp.title = "Extra memory vs T: the T x T probabilities against one LSE per row";
    mp.x_label = "sequence length T";
    mp.y_label = "bytes";
    mp.log_x = mp.log_y = true;
    mp.series = {{"materialized: (H, T, T) probabilities", xs, m_ref}, {"flash: (H, T) log-sum-exp", xs, m_fl}};
    L.wrote(lesson::save_line_plot(mp, L.stem("memory_vs_T")));
    L.say("Both do the same O(T^2 d) arithmetic; the fused kernel saves the T x T memory traffic, which matters more");
    L.say("as T grows. Measured here:");
    const double ratio = t_ref.back() / t_fl.back();
    L.sayf("  at T = %lld the flash kernel was %.1fx %s than the reference.", (long long)Ts.back(),
           ratio >= 1 ? ratio : 1 / ratio, ratio >= 1 ? "faster" : "slower");
    L.say("Times are measured now on this machine (other programs slow them down); memory follows from the buffer");
    L.say("sizes.");
  });
}
