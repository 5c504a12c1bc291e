#include "tensor/rng.h"

#include <cmath>

#include "tensor/error.h"

namespace gradlab {

Rng::Rng(std::uint64_t seed, std::uint64_t stream) {
  // PCG32's documented seeding: state 0, set the increment (odd), step, add the seed, step.
  inc_ = (stream << 1u) | 1u;
  state_ = 0;
  next_u32();
  state_ += seed;
  next_u32();
}

std::uint32_t Rng::next_u32() {
  std::uint64_t old = state_;
  state_ = old * 6364136223846793005ULL + inc_;
  auto xorshifted = static_cast<std::uint32_t>(((old >> 18u) ^ old) >> 27u);
  auto rot = static_cast<std::uint32_t>(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

double Rng::uniform() { return static_cast<double>(next_u32() >> 8) * (1.0 / 16777216.0); }

double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double Rng::normal(double mean, double std) {
  if (has_spare_) {
    has_spare_ = false;
    return mean + std * spare_;
  }
  // 1 - u keeps the log argument in (0, 1].
  double u1 = 1.0 - uniform();
  double u2 = uniform();
  double radius = std::sqrt(-2.0 * std::log(u1));
  double angle = 2.0 * 3.14159265358979323846 * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return mean + std * radius * std::cos(angle);
}

std::uint32_t Rng::below(std::uint32_t n) {
  if (n == 0) throw_error("Rng::below: got n = 0, expected n > 0");
  // Rejection sampling removes the modulo bias.
  std::uint32_t threshold = (0u - n) % n;
  for (;;) {
    std::uint32_t r = next_u32();
    if (r >= threshold) return r % n;
  }
}

void Rng::set_state(const State& s) {
  if ((s.inc & 1u) == 0) throw_error("Rng::set_state: got an even increment ", s.inc, ", expected an odd one");
  state_ = s.state;
  inc_ = s.inc;
  has_spare_ = s.has_spare;
  spare_ = s.spare;
}

}  // namespace gradlab
