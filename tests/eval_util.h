#pragma once
// Shared helpers of the eval tests: tiny GPTs with weights far enough from their initialisation that
// attention is not uniform (so the comparisons below can fail), and closeness checks.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "nn/gpt.h"
#include "tensor/ops.h"
#include "tensor/rng.h"

namespace evaltest {

using namespace gradlab;

inline GPTConfig tiny_config(PosKind pos, const std::string& mask, std::int64_t n_layer = 2) {
  GPTConfig c;
  c.vocab_size = 11;
  c.block_size = 8;
  c.n_layer = n_layer;
  c.n_head = 2;
  c.n_embd = 16;
  c.pos = pos;
  c.mask = mask;
  return c;
}

// Adds N(0, spread^2) noise to every parameter, so the model has sharp, position-dependent attention.
inline void perturb(GPT& model, double spread, std::uint64_t seed) {
  Rng rng(seed);
  for (auto& [name, p] : model.named_parameters()) {
    std::vector<double> noise(static_cast<std::size_t>(p.data().numel()));
    for (double& x : noise) x = rng.normal(0.0, spread);
    p.data() = ops::add(p.data(), Tensor::from_values(p.shape(), noise, p.dtype()));
  }
}

inline std::vector<std::int32_t> random_tokens(std::int64_t n, std::int64_t vocab, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (auto& x : t) x = static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(vocab)));
  return t;
}

// max over elements of |a - b| / max(1, |b|)
inline double worst_rel(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return w;
}

inline std::vector<double> row(const std::vector<double>& m, std::int64_t r, std::int64_t width) {
  return std::vector<double>(m.begin() + r * width, m.begin() + (r + 1) * width);
}

// A fresh directory under the system temp dir, removed by the destructor.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("gradlab_eval_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace evaltest
