#pragma once
// StableMask, the "what" (docs/stablemask.md): the per-head decay rates and the sink logit tau_i = log Z(i).
// Pure math on doubles, no autograd. The attention kernels (tensor/attention_kernel.h) consume the
// (H, T) table of sink logits that stablemask_tau_table fills.
//
// For row i (absolute position, 0-indexed) and training length L, the pseudo columns j = i+1 .. L-1 hold
// the values -j*gamma; their total softmax mass is the constant
//     Z(i) = sum_{j=i+1}^{L-1} e^{-j gamma}      (finite tail; 0 for i >= L-1)
//     Z(i) = sum_{j=i+1}^{inf} e^{-j gamma}      (infinite tail)
// and StableMask is causal attention plus one zero-value key per row with logit tau_i = log Z(i).
#include <cstdint>
#include <vector>

namespace gradlab {

enum class StableMaskTail { Finite, Infinite };

// ALiBi head slopes (Press et al. 2022), also the default StableMask decay rates gamma_h.
// H a power of two: 2^(-8(h+1)/H) for h = 0..H-1. Otherwise ALiBi's interleaving rule: the slopes of the
// closest smaller power of two P, followed by the first H-P of every other slope (indices 0, 2, 4, ...)
// of the 2P-head set. Requires n_head >= 1.
std::vector<double> alibi_slopes(std::int64_t n_head);

// tau_i = log Z(i) for one row, in the stable log form of spec section 3.
// Finite tail:   -(i+1)g + log(-expm1(-(L-1-i)g)) - log(-expm1(-g))  for i < L-1,  -infinity for i >= L-1.
// Infinite tail: -(i+1)g - log(-expm1(-g))  (block_size is validated but otherwise unused).
// Requires gamma > 0 and finite, block_size >= 1, row >= 0.
double stablemask_tau(double gamma, std::int64_t block_size, std::int64_t row, StableMaskTail tail);

// out is (H, T): out[h*T + t] = stablemask_tau(gammas[h], block_size, first_row + t, tail), as float.
// first_row is the absolute position of the first query row (non-zero under a sliding window / KV cache).
// Requires H = gammas.size() >= 1, T >= 1, first_row >= 0, out non-null.
void stablemask_tau_table(const std::vector<double>& gammas, std::int64_t block_size, std::int64_t T,
                          std::int64_t first_row, StableMaskTail tail, float* out);
// The same table in double, for float64 models (reference tests): rounding tau to float first would leave a
// 1e-8 relative error that a float64 comparison with PyTorch sees.
void stablemask_tau_table(const std::vector<double>& gammas, std::int64_t block_size, std::int64_t T,
                          std::int64_t first_row, StableMaskTail tail, double* out);

}  // namespace gradlab
