#pragma once
// Walking a strided view: the one loop every copy, map and reduction over a non-contiguous tensor uses.
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace gradlab {

// Calls f(offset) for every element of the view (shape, strides, offset) in row-major order. The innermost
// dimension is a plain loop; the outer indices advance like an odometer.
template <typename F>
void for_each_offset(const Shape& shape, const Strides& strides, std::int64_t offset, F&& f) {
  const std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  const std::size_t nd = shape.size();
  if (nd == 0) {
    f(offset);
    return;
  }
  std::vector<std::int64_t> idx(nd, 0);
  std::int64_t off = offset;
  const std::int64_t inner = shape[nd - 1], inner_stride = strides[nd - 1];
  for (std::int64_t done = 0; done < n; done += inner) {
    for (std::int64_t i = 0; i < inner; ++i) f(off + i * inner_stride);
    for (std::size_t d = nd - 1; d-- > 0;) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace gradlab
