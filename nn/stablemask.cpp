#include "nn/stablemask.h"

#include <cmath>
#include <limits>

#include "tensor/error.h"

namespace gradlab {

namespace {

// The n-head ALiBi set for n a power of two: start^(h+1) with start = 2^(-8/n).
std::vector<double> power_of_two_slopes(std::int64_t n) {
  std::vector<double> slopes(static_cast<std::size_t>(n));
  for (std::int64_t h = 0; h < n; ++h) slopes[h] = std::exp2(-8.0 * double(h + 1) / double(n));
  return slopes;
}

void check_gamma(const char* op, double gamma) {
  if (!(gamma > 0.0) || !std::isfinite(gamma))
    throw_error(op, ": got gamma = ", gamma, ", expected a finite value > 0");
}

}  // namespace

std::vector<double> alibi_slopes(std::int64_t n_head) {
  if (n_head < 1) throw_error("alibi_slopes: got n_head = ", n_head, ", expected at least 1");
  std::int64_t p = 1;  // closest power of two <= n_head
  while (p * 2 <= n_head) p *= 2;
  std::vector<double> slopes = power_of_two_slopes(p);
  if (p == n_head) return slopes;
  // The 2P set interleaves the P set: its even-indexed entries are the slopes the P set lacks.
  const std::vector<double> finer = power_of_two_slopes(2 * p);
  for (std::int64_t k = 0; k < n_head - p; ++k) slopes.push_back(finer[2 * k]);
  return slopes;
}

double stablemask_tau(double gamma, std::int64_t block_size, std::int64_t row, StableMaskTail tail) {
  check_gamma("stablemask_tau", gamma);
  if (block_size < 1) throw_error("stablemask_tau: got block_size L = ", block_size, ", expected at least 1");
  if (row < 0) throw_error("stablemask_tau: got row = ", row, ", expected a position >= 0");
  // exercise 08.1 begin: StableMask's tau_i = log Z(i), in the stable log form
  // log(1 - e^{-gamma}) computed as log(-expm1(-gamma)): exact even for tiny gamma.
  const double log_one_minus_decay = std::log(-std::expm1(-gamma));
  const double head = -double(row + 1) * gamma - log_one_minus_decay;  // log of e^{-(i+1)g} / (1 - e^{-g})
  if (tail == StableMaskTail::Infinite) return head;
  // Finite tail: no pseudo columns left at or past the last training position, Z = 0.
  const std::int64_t n_pseudo = block_size - 1 - row;
  if (n_pseudo <= 0) return -std::numeric_limits<double>::infinity();
  return head + std::log(-std::expm1(-double(n_pseudo) * gamma));
  // exercise 08.1 end
}

namespace {
template <typename F>
void fill_tau_table(const std::vector<double>& gammas, std::int64_t block_size, std::int64_t T,
                    std::int64_t first_row, StableMaskTail tail, F* out) {
  // out is (H, T)
  const std::int64_t H = static_cast<std::int64_t>(gammas.size());
  if (H < 1) throw_error("stablemask_tau_table: got ", H, " gammas, expected at least one (one per head)");
  if (T < 1) throw_error("stablemask_tau_table: got T = ", T, ", expected at least 1");
  if (first_row < 0) throw_error("stablemask_tau_table: got first_row = ", first_row, ", expected >= 0");
  if (out == nullptr) throw_error("stablemask_tau_table: got a null output pointer");
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t t = 0; t < T; ++t)
      out[h * T + t] = static_cast<F>(stablemask_tau(gammas[h], block_size, first_row + t, tail));
}
}  // namespace

void stablemask_tau_table(const std::vector<double>& gammas, std::int64_t block_size, std::int64_t T,
                          std::int64_t first_row, StableMaskTail tail, float* out) {
  fill_tau_table(gammas, block_size, T, first_row, tail, out);
}

void stablemask_tau_table(const std::vector<double>& gammas, std::int64_t block_size, std::int64_t T,
                          std::int64_t first_row, StableMaskTail tail, double* out) {
  fill_tau_table(gammas, block_size, T, first_row, tail, out);
}

}  // namespace gradlab
