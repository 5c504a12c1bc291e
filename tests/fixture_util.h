#pragma once
// Shared by the tests that load the PyTorch fixtures of tests/data/fixtures: the tiny model they were made
// with, their weights, and their token ids (stored as float64, exact for ids).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nn/gpt.h"
#include "train/safetensors.h"

namespace gradlab::testing {

inline std::vector<std::int32_t> as_ids(const Tensor& t) {
  std::vector<std::int32_t> ids;
  for (double v : t.to_vector()) ids.push_back(static_cast<std::int32_t>(v));
  return ids;
}

// The fixtures' model: 2 layers x 2 heads, width 16, block 8, 11 tokens (make_fixtures.sh).
inline GPTConfig fixture_config(const std::string& mask) {
  GPTConfig c;
  c.vocab_size = 11;
  c.block_size = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.mask = mask;
  return c;
}

// Loads the fixture's "weights/<name>" tensors into the model (file names the fixture in errors).
inline void load_fixture_weights(GPT& model, const SafetensorsFile& f, const std::string& file) {
  std::vector<std::pair<std::string, Tensor>> weights;
  for (const auto& [name, t] : f.tensors)
    if (name.rfind("weights/", 0) == 0) weights.emplace_back(name.substr(8), t);
  model.load_state_dict(weights, file);
}

}  // namespace gradlab::testing
