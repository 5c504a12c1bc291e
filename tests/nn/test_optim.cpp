// AdamW, the learning-rate schedule and gradient clipping against hand-computed values.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "tensor/cpu.h"
#include "tensor/rng.h"
#include "tensor/threads.h"

#include "nn/optim.h"
#include "simd_check.h"

using namespace gradlab;

namespace {
Var param(const Shape& shape, std::vector<double> values, const char* name) {
  return Var::leaf(Tensor::from_values(shape, values), true, name);
}
void set_grad(Var& p, const Shape& shape, std::vector<double> values) {
  p.zero_grad();
  p.add_grad(Tensor::from_values(shape, values));
}

struct ThreadCountGuard {
  int saved = max_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

// A parameter list shaped like a small GPT's (embeddings, per layer norms, attention and MLP matrices with
// biases) plus the awkward cases: empty tensors, a scalar-sized one, sizes just past a multiple of the 8192-
// element segments, a float64 tensor and a parameter that gets no gradient. About 440K elements: enough to go
// to the pool.
using Params = std::vector<std::pair<std::string, Var>>;
Params model_like(std::uint64_t seed) {
  std::vector<Shape> shapes = {{65, 128}, {64, 128}};
  for (int l = 0; l < 2; ++l)
    for (const Shape& s : std::vector<Shape>{{128}, {128}, {384, 128}, {384}, {128, 128}, {128}, {128}, {128},
                                             {512, 128}, {512}, {128, 512}, {128}})
      shapes.push_back(s);
  for (const Shape& s : std::vector<Shape>{{0}, {1}, {0, 3}, {8193}, {3, 8192 + 5}, {7}, {128}}) shapes.push_back(s);
  Rng rng(seed);
  Params ps;
  for (std::size_t i = 0; i <= shapes.size(); ++i) {
    const bool f64 = i == shapes.size();  // the last one: float64, 2.5 segments
    const Shape shape = f64 ? Shape{20480} : shapes[i];
    std::vector<double> v(static_cast<std::size_t>(shape_numel(shape)));
    for (double& x : v) x = rng.normal(0.0, 0.5);
    std::string name = "p";
    name += std::to_string(i);  // not "p" + to_string: GCC 12 warns (-Wrestrict) on that form
    ps.push_back({name, Var::leaf(Tensor::from_values(shape, v, f64 ? DType::F64 : DType::F32), true, name)});
  }
  return ps;
}

// Fresh gradients for every parameter but p5 (which keeps none), drawn from (seed, step).
void fill_grads(Params& ps, std::uint64_t seed, int step) {
  Rng rng(seed * 1000 + static_cast<std::uint64_t>(step));
  for (std::size_t i = 0; i < ps.size(); ++i) {
    Var& p = ps[i].second;
    p.zero_grad();
    if (i == 5) continue;
    std::vector<double> g(static_cast<std::size_t>(p.data().numel()));
    for (double& x : g) x = rng.normal(0.0, i % 3 == 0 ? 1e-3 : 1.0);
    p.add_grad(Tensor::from_values(p.shape(), g, p.dtype()));
  }
}

// The raw bytes of every tensor: equal bytes are equal bits (NaN payloads and signed zeros included).
std::vector<unsigned char> bytes_of(const std::vector<Tensor>& ts) {
  std::vector<unsigned char> out;
  for (const Tensor& t : ts) {
    const Tensor c = t.contiguous();
    const auto* b = c.dtype() == DType::F32 ? reinterpret_cast<const unsigned char*>(c.data<float>())
                                            : reinterpret_cast<const unsigned char*>(c.data<double>());
    out.insert(out.end(), b, b + c.numel() * static_cast<std::int64_t>(dtype_size(c.dtype())));
  }
  return out;
}
}  // namespace

TEST_SUITE("train") {

TEST_CASE("adamw: first step by hand and weight decay only on 2-D tensors") {
  // At step 1 with zero moments: m = (1-b1) g, v = (1-b2) g^2, so m_hat = g and v_hat = g^2, and the update is
  // lr * g / (|g| + eps) ~ lr * sign(g). The matrix also shrinks by (1 - lr*wd); the bias does not.
  Var w = param({2, 2}, {1.0, -2.0, 0.5, 3.0}, "w");
  Var b = param({2}, {1.0, -1.0}, "b");
  AdamWConfig cfg;  // betas (0.9, 0.99), wd 0.1, eps 1e-8
  AdamW opt({{"w", w}, {"b", b}}, cfg);
  set_grad(w, {2, 2}, {0.5, -0.25, 2.0, -1.0});
  set_grad(b, {2}, {0.5, -4.0});
  const double lr = 0.1;
  opt.step(lr);
  // hand-computed: w' = w (1 - 0.01) - 0.1 sign(g)
  const double w_expect[] = {1.0 * 0.99 - 0.1, -2.0 * 0.99 + 0.1, 0.5 * 0.99 - 0.1, 3.0 * 0.99 + 0.1};
  for (int i = 0; i < 4; ++i) CHECK(w.data().to_vector()[i] == doctest::Approx(w_expect[i]).epsilon(1e-6));
  // bias: no decay: b' = b - 0.1 sign(g)
  CHECK(b.data().to_vector()[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(b.data().to_vector()[1] == doctest::Approx(-0.9).epsilon(1e-6));
  CHECK(opt.decays(0));
  CHECK_FALSE(opt.decays(1));
  // the moments are exported under m.<name>, v.<name>
  auto st = opt.state_tensors();
  REQUIRE(st.count("m.w") == 1);
  CHECK(st.at("m.w").to_vector()[0] == doctest::Approx(0.05));
  CHECK(st.at("v.b").to_vector()[1] == doctest::Approx(0.01 * 16.0));
}

TEST_CASE("adamw: several steps match the element-wise reference") {
  Var w = param({3, 2}, {0.3, -0.7, 1.1, 0.0, -0.2, 0.9}, "w");
  Var b = param({3}, {0.1, 0.2, -0.3}, "b");
  AdamWConfig cfg;
  cfg.weight_decay = 0.3;
  AdamW opt({{"w", w}, {"b", b}}, cfg);
  std::vector<AdamWElement> ref_w, ref_b;
  for (double x : w.data().to_vector()) ref_w.push_back({x, 0, 0});
  for (double x : b.data().to_vector()) ref_b.push_back({x, 0, 0});
  for (int t = 1; t <= 5; ++t) {
    std::vector<double> gw, gb;
    for (int i = 0; i < 6; ++i) gw.push_back(std::sin(1.0 + i * t) * (i + 1) * 0.1);
    for (int i = 0; i < 3; ++i) gb.push_back(std::cos(0.5 + i * t));
    set_grad(w, {3, 2}, gw);
    set_grad(b, {3}, gb);
    const double lr = 0.01 * t;
    opt.step(lr);
    for (int i = 0; i < 6; ++i) ref_w[i] = adamw_reference(ref_w[i], gw[i], lr, t, cfg, true);
    for (int i = 0; i < 3; ++i) ref_b[i] = adamw_reference(ref_b[i], gb[i], lr, t, cfg, false);
  }
  auto wv = w.data().to_vector();
  auto bv = b.data().to_vector();
  for (int i = 0; i < 6; ++i)
    CHECK_MESSAGE(wv[i] == doctest::Approx(ref_w[i].p).epsilon(1e-5), "w[", i, "] (decayed) after 5 AdamW steps is ",
                  wv[i], ", expected the element-wise reference ", ref_w[i].p);
  for (int i = 0; i < 3; ++i)
    CHECK_MESSAGE(bv[i] == doctest::Approx(ref_b[i].p).epsilon(1e-5), "b[", i, "] (not decayed) after 5 AdamW steps is ",
                  bv[i], ", expected the element-wise reference ", ref_b[i].p);
  CHECK(opt.steps_taken() == 5);
}

TEST_CASE("adamw: state export and import restore the exact update") {
  Var a = param({2, 2}, {1, 2, 3, 4}, "a");
  Var a2 = param({2, 2}, {1, 2, 3, 4}, "a");
  AdamW o1({{"a", a}});
  AdamW o2({{"a", a2}});
  set_grad(a, {2, 2}, {0.1, 0.2, -0.3, 0.4});
  o1.step(0.05);
  // o2 takes o1's state and o1's weights, then both take the same second step
  o2.load_state(o1.state_tensors(), o1.steps_taken(), "test");
  a2.data().copy_(a.data());
  set_grad(a, {2, 2}, {-0.5, 0.1, 0.3, 0.0});
  set_grad(a2, {2, 2}, {-0.5, 0.1, 0.3, 0.0});
  o1.step(0.05);
  o2.step(0.05);
  CHECK(a.data().to_vector() == a2.data().to_vector());  // bit for bit
  // a wrong shape or a missing / extra tensor is refused, naming it
  auto st = o1.state_tensors();
  st["m.a"] = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(o2.load_state(st, 1, "f.safetensors"), doctest::Contains("m.a"), Error);
  st = o1.state_tensors();
  st.erase("v.a");
  CHECK_THROWS_WITH_AS(o2.load_state(st, 1, "f"), doctest::Contains("'v.a' is missing"), Error);
  st = o1.state_tensors();
  st["m.zzz"] = Tensor::zeros({1});
  CHECK_THROWS_WITH_AS(o2.load_state(st, 1, "f"), doctest::Contains("m.zzz"), Error);
}

TEST_CASE("adamw: the SIMD update loop (AVX2 or NEON) equals the portable loop bit for bit") {
  if (!simd_in_use()) return;
  const std::int64_t n = 1000 + 5;  // a tail that is not a multiple of 8 (nor of 4)
  Rng rng(3);
  std::vector<float> p(n), m(n), v(n), g(n);
  for (std::int64_t i = 0; i < n; ++i) {
    p[i] = static_cast<float>(rng.normal());
    m[i] = static_cast<float>(rng.normal() * 0.1);
    v[i] = static_cast<float>(std::abs(rng.normal()) * 0.01);
    g[i] = static_cast<float>(rng.normal() * (i % 7 == 0 ? 1e-6 : 1.0));
  }
  const AdamWConstants c{0.999f, 0.9f, 0.1f, 0.99f, 0.01f, 1.3e-3f, 1.7f, 1e-8f};
  auto p2 = p, m2 = m, v2 = v;
  CHECK(adamw_update_f32(p.data(), m.data(), v.data(), g.data(), n, c, false));
  CHECK(adamw_update_f32(p2.data(), m2.data(), v2.data(), g.data(), n, c, true));
  CHECK_MESSAGE(std::memcmp(p.data(), p2.data(), n * sizeof(float)) == 0, "p[0] after one step: portable loop ", p[0],
                ", SIMD loop ", p2[0], "; the two loops must agree bit for bit on all ", n, " elements");
  CHECK(std::memcmp(m.data(), m2.data(), n * sizeof(float)) == 0);
  CHECK(std::memcmp(v.data(), v2.data(), n * sizeof(float)) == 0);
  // a non-finite result is reported by both, in the vector body and in the tail
  for (std::int64_t where : {std::int64_t(17), n - 1}) {
    auto gp = g;
    gp[where] = NAN;
    auto pa = p, ma = m, va = v, pb = p, mb = m, vb = v;
    CHECK_FALSE(adamw_update_f32(pa.data(), ma.data(), va.data(), gp.data(), n, c, false));
    CHECK_FALSE(adamw_update_f32(pb.data(), mb.data(), vb.data(), gp.data(), n, c, true));
  }
  report_simd_validated("AdamW step");
}

TEST_CASE("schedule: warmup / peak / cosine midpoint / floor") {
  LrSchedule s;
  s.learning_rate = 1e-3;
  s.min_lr = 1e-4;
  s.warmup_iters = 100;
  s.lr_decay_iters = 1100;
  CHECK(s.at(0) == doctest::Approx(1e-3 * 1 / 101.0));
  CHECK(s.at(49) == doctest::Approx(1e-3 * 50 / 101.0));
  CHECK(s.at(99) == doctest::Approx(1e-3 * 100 / 101.0));
  CHECK(s.at(100) == doctest::Approx(1e-3));                    // peak at the end of warmup
  CHECK(s.at(600) == doctest::Approx(1e-4 + 0.5 * 9e-4));        // cos(pi/2) = 0: halfway
  CHECK(s.at(1100) == doctest::Approx(1e-4));                    // the end of the decay
  CHECK(s.at(5000) == doctest::Approx(1e-4));                    // the floor after it
  for (int it = 100; it < 1100; ++it) CHECK(s.at(it + 1) <= s.at(it));  // decreasing
  s.decay = false;
  CHECK(s.at(5000) == doctest::Approx(1e-3));
  LrSchedule bad = s;
  bad.min_lr = 2e-3;
  CHECK_THROWS_AS(bad.validate(), Error);
  CHECK_THROWS_AS(s.at(-1), Error);
}

TEST_CASE("clipping: the global norm / scaling and the pre-clip norm returned") {
  Var a = param({2}, {0, 0}, "a");
  Var b = param({1, 1}, {0}, "b");
  Var c = param({3}, {0, 0, 0}, "c");  // no gradient at all: skipped
  std::vector<std::pair<std::string, Var>> ps = {{"a", a}, {"b", b}, {"c", c}};
  set_grad(a, {2}, {3.0, 0.0});
  set_grad(b, {1, 1}, {4.0});
  c.zero_grad();
  CHECK(grad_norm(ps) == doctest::Approx(5.0));
  CHECK(clip_grad_norm(ps, 10.0) == doctest::Approx(5.0));  // under the limit: unchanged
  CHECK(a.grad().to_vector()[0] == 3.0);
  CHECK(clip_grad_norm(ps, 1.0) == doctest::Approx(5.0));   // returns the norm before clipping
  CHECK(a.grad().to_vector()[0] == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(b.grad().to_vector()[0] == doctest::Approx(0.8).epsilon(1e-5));
  CHECK(grad_norm(ps) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(clip_grad_norm(ps, 0.0) == doctest::Approx(1.0).epsilon(1e-5));  // 0: off
  // non-finite: reported, nothing scaled, the parameter named
  set_grad(b, {1, 1}, {NAN});
  CHECK(std::isnan(clip_grad_norm(ps, 1.0)));
  CHECK(a.grad().to_vector()[0] == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(first_nonfinite_grad(ps) == "b");
  CHECK(first_nonfinite_value(ps).empty());
  c.data().set({1}, INFINITY);
  CHECK(first_nonfinite_value(ps) == "c");
}

TEST_CASE("adamw: one step over a model-like parameter list has the same bits on 1, 2 and 4 threads") {
  ThreadCountGuard guard;
  AdamWConfig cfg;
  std::vector<unsigned char> first;
  for (int threads : {1, 2, 4}) {
    CAPTURE(threads);
    set_num_threads(threads);
    REQUIRE(max_threads() == threads);
    Params ps = model_like(7);
    AdamW opt(ps, cfg);
    // today's update, written out: the per-element kernel over each whole float32 tensor on this thread
    std::vector<std::vector<float>> rp, rm, rv;
    for (auto& [name, p] : ps) {
      const std::size_t n = static_cast<std::size_t>(p.data().numel());
      rp.emplace_back(n);
      rm.emplace_back(n, 0.0f);
      rv.emplace_back(n, 0.0f);
      if (p.dtype() == DType::F32 && n > 0) std::memcpy(rp.back().data(), p.data().data<float>(), n * sizeof(float));
    }
    for (int t = 1; t <= 3; ++t) {
      fill_grads(ps, 7, t);
      const double lr = 0.01 * t;
      REQUIRE(opt.step(lr));
      const double bias1 = 1.0 - std::pow(cfg.beta1, t), bias2 = 1.0 - std::pow(cfg.beta2, t);
      for (std::size_t i = 0; i < ps.size(); ++i) {
        if (ps[i].second.dtype() != DType::F32) continue;
        const AdamWConstants c{static_cast<float>(opt.decays(i) ? 1.0 - lr * cfg.weight_decay : 1.0),
                               static_cast<float>(cfg.beta1),        static_cast<float>(1.0 - cfg.beta1),
                               static_cast<float>(cfg.beta2),        static_cast<float>(1.0 - cfg.beta2),
                               static_cast<float>(lr / bias1),       static_cast<float>(1.0 / std::sqrt(bias2)),
                               static_cast<float>(cfg.eps)};
        const std::int64_t n = static_cast<std::int64_t>(rp[i].size());
        std::vector<float> g(rp[i].size(), 0.0f);  // p5 has no gradient: 0
        if (ps[i].second.grad().defined() && n > 0)
          std::memcpy(g.data(), ps[i].second.grad().data<float>(), g.size() * sizeof(float));
        adamw_update_f32(rp[i].data(), rm[i].data(), rv[i].data(), g.data(), n, c, use_simd());
      }
    }
    for (std::size_t i = 0; i < ps.size(); ++i) {
      if (ps[i].second.dtype() != DType::F32 || rp[i].empty()) continue;
      CHECK_MESSAGE(std::memcmp(rp[i].data(), ps[i].second.data().data<float>(), rp[i].size() * sizeof(float)) == 0,
                    ps[i].first, " ", shape_str(ps[i].second.shape()), " after 3 steps on ", threads,
                    " threads differs from the whole-tensor update on one thread");
      CHECK(std::memcmp(rm[i].data(), opt.state_tensors().at("m." + ps[i].first).data<float>(),
                        rm[i].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(rv[i].data(), opt.state_tensors().at("v." + ps[i].first).data<float>(),
                        rv[i].size() * sizeof(float)) == 0);
    }
    std::vector<Tensor> all;
    for (auto& [name, p] : ps) all.push_back(p.data());
    for (auto& [name, t] : opt.state_tensors()) all.push_back(t);
    const auto bytes = bytes_of(all);
    if (first.empty()) first = bytes;
    CHECK_MESSAGE(bytes == first, "parameters and moments after 3 steps on ", threads,
                  " threads differ from those on 1 thread");
  }
}

TEST_CASE("clipping: grad_norm and clip_grad_norm have the same bits on 1, 2 and 4 threads") {
  ThreadCountGuard guard;
  double norm1 = 0.0;
  std::vector<unsigned char> clipped1;
  for (int threads : {1, 2, 4}) {
    CAPTURE(threads);
    set_num_threads(threads);
    Params ps = model_like(11);
    fill_grads(ps, 11, 1);
    const double norm = grad_norm(ps);
    long double ref = 0.0L;  // the same sum, in a wider type and another order
    for (auto& [name, p] : ps) {
      if (!p.grad().defined()) continue;
      for (double x : p.grad().to_vector()) ref += static_cast<long double>(x) * static_cast<long double>(x);
    }
    CHECK(norm == doctest::Approx(static_cast<double>(std::sqrt(ref))).epsilon(1e-12));
    if (threads == 1) norm1 = norm;
    CHECK_MESSAGE(std::memcmp(&norm, &norm1, sizeof norm) == 0, "grad_norm on ", threads, " threads is ", norm,
                  ", on 1 thread ", norm1);
    // clipping to a tenth: the returned norm is the pre-clip one, every element is scaled by the same float
    std::vector<Tensor> before;
    for (auto& [name, p] : ps) before.push_back(p.grad().defined() ? p.grad().clone() : Tensor());
    const double max_norm = norm / 10.0;
    const double returned = clip_grad_norm(ps, max_norm);
    CHECK(std::memcmp(&returned, &norm, sizeof norm) == 0);
    const float f = static_cast<float>(max_norm / (norm + 1e-6));
    std::vector<Tensor> after;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const Tensor& g = ps[i].second.grad();
      if (!g.defined()) continue;
      after.push_back(g);
      if (g.dtype() != DType::F32) continue;
      const float* a = g.data<float>();
      const float* b = before[i].data<float>();
      std::int64_t wrong = 0;
      for (std::int64_t k = 0; k < g.numel(); ++k) wrong += a[k] != b[k] * f;
      CHECK_MESSAGE(wrong == 0, ps[i].first, ": ", wrong, " of ", g.numel(), " elements are not g * ", f);
    }
    const auto bytes = bytes_of(after);
    if (threads == 1) clipped1 = bytes;
    CHECK_MESSAGE(bytes == clipped1, "clipped gradients on ", threads, " threads differ from those on 1 thread");
    CHECK(grad_norm(ps) == doctest::Approx(max_norm).epsilon(1e-5));
  }
}

TEST_CASE("clipping and adamw: a NaN deep in one large gradient is seen on every thread count") {
  ThreadCountGuard guard;
  for (int threads : {1, 2, 4}) {
    CAPTURE(threads);
    set_num_threads(threads);
    Params ps = model_like(5);
    fill_grads(ps, 5, 1);
    REQUIRE(ps[30].second.shape() == Shape{3, 8192 + 5});
    ps[30].second.node()->grad.set({2, 8190}, NAN);  // in its fourth segment
    CHECK(std::isnan(grad_norm(ps)));
    CHECK(std::isnan(clip_grad_norm(ps, 1.0)));
    CHECK(first_nonfinite_grad(ps) == "p30");
    AdamW opt(ps);
    CHECK_FALSE(opt.step(0.01));
    CHECK(first_nonfinite_value(ps) == "p30");
  }
}

TEST_CASE("adamw: a gradient of the wrong shape is refused before anything changes") {
  Var w = param({2, 2}, {1, 2, 3, 4}, "w");
  AdamW opt({{"w", w}});
  w.node()->grad = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(opt.step(0.1), doctest::Contains("gradient of 'w' has shape (4,), expected the parameter's (2, 2)"),
                       Error);
  CHECK(opt.steps_taken() == 0);
  CHECK(w.data().to_vector() == std::vector<double>{1, 2, 3, 4});
}

}  // TEST_SUITE
