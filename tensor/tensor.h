#pragma once
// Tensor: an N-d array of float32 or float64 as (shape, strides, offset) over shared storage.
//
// Element (i0, i1, ..., in) lives at  storage[offset + i0*strides[0] + ... + in*strides[n]]
// (strides count elements, not bytes). A view (reshape, transpose, permute, narrow, expand) makes a new
// Tensor over the same storage with other shape/strides/offset: no data moves. contiguous() copies only
// when the strides are not the row-major ones. float32 is the working type; float64 exists so that
// gradient checks and reference tests can run at rtol 1e-5.
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tensor/error.h"
#include "tensor/storage.h"

namespace gradlab {

enum class DType : std::uint8_t { F32, F64 };
const char* dtype_name(DType d);
std::size_t dtype_size(DType d);

using Shape = std::vector<std::int64_t>;
using Strides = std::vector<std::int64_t>;
std::string shape_str(const Shape& s);  // "(2, 3)"
std::int64_t shape_numel(const Shape& s);
Strides contiguous_strides(const Shape& s);

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // Creation. Shapes may have any number of dimensions (0-d is a scalar); sizes must be >= 0.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32);
  static Tensor arange(std::int64_t n, DType dtype = DType::F32);  // 0, 1, ..., n-1
  static Tensor scalar(double value, DType dtype = DType::F32);
  // Values in row-major order; values.size() must equal the shape's product.
  static Tensor from_values(const Shape& shape, const std::vector<double>& values, DType dtype = DType::F32);
  static Tensor from_floats(const Shape& shape, const std::vector<float>& values);

  // Geometry.
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  std::int64_t offset() const { return offset_; }
  std::int64_t dim() const { return static_cast<std::int64_t>(shape_.size()); }
  std::int64_t size(std::int64_t d) const;  // negative d counts from the end
  std::int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  bool is_contiguous() const;
  bool shares_storage(const Tensor& other) const { return storage_ == other.storage_; }
  // True when this Tensor is the only reference to its storage and covers all of it: a caller holding the
  // last reference to a fresh result may then keep it instead of copying it.
  bool owns_all_storage() const {
    return storage_ && storage_.use_count() == 1 && offset_ == 0 && is_contiguous() &&
           static_cast<std::size_t>(numel()) * dtype_size(dtype_) == storage_->nbytes();
  }

  // Raw element pointer at offset(); T must match dtype() (checked).
  template <typename T>
  T* data();
  template <typename T>
  const T* data() const;

  // Element access by index (slow; for tests, printing and small lessons).
  double at(std::initializer_list<std::int64_t> index) const;
  double at(const std::vector<std::int64_t>& index) const;
  void set(const std::vector<std::int64_t>& index, double value);
  double item() const;                   // requires numel() == 1
  std::vector<double> to_vector() const;  // row-major copy, any dtype
  std::vector<float> to_floats() const;

  // Views: share storage, never copy.
  Tensor view(const Shape& shape) const;     // requires contiguous; one size may be -1
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a contiguous copy
  Tensor transpose(std::int64_t d0, std::int64_t d1) const;
  Tensor permute(const std::vector<std::int64_t>& dims) const;
  Tensor narrow(std::int64_t d, std::int64_t start, std::int64_t length) const;
  Tensor select(std::int64_t d, std::int64_t index) const;  // drops dimension d
  Tensor unsqueeze(std::int64_t d) const;
  Tensor squeeze(std::int64_t d) const;  // dimension d must have size 1
  Tensor expand(const Shape& shape) const;  // broadcast view: size-1 dims get stride 0

  // Copies.
  Tensor contiguous() const;  // *this when already contiguous
  Tensor clone() const;       // always a fresh contiguous copy
  Tensor to(DType dtype) const;
  void copy_(const Tensor& src);  // src broadcast to this shape; dtypes may differ
  void fill_(double value);

  std::string str() const;  // NumPy-like printing, summarised for large tensors

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  Strides strides_;
  std::int64_t offset_ = 0;
  DType dtype_ = DType::F32;
  friend Tensor make_view(const Tensor& base, Shape shape, Strides strides, std::int64_t offset);
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// Builds a view over base's storage (no checks beyond bounds; used by the view functions).
Tensor make_view(const Tensor& base, Shape shape, Strides strides, std::int64_t offset);

// Normalises a possibly negative dimension index; throws "<op>: dimension d out of range for shape (..)".
std::int64_t wrap_dim(const char* op, std::int64_t d, std::int64_t ndim);

}  // namespace gradlab
