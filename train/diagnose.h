#pragma once
// Where a forward pass first turns non-finite. Non-finite results are failures (exit code 1) that say where they
// start: a weight that is already NaN/inf, a layer's attention, a layer's output, or the logits.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/gpt.h"

namespace gradlab {

// A loss, logit or attention map that is NaN or infinite (the CLI maps it to exit code 1).
struct NonFiniteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "<v> (nan/inf/-inf)" for messages.
std::string nonfinite_name(double v);

// The first element of t that is not finite: its flat index, or -1.
std::int64_t first_nonfinite_index(const Tensor& t);

// Runs `model` on one sequence ids (T tokens) and says where non-finite values first appear: the first
// parameter holding one; else the first layer whose attention probabilities hold one (with head and query row);
// else the first layer after which the logits do (found by running the model cut after 1, 2, ... layers);
// else the logits. Names the layer's largest-magnitude weight, the usual cause. "" when everything is finite.
std::string locate_nonfinite(GPT& model, const std::vector<std::int32_t>& ids);

}  // namespace gradlab
