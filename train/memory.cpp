#include "train/memory.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace gradlab {

namespace {
// Values per token per block held at the peak of a step (forward activations kept for backward plus the
// gradients alive while the block's backward runs): ln_1 out, qkv (3C), attention out, c_proj out, the
// residual, ln_2 out, c_fc out (4C), GELU out (4C), mlp c_proj out, the residual = 18 C kept, plus about 6 C of
// gradients and allocator rounding.
constexpr double kValuesPerTokenPerLayer = 24.0;
constexpr double kLogitCopies = 3.0;             // logits, the softmax of the fused cross-entropy, d(logits)
constexpr double kRuntimeBytes = 24.0 * (1 << 20);  // measured RSS of `gradlab train` on a 1-layer, 8-wide model
}  // namespace

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 5) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

MemoryEstimate estimate_training_memory(const GPTConfig& c, std::int64_t batch_size, std::int64_t data_bytes) {
  MemoryEstimate e;
  for (const auto& [name, shape] : GPT::parameter_shapes(c)) {
    double n = 1;
    for (auto d : shape) n *= static_cast<double>(d);
    e.parameters += n;
  }
  const double N = static_cast<double>(batch_size) * static_cast<double>(c.block_size);
  e.weights = 4.0 * e.parameters;
  e.gradients = 4.0 * e.parameters;
  e.moments = 8.0 * e.parameters;
  e.activations = 4.0 * N * static_cast<double>(c.n_layer) *
                  (kValuesPerTokenPerLayer * static_cast<double>(c.n_embd) + static_cast<double>(c.n_head));
  e.logits = 4.0 * N * kLogitCopies * static_cast<double>(c.vocab_size);
  e.data = static_cast<double>(data_bytes);
  e.runtime = kRuntimeBytes;
  return e;
}

std::string MemoryEstimate::describe() const {
  std::ostringstream s;
  char p[32];
  std::snprintf(p, sizeof p, "%.3g", parameters);
  s << "estimated " << format_bytes(total()) << ": weights " << format_bytes(weights) << " (P = " << p
    << " parameters x 4 B) + gradients " << format_bytes(gradients) << " + AdamW moments " << format_bytes(moments)
    << " + activations " << format_bytes(activations) << " (batch x block x n_layer x (" << kValuesPerTokenPerLayer
    << " n_embd + n_head) x 4 B) + logits " << format_bytes(logits) << " + data " << format_bytes(data)
    << " + runtime " << format_bytes(runtime);
  return s.str();
}

std::optional<double> memory_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return kb * 1024.0;
  }
  return std::nullopt;
}

}  // namespace gradlab
