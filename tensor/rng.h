#pragma once
// Rng: the one source of randomness in gradlab, so that a seed reproduces a run bit for bit on every
// platform and compiler. No std::uniform_*_distribution here: their output differs between standard
// libraries.
//
// Generator: PCG32 (O'Neill 2014, "XSH RR" output, 64-bit LCG state, multiplier 6364136223846793005).
// uniform():  top 24 bits of one draw / 2^24, in [0, 1).
// normal():   Box-Muller on two uniforms, both values of the pair used in turn.
#include <cstdint>
#include <vector>

namespace gradlab {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 54);
  std::uint32_t next_u32();
  double uniform();                                   // [0, 1)
  double uniform(double lo, double hi);               // [lo, hi)
  double normal(double mean = 0.0, double std = 1.0);
  std::uint32_t below(std::uint32_t n);               // uniform integer in [0, n), n > 0, unbiased

  // The whole state, so training can save and resume it exactly.
  struct State {
    std::uint64_t state, inc;
    bool has_spare;
    double spare;
  };
  State get_state() const { return {state_, inc_, has_spare_, spare_}; }
  void set_state(const State& s);

 private:
  std::uint64_t state_ = 0, inc_ = 0;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace gradlab
