#include "nn/optim.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numbers>
#include <set>

#include "tensor/cpu.h"
#include "tensor/error.h"
#include "tensor/threads.h"

namespace gradlab {

void AdamWConfig::validate() const {
  auto in01 = [](const char* name, double b) {
    if (!(b >= 0.0 && b < 1.0)) throw_error("AdamW: ", name, " = ", b, ", expected a value in [0, 1)");
  };
  in01("beta1", beta1);
  in01("beta2", beta2);
  if (!(eps > 0.0) || !std::isfinite(eps)) throw_error("AdamW: eps = ", eps, ", expected a finite value > 0");
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay))
    throw_error("AdamW: weight_decay = ", weight_decay, ", expected a finite value >= 0");
}

void LrSchedule::validate() const {
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate))
    throw_error("learning rate schedule: learning_rate = ", learning_rate, ", expected a finite value > 0");
  if (!(min_lr >= 0.0) || !(min_lr <= learning_rate))
    throw_error("learning rate schedule: min_lr = ", min_lr, ", expected a value in [0, learning_rate = ",
                learning_rate, "]");
  if (warmup_iters < 0) throw_error("learning rate schedule: warmup_iters = ", warmup_iters, ", expected >= 0");
  if (decay && lr_decay_iters < warmup_iters)
    throw_error("learning rate schedule: lr_decay_iters = ", lr_decay_iters, " is below warmup_iters = ",
                warmup_iters, ", expected lr_decay_iters >= warmup_iters");
}

double LrSchedule::at(std::int64_t it) const {
  if (it < 0) throw_error("learning rate schedule: iteration ", it, ", expected >= 0");
  // 1) linear warmup; (it + 1) so that the very first step already moves
  if (it < warmup_iters)
    return learning_rate * static_cast<double>(it + 1) / static_cast<double>(warmup_iters + 1);
  if (!decay) return learning_rate;
  // 2) past the decay horizon: the floor
  if (it > lr_decay_iters) return min_lr;
  // 3) cosine from learning_rate down to min_lr
  if (lr_decay_iters == warmup_iters) return learning_rate;
  const double ratio = static_cast<double>(it - warmup_iters) / static_cast<double>(lr_decay_iters - warmup_iters);
  const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));
  return min_lr + coeff * (learning_rate - min_lr);
}

AdamW::AdamW(std::vector<std::pair<std::string, Var>> params, AdamWConfig config)
    : params_(std::move(params)), config_(config) {
  config_.validate();
  std::set<std::string> seen;
  for (const auto& [name, p] : params_) {
    if (!p.defined()) throw_error("AdamW: parameter '", name, "' is undefined");
    if (!seen.insert(name).second) throw_error("AdamW: parameter name '", name, "' appears twice");
    if (!p.data().is_contiguous()) throw_error("AdamW: parameter '", name, "' is not contiguous");
    m_.push_back(Tensor::zeros(p.shape(), p.dtype()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype()));
    decay_.push_back(p.dim() >= 2);
  }
}

namespace {

// The update of one contiguous tensor. p, m, v have n elements; g may be null (no gradient: treated as 0).
// Constants are prepared in double and rounded once to the working type, so the loop is plain arithmetic.
// The portable update of one contiguous tensor (float or double): the loop the AVX2 kernel must match.
template <typename F>
bool adamw_update(F* p, F* m, F* v, const F* g, std::int64_t n, F keep, F b1, F one_b1, F b2, F one_b2, F step_size,
                  F inv_sqrt_bias2, F e) {
  // exercise 06.1 begin: AdamW's update of one tensor (moments, bias correction, decoupled decay)
  int bad = 0;  // becomes 1 when a result is NaN or infinite (x - x is NaN exactly then)
  for (std::int64_t i = 0; i < n; ++i) {
    const F gi = g[i];
    const F mi = b1 * m[i] + one_b1 * gi;
    const F vi = b2 * v[i] + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const F denom = std::sqrt(vi) * inv_sqrt_bias2 + e;
    const F pi = p[i] * keep - step_size * mi / denom;
    p[i] = pi;
    bad |= static_cast<int>(!(pi - pi == F(0)));
  }
  return bad == 0;
  // exercise 06.1 end
}

#ifdef GRADLAB_HAVE_AVX2_KERNELS
}  // namespace
bool adamw_update_f32_avx2(float* p, float* m, float* v, const float* g, std::int64_t n, const AdamWConstants& c);
namespace {
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
}  // namespace
bool adamw_update_f32_neon(float* p, float* m, float* v, const float* g, std::int64_t n, const AdamWConstants& c);
namespace {
#endif

// Work over a list of tensors, handed to the pool once (a per-tensor hand-off costs more than a small tensor's
// work). Each tensor is cut into segments at multiples of kSegment elements, so the cuts, and any per-segment
// partial result, are the same for every thread count; consecutive segments are grouped into work items of
// about kSegment elements, so small tensors (biases, norm gains) share one item.
constexpr std::int64_t kSegment = 1 << 13;

struct Segment {
  std::size_t tensor;
  std::int64_t begin, end;
};

std::vector<Segment> segments_of(const std::vector<std::int64_t>& sizes) {
  std::vector<Segment> out;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    for (std::int64_t b = 0; b < sizes[i]; b += kSegment) out.push_back({i, b, std::min(sizes[i], b + kSegment)});
  return out;
}

// Runs body(segment, its index) for every segment, on the pool when there is enough work for it.
template <typename Body>
void for_segments(const std::vector<Segment>& segs, Body body) {
  std::vector<std::size_t> starts;  // item k is segments [starts[k], starts[k + 1])
  std::int64_t total = 0, open = 0;
  for (std::size_t s = 0; s < segs.size(); ++s) {
    if (open == 0) starts.push_back(s);
    const std::int64_t n = segs[s].end - segs[s].begin;
    total += n;
    open += n;
    if (open >= kSegment) open = 0;
  }
  const auto items = static_cast<std::int64_t>(starts.size());
  starts.push_back(segs.size());
  const int wanted = total >= kParallelMinElements ? static_cast<int>(std::min<std::int64_t>(max_threads(), items)) : 1;
  parallel_for_dynamic(items, wanted, [&](std::int64_t k, int) {
    for (std::size_t s = starts[k]; s < starts[k + 1]; ++s) body(segs[s], s);
  });
}

// Returns the gradient of p as a contiguous tensor (undefined when none arrived).
Tensor contiguous_grad(const Var& p) {
  const Tensor& g = p.grad();
  if (!g.defined()) return {};
  return g.contiguous();
}

}  // namespace

bool AdamW::step(double lr) {
  if (!(lr >= 0.0) || !std::isfinite(lr)) throw_error("AdamW::step: learning rate ", lr, ", expected finite >= 0");
  // Everything that can throw or allocate happens here, on the caller, before the one hand-off to the pool.
  // Raw pointers, so that a segment's work is the kernel call alone.
  struct Arrays {
    void *p, *m, *v;
    const void* g;
    bool f32;
  };
  std::vector<Tensor> grads(params_.size());
  std::vector<Arrays> arrays(params_.size());
  std::vector<std::int64_t> sizes(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& data = params_[i].second.data();
    Tensor g = contiguous_grad(params_[i].second);
    if (!g.defined()) g = Tensor::zeros(data.shape(), data.dtype());  // rare: a parameter the loss did not reach
    if (g.dtype() != data.dtype())
      throw_error("AdamW::step: gradient of '", params_[i].first, "' is ", dtype_name(g.dtype()),
                  ", parameter is ", dtype_name(data.dtype()));
    if (g.shape() != data.shape())
      throw_error("AdamW::step: gradient of '", params_[i].first, "' has shape ", shape_str(g.shape()),
                  ", expected the parameter's ", shape_str(data.shape()));
    grads[i] = std::move(g);
    sizes[i] = data.numel();
    if (data.dtype() == DType::F32)
      arrays[i] = {params_[i].second.data().data<float>(), m_[i].data<float>(), v_[i].data<float>(),
                   grads[i].data<float>(), true};
    else
      arrays[i] = {params_[i].second.data().data<double>(), m_[i].data<double>(), v_[i].data<double>(),
                   grads[i].data<double>(), false};
  }
  ++t_;
  const double bias1 = 1.0 - std::pow(config_.beta1, static_cast<double>(t_));
  const double bias2 = 1.0 - std::pow(config_.beta2, static_cast<double>(t_));
  const double step_size = lr / bias1, inv_sqrt_bias2 = 1.0 / std::sqrt(bias2);
  const double decayed = 1.0 - lr * config_.weight_decay;
  auto f32_constants = [&](double keep) {
    return AdamWConstants{static_cast<float>(keep),                 static_cast<float>(config_.beta1),
                          static_cast<float>(1.0 - config_.beta1),  static_cast<float>(config_.beta2),
                          static_cast<float>(1.0 - config_.beta2),  static_cast<float>(step_size),
                          static_cast<float>(inv_sqrt_bias2),       static_cast<float>(config_.eps)};
  };
  const AdamWConstants c_decay = f32_constants(decayed), c_keep = f32_constants(1.0);
  const bool simd = use_simd();
  std::atomic<int> bad{0};
  // Elementwise: any split of a tensor gives the same bits as one pass over it.
  for_segments(segments_of(sizes), [&](const Segment& s, std::size_t) {
    const std::size_t i = s.tensor;
    const Arrays& a = arrays[i];
    const std::int64_t b = s.begin, n = s.end - s.begin;
    bool ok;
    if (a.f32) {
      ok = adamw_update_f32(static_cast<float*>(a.p) + b, static_cast<float*>(a.m) + b, static_cast<float*>(a.v) + b,
                            static_cast<const float*>(a.g) + b, n, decay_[i] ? c_decay : c_keep, simd);
    } else {
      ok = adamw_update<double>(static_cast<double*>(a.p) + b, static_cast<double*>(a.m) + b,
                                static_cast<double*>(a.v) + b, static_cast<const double*>(a.g) + b, n,
                                decay_[i] ? decayed : 1.0, config_.beta1, 1.0 - config_.beta1, config_.beta2,
                                1.0 - config_.beta2, step_size, inv_sqrt_bias2, config_.eps);
    }
    if (!ok) bad.store(1, std::memory_order_relaxed);
  });
  return bad.load() == 0;
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

bool adamw_update_f32(float* p, float* m, float* v, const float* g, std::int64_t n, const AdamWConstants& c,
                      bool simd) {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
  if (simd && use_avx2()) return adamw_update_f32_avx2(p, m, v, g, n, c);
#endif
#ifdef GRADLAB_HAVE_NEON_KERNELS
  if (simd && use_neon()) return adamw_update_f32_neon(p, m, v, g, n, c);
#endif
  return adamw_update<float>(p, m, v, g, n, c.keep, c.beta1, c.one_minus_beta1, c.beta2, c.one_minus_beta2,
                             c.step_size, c.inv_sqrt_bias2, c.eps);
}

std::map<std::string, Tensor> AdamW::state_tensors() const {
  std::map<std::string, Tensor> out;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    out["m." + params_[i].first] = m_[i];
    out["v." + params_[i].first] = v_[i];
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& tensors, std::int64_t steps, const std::string& source) {
  if (steps < 0) throw_error(source, ": optimizer step count ", steps, ", expected >= 0");
  // validate everything first, then copy: a failed load leaves the optimizer as it was
  std::size_t used = 0;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    for (const char* kind : {"m.", "v."}) {
      const std::string key = kind + params_[i].first;
      auto it = tensors.find(key);
      if (it == tensors.end()) throw_error(source, ": optimizer tensor '", key, "' is missing");
      if (it->second.shape() != params_[i].second.shape())
        throw_error(source, ": optimizer tensor '", key, "' has shape ", shape_str(it->second.shape()),
                    ", expected ", shape_str(params_[i].second.shape()), " (the parameter's)");
      ++used;
    }
  }
  if (used != tensors.size()) {
    for (const auto& [key, t] : tensors) {
      bool known = false;
      for (const auto& [name, p] : params_) known = known || key == "m." + name || key == "v." + name;
      if (!known) throw_error(source, ": optimizer tensor '", key, "' matches no parameter of the model");
    }
  }
  for (std::size_t i = 0; i < params_.size(); ++i) {
    m_[i].copy_(tensors.at("m." + params_[i].first));
    v_[i].copy_(tensors.at("v." + params_[i].first));
  }
  t_ = steps;
}

namespace {

template <typename F>
double sum_squares(const F* x, std::int64_t n) {
  // 8 independent partial sums in a fixed order: the dependency chain of one running sum would make this
  // latency-bound, and a fixed lane assignment keeps the result identical on every run.
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += static_cast<double>(x[i + k]) * static_cast<double>(x[i + k]);
  for (; i < n; ++i) acc[0] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

template <typename F>
bool all_finite(const F* x, std::int64_t n) {
  int bad = 0;  // no early exit, so the loop vectorizes; x - x is NaN exactly for NaN and infinities
  for (std::int64_t i = 0; i < n; ++i) bad |= static_cast<int>(!(x[i] - x[i] == F(0)));
  return bad == 0;
}

bool tensor_finite(const Tensor& t) {
  Tensor c = t.contiguous();
  return c.dtype() == DType::F32 ? all_finite(c.data<float>(), c.numel()) : all_finite(c.data<double>(), c.numel());
}

}  // namespace

double grad_norm(const std::vector<std::pair<std::string, Var>>& params) {
  std::vector<Tensor> grads;  // keeps copies of non-contiguous gradients alive
  std::vector<const void*> data;
  std::vector<std::int64_t> sizes;
  for (const auto& [name, p] : params) {
    Tensor g = contiguous_grad(p);
    const bool has = g.defined() && g.numel() > 0;  // no gradient: contributes 0
    data.push_back(!has ? nullptr : g.dtype() == DType::F32 ? static_cast<const void*>(g.data<float>()) : g.data<double>());
    sizes.push_back(has ? g.numel() : 0);
    grads.push_back(std::move(g));
  }
  // One partial sum per segment, added in segment order: the segments do not depend on the thread count, so
  // neither do the bits of the norm.
  const std::vector<Segment> segs = segments_of(sizes);
  std::vector<double> partial(segs.size());
  for_segments(segs, [&](const Segment& s, std::size_t k) {
    const std::int64_t n = s.end - s.begin;
    partial[k] = grads[s.tensor].dtype() == DType::F32 ? sum_squares(static_cast<const float*>(data[s.tensor]) + s.begin, n)
                                                      : sum_squares(static_cast<const double*>(data[s.tensor]) + s.begin, n);
  });
  double total = 0.0;
  for (double x : partial) total += x;
  return std::sqrt(total);
}

void scale_gradients(const std::vector<std::pair<std::string, Var>>& params, double factor) {
  std::vector<void*> data;
  std::vector<bool> f32;
  std::vector<std::int64_t> sizes;
  for (const auto& [name, p] : params) {
    Tensor g = p.grad();  // a handle onto the gradient's storage
    if (g.defined() && !g.is_contiguous()) {
      g = g.contiguous();
      p.node()->grad = g;
    }
    const bool has = g.defined() && g.numel() > 0;
    f32.push_back(has && g.dtype() == DType::F32);
    data.push_back(!has ? nullptr : f32.back() ? static_cast<void*>(g.data<float>()) : g.data<double>());
    sizes.push_back(has ? g.numel() : 0);
  }
  const float f = static_cast<float>(factor);
  for_segments(segments_of(sizes), [&](const Segment& s, std::size_t) {
    if (f32[s.tensor]) {
      float* x = static_cast<float*>(data[s.tensor]);
      for (std::int64_t i = s.begin; i < s.end; ++i) x[i] *= f;
    } else {
      double* x = static_cast<double*>(data[s.tensor]);
      for (std::int64_t i = s.begin; i < s.end; ++i) x[i] *= factor;
    }
  });
}

double clip_grad_norm(const std::vector<std::pair<std::string, Var>>& params, double max_norm) {
  const double norm = grad_norm(params);
  if (max_norm > 0.0 && std::isfinite(norm) && norm > max_norm) scale_gradients(params, max_norm / (norm + 1e-6));
  return norm;
}

std::string first_nonfinite_grad(const std::vector<std::pair<std::string, Var>>& params) {
  for (const auto& [name, p] : params)
    if (p.grad().defined() && !tensor_finite(p.grad())) return name;
  return "";
}

std::string first_nonfinite_value(const std::vector<std::pair<std::string, Var>>& params) {
  for (const auto& [name, p] : params)
    if (!tensor_finite(p.data())) return name;
  return "";
}

AdamWElement adamw_reference(AdamWElement s, double g, double lr, std::int64_t t, const AdamWConfig& c, bool decay) {
  if (decay) s.p = s.p - lr * c.weight_decay * s.p;
  s.m = c.beta1 * s.m + (1 - c.beta1) * g;
  s.v = c.beta2 * s.v + (1 - c.beta2) * g * g;
  const double m_hat = s.m / (1 - std::pow(c.beta1, static_cast<double>(t)));
  const double v_hat = s.v / (1 - std::pow(c.beta2, static_cast<double>(t)));
  s.p = s.p - lr * m_hat / (std::sqrt(v_hat) + c.eps);
  return s;
}

}  // namespace gradlab
