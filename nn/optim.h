#pragma once
// AdamW (Loshchilov & Hutter 2019, as torch.optim.AdamW), the learning-rate schedule of nanoGPT and
// gradient-norm clipping.
//
// One AdamW step for a parameter p with gradient g, at step t = 1, 2, ... and learning rate lr:
//   p <- p * (1 - lr * weight_decay)          decoupled decay, only for tensors with dim() >= 2
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g^2
//   p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// Matrices and embeddings decay; biases and norm gains (dim() < 2) do not, as in nanoGPT's configure_optimizers.
//
// Schedule (nanoGPT's get_lr, its current form): for iteration `it` (0-based)
//   it < warmup_iters:            lr * (it + 1) / (warmup_iters + 1)          linear warmup, never exactly 0
//   it > lr_decay_iters:          min_lr
//   otherwise:                    min_lr + 0.5 (1 + cos(pi r)) (lr - min_lr),  r = (it - warmup) / (decay - warmup)
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"

namespace gradlab {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.1;
  void validate() const;  // throws naming the field and the rule
};

struct LrSchedule {
  double learning_rate = 1e-3;  // peak
  double min_lr = 1e-4;         // floor of the cosine (nanoGPT: learning_rate / 10)
  std::int64_t warmup_iters = 100;
  std::int64_t lr_decay_iters = 5000;  // cosine reaches min_lr here (usually max_iters)
  bool decay = true;                   // false: constant learning_rate after warmup
  double at(std::int64_t it) const;
  void validate() const;
};

class AdamW {
 public:
  // params: (name, parameter) pairs, e.g. Module::named_parameters(). Names must be unique.
  AdamW(std::vector<std::pair<std::string, Var>> params, AdamWConfig config = {});

  // One update with learning rate lr, from the gradients currently held by the parameters.
  // A parameter without a gradient (none arrived) is treated as having gradient 0 (it still decays).
  // Returns false when the update left a non-finite value in some parameter (checked inside the same loop, so
  // the caller need not scan the weights again; first_nonfinite_value() then names it).
  bool step(double lr);
  void zero_grad();  // drops every parameter's gradient

  std::int64_t steps_taken() const { return t_; }
  const AdamWConfig& config() const { return config_; }
  const std::vector<std::pair<std::string, Var>>& params() const { return params_; }
  bool decays(std::size_t i) const { return decay_[i]; }

  // Optimizer state by parameter name: "m.<name>" and "v.<name>" (same shape and dtype as the parameter).
  std::map<std::string, Tensor> state_tensors() const;
  // Restores moments and the step count; every parameter needs its m and v with matching shapes, and no
  // other tensor may be present. Throws naming the tensor and `source` (a file) otherwise.
  void load_state(const std::map<std::string, Tensor>& tensors, std::int64_t steps, const std::string& source);

 private:
  std::vector<std::pair<std::string, Var>> params_;
  std::vector<Tensor> m_, v_;
  std::vector<bool> decay_;
  AdamWConfig config_;
  std::int64_t t_ = 0;
};

// The global L2 norm of all gradients: float64 sums of squares over fixed 8192-element segments of each
// gradient (cut independently of the thread count), added in parameter and segment order, so the result has
// the same bits on any number of threads. When max_norm > 0 and the
// norm exceeds it, every gradient is scaled by max_norm / (norm + 1e-6) (as torch.nn.utils.clip_grad_norm_).
// Returns the norm before clipping; a non-finite norm is returned unchanged and nothing is scaled.
double clip_grad_norm(const std::vector<std::pair<std::string, Var>>& params, double max_norm);
// The global norm alone: one pass over the gradients. It is non-finite exactly when some gradient is (squares
// of floats cannot overflow a double sum), so it doubles as the finiteness check of the gradients.
double grad_norm(const std::vector<std::pair<std::string, Var>>& params);
// Multiplies every gradient by `factor` (clip_grad_norm's second half, for a caller that has the norm).
// grad_norm, scale_gradients and AdamW::step each hand the whole parameter list to the worker pool once.
void scale_gradients(const std::vector<std::pair<std::string, Var>>& params, double factor);

// Name of the first parameter (in order) whose gradient holds a NaN or infinity, or "" when all are finite.
std::string first_nonfinite_grad(const std::vector<std::pair<std::string, Var>>& params);
// Name of the first parameter whose value holds a NaN or infinity, or "".
std::string first_nonfinite_value(const std::vector<std::pair<std::string, Var>>& params);

// The float32 update loop over n contiguous elements, with its constants prepared once per tensor. `simd` picks
// the SIMD kernel (nn/optim_avx2.cpp when use_avx2() says the CPU has it, nn/optim_neon.cpp on aarch64) or
// the portable loop; all use the same operations in the same order without FMA contraction, so they agree bit
// for bit (a test).
// g may not be null. Returns false when some updated value is NaN or infinite.
struct AdamWConstants {
  float keep;            // 1 - lr * weight_decay (decayed tensors) or 1
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float step_size;       // lr / (1 - beta1^t)
  float inv_sqrt_bias2;  // 1 / sqrt(1 - beta2^t)
  float eps;
};
bool adamw_update_f32(float* p, float* m, float* v, const float* g, std::int64_t n, const AdamWConstants& c, bool simd);

// The reference update, written as plainly as possible (one element, doubles); the fast loop in AdamW::step is
// tested against it.
struct AdamWElement {
  double p, m, v;
};
AdamWElement adamw_reference(AdamWElement s, double g, double lr, std::int64_t t, const AdamWConfig& c, bool decay);

}  // namespace gradlab
