#pragma once
// The memory a training run will need, estimated before anything is allocated, so that a configuration far
// beyond the machine is refused at once (exit code 2) instead of growing until the kernel kills it.
//
//   total = weights + gradients + AdamW moments + activations + logits + data + runtime
//   weights 4P, gradients 4P, moments 8P bytes             P = parameters (float32)
//   activations 4 N L (k_layer C + H) bytes                N = batch_size * block_size tokens per micro-batch
//   logits      4 N k_logit V bytes                         (logits, softmax and their gradient)
//   data        the text and its tokens
//   runtime     the program, its libraries and thread stacks (measured: kRuntimeBytes)
// k_layer counts the float32 values per token that one block keeps for the backward pass and the transient
// gradients at the peak; it was counted from the block's ops and checked against measured peak RSS
// (docs/reliability.md; the test compares the estimate with a real run's peak RSS, within 25%).
#include <cstdint>
#include <optional>
#include <string>

#include "nn/gpt.h"

namespace gradlab {

struct MemoryEstimate {
  double parameters = 0;  // P
  double weights = 0, gradients = 0, moments = 0, activations = 0, logits = 0, data = 0, runtime = 0;  // bytes
  double total() const { return weights + gradients + moments + activations + logits + data + runtime; }
  // "estimated 3.1 TiB: weights 824 GiB (P = 221e9 x 4 B) + gradients ... + runtime 12 MiB"
  std::string describe() const;
};

MemoryEstimate estimate_training_memory(const GPTConfig& config, std::int64_t batch_size, std::int64_t data_bytes);

// MemAvailable of /proc/meminfo in bytes (nothing when it cannot be read).
std::optional<double> memory_available();

// "1.5 GiB", "320 MiB", ...
std::string format_bytes(double bytes);

}  // namespace gradlab
