#include "tensor/tensor.h"

#include "tensor/threads.h"
#include "tensor/strided.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <type_traits>

namespace gradlab {

const char* dtype_name(DType d) { return d == DType::F32 ? "float32" : "float64"; }
std::size_t dtype_size(DType d) { return d == DType::F32 ? 4 : 8; }

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  if (s.size() == 1) out += ",";
  return out + ")";
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Strides contiguous_strides(const Shape& s) {
  Strides st(s.size());
  std::int64_t acc = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= std::max<std::int64_t>(s[i], 1);
  }
  return st;
}

std::int64_t wrap_dim(const char* op, std::int64_t d, std::int64_t ndim) {
  std::int64_t w = d < 0 ? d + ndim : d;
  if (w < 0 || w >= ndim) throw_error(op, ": dimension ", d, " is out of range for a tensor with ", ndim, " dimensions");
  return w;
}

// ---------------------------------------------------------------------------------------------------------
// Creation

static void check_shape(const char* op, const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0) throw_error(op, ": got shape ", shape_str(shape), ", expected sizes >= 0");
    if (d != 0 && n > (std::int64_t(1) << 40) / d)
      throw_error(op, ": shape ", shape_str(shape), " has more than 2^40 elements");
    n *= d;
  }
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  check_shape("empty", shape);
  Tensor t;
  t.storage_ = std::make_shared<Storage>(static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype));
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.storage_->data(), 0, t.storage_->nbytes());
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::arange(std::int64_t n, DType dtype) {
  if (n < 0) throw_error("arange: got n = ", n, ", expected n >= 0");
  Tensor t = empty({n}, dtype);
  for (std::int64_t i = 0; i < n; ++i) t.set({i}, static_cast<double>(i));
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::from_values(const Shape& shape, const std::vector<double>& values, DType dtype) {
  check_shape("from_values", shape);
  if (static_cast<std::int64_t>(values.size()) != shape_numel(shape))
    throw_error("from_values: got ", values.size(), " values for shape ", shape_str(shape), ", expected ",
                shape_numel(shape));
  Tensor t = empty(shape, dtype);
  if (dtype == DType::F32) {
    float* p = t.data<float>();
    for (std::size_t i = 0; i < values.size(); ++i) p[i] = static_cast<float>(values[i]);
  } else {
    std::copy(values.begin(), values.end(), t.data<double>());
  }
  return t;
}

Tensor Tensor::from_floats(const Shape& shape, const std::vector<float>& values) {
  check_shape("from_floats", shape);
  if (static_cast<std::int64_t>(values.size()) != shape_numel(shape))
    throw_error("from_floats: got ", values.size(), " values for shape ", shape_str(shape), ", expected ",
                shape_numel(shape));
  Tensor t = empty(shape, DType::F32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

// ---------------------------------------------------------------------------------------------------------
// Geometry and element access

std::int64_t Tensor::size(std::int64_t d) const { return shape_[wrap_dim("size", d, dim())]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no element to be out of place, whatever the strides say (shape {3, 0})
  std::int64_t expected = 1;
  for (std::size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

template <typename T>
T* Tensor::data() {
  constexpr DType want = std::is_same_v<T, float> ? DType::F32 : DType::F64;
  if (!defined()) throw_error("data: the tensor is undefined");
  if (dtype_ != want) throw_error("data: the tensor is ", dtype_name(dtype_), ", asked for ", dtype_name(want));
  return static_cast<T*>(storage_->data()) + offset_;
}

template <typename T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;

static std::int64_t linear_index(const Tensor& t, const std::vector<std::int64_t>& index) {
  if (static_cast<std::int64_t>(index.size()) != t.dim())
    throw_error("at: got ", index.size(), " indices for shape ", shape_str(t.shape()), ", expected ", t.dim());
  std::int64_t off = t.offset();
  for (std::size_t i = 0; i < index.size(); ++i) {
    if (index[i] < 0 || index[i] >= t.shape()[i])
      throw_error("at: index ", index[i], " is out of range for dimension ", i, " of shape ", shape_str(t.shape()));
    off += index[i] * t.strides()[i];
  }
  return off;
}

double Tensor::at(std::initializer_list<std::int64_t> index) const {
  return at(std::vector<std::int64_t>(index));
}

double Tensor::at(const std::vector<std::int64_t>& index) const {
  if (!defined()) throw_error("at: the tensor is undefined");
  std::int64_t off = linear_index(*this, index);
  if (dtype_ == DType::F32) return static_cast<const float*>(storage_->data())[off];
  return static_cast<const double*>(storage_->data())[off];
}

void Tensor::set(const std::vector<std::int64_t>& index, double value) {
  if (!defined()) throw_error("set: the tensor is undefined");
  std::int64_t off = linear_index(*this, index);
  if (dtype_ == DType::F32)
    static_cast<float*>(storage_->data())[off] = static_cast<float>(value);
  else
    static_cast<double*>(storage_->data())[off] = value;
}

double Tensor::item() const {
  if (numel() != 1) throw_error("item: got shape ", shape_str(shape_), ", expected exactly one element");
  return contiguous().to_vector()[0];
}

std::vector<double> Tensor::to_vector() const {
  std::vector<double> out;
  if (!defined()) return out;
  out.reserve(static_cast<std::size_t>(numel()));
  if (dtype_ == DType::F32) {
    const float* base = static_cast<const float*>(storage_->data());
    for_each_offset(shape_, strides_, offset_, [&](std::int64_t o) { out.push_back(base[o]); });
  } else {
    const double* base = static_cast<const double*>(storage_->data());
    for_each_offset(shape_, strides_, offset_, [&](std::int64_t o) { out.push_back(base[o]); });
  }
  return out;
}

std::vector<float> Tensor::to_floats() const {
  Tensor c = to(DType::F32).contiguous();
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

// ---------------------------------------------------------------------------------------------------------
// Views

Tensor make_view(const Tensor& base, Shape shape, Strides strides, std::int64_t offset) {
  Tensor t;
  t.storage_ = base.storage_;
  t.shape_ = std::move(shape);
  t.strides_ = std::move(strides);
  t.offset_ = offset;
  t.dtype_ = base.dtype_;
  return t;
}

static Shape infer_shape(const char* op, const Shape& from, Shape to) {
  std::int64_t known = 1, infer_at = -1;
  for (std::size_t i = 0; i < to.size(); ++i) {
    if (to[i] == -1) {
      if (infer_at >= 0) throw_error(op, ": got ", shape_str(to), ", expected at most one -1");
      infer_at = static_cast<std::int64_t>(i);
    } else if (to[i] < 0) {
      throw_error(op, ": got ", shape_str(to), ", expected sizes >= 0 or one -1");
    } else {
      known *= to[i];
    }
  }
  std::int64_t n = shape_numel(from);
  if (infer_at >= 0) {
    if (known == 0 || n % known != 0)
      throw_error(op, ": cannot reshape ", shape_str(from), " (", n, " elements) into ", shape_str(to));
    to[infer_at] = n / known;
  }
  if (shape_numel(to) != n)
    throw_error(op, ": cannot reshape ", shape_str(from), " (", n, " elements) into ", shape_str(to), " (",
                shape_numel(to), " elements)");
  return to;
}

Tensor Tensor::view(const Shape& shape) const {
  if (!is_contiguous())
    throw_error("view: the tensor of shape ", shape_str(shape_), " is not contiguous; use reshape() or contiguous()");
  Shape s = infer_shape("view", shape_, shape);
  return make_view(*this, s, contiguous_strides(s), offset_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  if (is_contiguous()) return view(shape);
  return contiguous().view(shape);
}

Tensor Tensor::transpose(std::int64_t d0, std::int64_t d1) const {
  std::int64_t a = wrap_dim("transpose", d0, dim()), b = wrap_dim("transpose", d1, dim());
  Shape s = shape_;
  Strides st = strides_;
  std::swap(s[a], s[b]);
  std::swap(st[a], st[b]);
  return make_view(*this, s, st, offset_);
}

Tensor Tensor::permute(const std::vector<std::int64_t>& dims) const {
  if (static_cast<std::int64_t>(dims.size()) != dim())
    throw_error("permute: got ", dims.size(), " dimensions for shape ", shape_str(shape_), ", expected ", dim());
  Shape s(dims.size());
  Strides st(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (std::size_t i = 0; i < dims.size(); ++i) {
    std::int64_t d = wrap_dim("permute", dims[i], dim());
    if (seen[d]) throw_error("permute: dimension ", d, " appears twice in the permutation");
    seen[d] = true;
    s[i] = shape_[d];
    st[i] = strides_[d];
  }
  return make_view(*this, s, st, offset_);
}

Tensor Tensor::narrow(std::int64_t d, std::int64_t start, std::int64_t length) const {
  std::int64_t a = wrap_dim("narrow", d, dim());
  if (start < 0 || length < 0 || start + length > shape_[a])
    throw_error("narrow: got start ", start, " and length ", length, " on dimension ", a, " of shape ",
                shape_str(shape_), ", expected 0 <= start <= start + length <= ", shape_[a]);
  Shape s = shape_;
  s[a] = length;
  return make_view(*this, s, strides_, offset_ + start * strides_[a]);
}

Tensor Tensor::select(std::int64_t d, std::int64_t index) const {
  std::int64_t a = wrap_dim("select", d, dim());
  if (index < 0 || index >= shape_[a])
    throw_error("select: index ", index, " is out of range for dimension ", a, " of shape ", shape_str(shape_));
  Shape s = shape_;
  Strides st = strides_;
  s.erase(s.begin() + a);
  st.erase(st.begin() + a);
  return make_view(*this, s, st, offset_ + index * strides_[a]);
}

Tensor Tensor::unsqueeze(std::int64_t d) const {
  std::int64_t a = wrap_dim("unsqueeze", d, dim() + 1);
  Shape s = shape_;
  Strides st = strides_;
  std::int64_t stride = a < dim() ? strides_[a] * shape_[a] : 1;
  s.insert(s.begin() + a, 1);
  st.insert(st.begin() + a, stride);
  return make_view(*this, s, st, offset_);
}

Tensor Tensor::squeeze(std::int64_t d) const {
  std::int64_t a = wrap_dim("squeeze", d, dim());
  if (shape_[a] != 1)
    throw_error("squeeze: dimension ", a, " of shape ", shape_str(shape_), " has size ", shape_[a], ", expected 1");
  return select(a, 0);
}

Tensor Tensor::expand(const Shape& shape) const {
  if (shape.size() < shape_.size())
    throw_error("expand: cannot expand shape ", shape_str(shape_), " to fewer dimensions ", shape_str(shape));
  std::size_t lead = shape.size() - shape_.size();
  Strides st(shape.size(), 0);
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) continue;
    std::int64_t have = shape_[i - lead];
    if (have == shape[i])
      st[i] = strides_[i - lead];
    else if (have == 1)
      st[i] = 0;
    else
      throw_error("expand: cannot broadcast shape ", shape_str(shape_), " to ", shape_str(shape));
  }
  return make_view(*this, shape, st, offset_);
}

// ---------------------------------------------------------------------------------------------------------
// Copies

// Copies a contiguous run of float32 or float64 data. Disjoint runs (the usual clone) above
// kParallelMinElements words are split over the worker pool; overlapping views of one storage use memmove.
static void copy_bytes(char* to, const char* from, std::size_t bytes) {
  const auto t0 = reinterpret_cast<std::uintptr_t>(to), f0 = reinterpret_cast<std::uintptr_t>(from);
  if (t0 + bytes <= f0 || f0 + bytes <= t0) {
    parallel_ranges(static_cast<std::int64_t>(bytes / 4), 1, [&](std::int64_t w0, std::int64_t w1) {
      std::memcpy(to + w0 * 4, from + w0 * 4, static_cast<std::size_t>(w1 - w0) * 4);
    });
  } else {
    std::memmove(to, from, bytes);
  }
}

void Tensor::copy_(const Tensor& src) {
  if (!defined() || !src.defined()) throw_error("copy_: an operand is undefined");
  Tensor s = src.expand(shape_);
  if (dtype_ == s.dtype_ && is_contiguous() && s.is_contiguous()) {
    copy_bytes(static_cast<char*>(storage_->data()) + offset_ * dtype_size(dtype_),
               static_cast<const char*>(s.storage_->data()) + s.offset_ * dtype_size(dtype_),
               static_cast<std::size_t>(numel()) * dtype_size(dtype_));
    return;
  }
  if (is_contiguous()) {
    // Common case (contiguous(), clone() of a view): write sequentially, read strided.
    std::int64_t k = 0;
    auto gather = [&](auto* dst, const auto* from) {
      using D = std::remove_pointer_t<decltype(dst)>;
      dst += offset_;
      for_each_offset(s.shape_, s.strides_, s.offset_, [&](std::int64_t o) { dst[k++] = static_cast<D>(from[o]); });
    };
    void* d = storage_->data();
    const void* f = s.storage_->data();
    if (dtype_ == DType::F32 && s.dtype_ == DType::F32) gather(static_cast<float*>(d), static_cast<const float*>(f));
    if (dtype_ == DType::F32 && s.dtype_ == DType::F64) gather(static_cast<float*>(d), static_cast<const double*>(f));
    if (dtype_ == DType::F64 && s.dtype_ == DType::F32) gather(static_cast<double*>(d), static_cast<const float*>(f));
    if (dtype_ == DType::F64 && s.dtype_ == DType::F64) gather(static_cast<double*>(d), static_cast<const double*>(f));
    return;
  }
  // Walk destination and source together; both orders are row-major over the same shape.
  std::vector<std::int64_t> dst_offsets;
  dst_offsets.reserve(static_cast<std::size_t>(numel()));
  for_each_offset(shape_, strides_, offset_, [&](std::int64_t o) { dst_offsets.push_back(o); });
  std::size_t k = 0;
  auto copy_with = [&](auto* dst, const auto* from) {
    for_each_offset(s.shape_, s.strides_, s.offset_, [&](std::int64_t o) {
      dst[dst_offsets[k++]] = static_cast<std::remove_pointer_t<decltype(dst)>>(from[o]);
    });
  };
  void* d = storage_->data();
  const void* f = s.storage_->data();
  if (dtype_ == DType::F32 && s.dtype_ == DType::F32) copy_with(static_cast<float*>(d), static_cast<const float*>(f));
  if (dtype_ == DType::F32 && s.dtype_ == DType::F64) copy_with(static_cast<float*>(d), static_cast<const double*>(f));
  if (dtype_ == DType::F64 && s.dtype_ == DType::F32) copy_with(static_cast<double*>(d), static_cast<const float*>(f));
  if (dtype_ == DType::F64 && s.dtype_ == DType::F64) copy_with(static_cast<double*>(d), static_cast<const double*>(f));
}

void Tensor::fill_(double value) {
  if (!defined()) throw_error("fill_: the tensor is undefined");
  if (dtype_ == DType::F32) {
    float* base = static_cast<float*>(storage_->data());
    float v = static_cast<float>(value);
    for_each_offset(shape_, strides_, offset_, [&](std::int64_t o) { base[o] = v; });
  } else {
    double* base = static_cast<double*>(storage_->data());
    for_each_offset(shape_, strides_, offset_, [&](std::int64_t o) { base[o] = value; });
  }
}

Tensor Tensor::contiguous() const {
  if (!defined() || is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  if (!defined()) return *this;
  Tensor out = empty(shape_, dtype_);
  if (is_contiguous()) {
    copy_bytes(static_cast<char*>(out.storage_->data()), static_cast<const char*>(storage_->data()) + offset_ * dtype_size(dtype_),
               static_cast<std::size_t>(numel()) * dtype_size(dtype_));
  } else {
    out.copy_(*this);
  }
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (!defined() || dtype == dtype_) return *this;
  Tensor out = empty(shape_, dtype);
  out.copy_(*this);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Printing, NumPy style: nested brackets, aligned columns, "..." beyond 6 entries per dimension.

static void print_rec(std::ostream& out, const Tensor& t, std::vector<std::int64_t>& idx, std::size_t d, int width,
                      int indent) {
  const std::int64_t n = t.shape()[d];
  const bool summarise = t.numel() > 1000 && n > 6;
  out << '[';
  for (std::int64_t i = 0; i < n; ++i) {
    if (summarise && i == 3) {
      out << (d + 1 == t.shape().size() ? " ..." : "...");
      i = n - 3;
      if (d + 1 < t.shape().size()) out << ",\n" << std::string(indent + 1, ' ');
      else out << ", ";
    }
    idx[d] = i;
    if (d + 1 == t.shape().size()) {
      out << std::setw(width) << t.at(idx);
    } else {
      print_rec(out, t, idx, d + 1, width, indent + 1);
    }
    if (i + 1 < n) {
      if (d + 1 == t.shape().size()) out << ", ";
      else out << ",\n" << std::string(t.shape().size() - d - 2, '\n') << std::string(indent + 1, ' ');
    }
  }
  out << ']';
}

std::string Tensor::str() const {
  std::ostringstream out;
  if (!defined()) return "tensor(undefined)";
  out << std::setprecision(4);
  out << "tensor(";
  if (dim() == 0) {
    out << at(std::vector<std::int64_t>{});
  } else if (numel() == 0) {
    out << "[]";
  } else {
    int width = 1;
    for (double v : to_vector()) {
      std::ostringstream s;
      s << std::setprecision(4) << v;
      width = std::max<int>(width, static_cast<int>(s.str().size()));
    }
    std::vector<std::int64_t> idx(shape_.size(), 0);
    print_rec(out, *this, idx, 0, width, 7);
  }
  out << ", shape=" << shape_str(shape_) << ", " << dtype_name(dtype_) << ")";
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << t.str(); }

}  // namespace gradlab
