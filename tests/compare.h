#pragma once
// Shared by the test programs: how far a computed tensor is from a reference one.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "tensor/tensor.h"

namespace gradlab::testing {

// Largest |a - b| / max(1, |b|) over the elements: relative where the reference is large, absolute near zero.
inline double worst_scaled_error(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector(), vb = b.to_vector();
  REQUIRE(va.size() == vb.size());
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i)
    worst = std::max(worst, std::abs(va[i] - vb[i]) / std::max(1.0, std::abs(vb[i])));
  return worst;
}

}  // namespace gradlab::testing
