#include "viz/attention.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "tensor/error.h"
#include "viz/canvas.h"

namespace gradlab::viz {

AttentionMaps AttentionMaps::from_floats(const float* data, std::int64_t n_layer, std::int64_t n_head,
                                         std::int64_t T, std::string mask, bool stablemask) {
  if (n_layer < 1 || n_head < 1 || T < 1)
    throw_error("attention maps: got n_layer=", n_layer, " n_head=", n_head, " T=", T, ", expected all >= 1");
  if (!data) throw_error("attention maps: got a null data pointer");
  AttentionMaps m;
  m.n_layer = n_layer;
  m.n_head = n_head;
  m.T = T;
  m.values.assign(data, data + n_layer * n_head * T * T);
  m.mask = std::move(mask);
  m.stablemask = stablemask;
  return m;
}

AttentionMaps AttentionMaps::from_tensor(const Tensor& attn, std::string mask, bool stablemask) {
  // attn is (T,T), (n_head,T,T) or (n_layer,n_head,T,T)
  if (!attn.defined()) throw_error("attention maps: got an undefined tensor");
  const Shape& s = attn.shape();
  if (attn.dim() < 2 || attn.dim() > 4 || s[s.size() - 1] != s[s.size() - 2])
    throw_error("attention maps: got shape ", shape_str(s), ", expected (T, T), (n_head, T, T) or (n_layer, n_head, T, T)");
  Tensor f = attn.to(DType::F32).contiguous();
  std::int64_t T = s.back();
  std::int64_t n_head = attn.dim() >= 3 ? s[s.size() - 3] : 1;
  std::int64_t n_layer = attn.dim() == 4 ? s[0] : 1;
  return from_floats(f.data<float>(), n_layer, n_head, T, std::move(mask), stablemask);
}

void AttentionMaps::validate(const char* op) const {
  if (n_layer < 1 || n_head < 1 || T < 1)
    throw_error(op, ": got attention maps with n_layer=", n_layer, " n_head=", n_head, " T=", T, ", expected all >= 1");
  if (static_cast<std::int64_t>(values.size()) != n_layer * n_head * T * T)
    throw_error(op, ": got ", values.size(), " attention values for shape (", n_layer, ", ", n_head, ", ", T, ", ", T,
                "), expected ", n_layer * n_head * T * T);
}

double AttentionMaps::row_mass(std::int64_t layer, std::int64_t head, std::int64_t i) const {
  const float* row = matrix(layer, head) + i * T;
  double sum = 0;
  for (std::int64_t j = 0; j <= i; ++j) sum += row[j];
  return sum;
}

// ---- .npy ----------------------------------------------------------------------------------------------

std::string npy_bytes(const float* data, const std::vector<std::int64_t>& shape) {
  std::int64_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw_error("write_npy: got a negative size in shape ", shape_str(shape));
    count *= d;
  }
  if (count > 0 && !data) throw_error("write_npy: got a null data pointer for shape ", shape_str(shape));
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (std::size_t k = 0; k < shape.size(); ++k) dict += std::to_string(shape[k]) + (shape.size() == 1 || k + 1 < shape.size() ? ", " : "");
  if (shape.size() == 1) dict.pop_back();  // "(5,)" is the Python spelling of a 1-tuple
  dict += "), }";
  // magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64.
  std::size_t total = 10 + dict.size() + 1;
  std::size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>((dict.size() >> 8) & 0xFF);
  out += dict;
  out.reserve(out.size() + 4 * count);
  for (std::int64_t k = 0; k < count; ++k) {
    std::uint32_t bits;
    std::memcpy(&bits, &data[k], 4);
    for (int b = 0; b < 4; ++b) out += static_cast<char>((bits >> (8 * b)) & 0xFF);  // little-endian on any host
  }
  return out;
}

void write_npy(const std::string& path, const float* data, const std::vector<std::int64_t>& shape) {
  write_file(path, npy_bytes(data, shape));
}

NpyArray parse_npy(const std::string& bytes) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw_error("read_npy: not an .npy file (bad magic)");
  if (bytes[6] != 1) throw_error("read_npy: got format version ", int(bytes[6]), ", expected 1");
  std::size_t len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  if (10 + len > bytes.size()) throw_error("read_npy: header length ", len, " runs past the end of the file");
  std::string header = bytes.substr(10, len);
  if (header.find("'descr': '<f4'") == std::string::npos) throw_error("read_npy: expected dtype '<f4' in ", header);
  if (header.find("'fortran_order': False") == std::string::npos) throw_error("read_npy: expected C order in ", header);
  auto open = header.find("'shape': (");
  auto close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) throw_error("read_npy: no shape in ", header);
  NpyArray arr;
  std::string dims = header.substr(open + 10, close - open - 10);
  std::int64_t count = 1;
  for (std::size_t p = 0; p < dims.size();) {
    while (p < dims.size() && (dims[p] == ' ' || dims[p] == ',')) ++p;
    if (p >= dims.size()) break;
    std::size_t q = p;
    while (q < dims.size() && dims[q] >= '0' && dims[q] <= '9') ++q;
    if (q == p) throw_error("read_npy: bad shape \"", dims, "\"");
    arr.shape.push_back(std::stoll(dims.substr(p, q - p)));
    count *= arr.shape.back();
    p = q;
  }
  std::size_t data_start = 10 + len;
  if (bytes.size() - data_start != static_cast<std::size_t>(count) * 4)
    throw_error("read_npy: got ", bytes.size() - data_start, " data bytes, expected ", count * 4);
  arr.values.resize(count);
  for (std::int64_t k = 0; k < count; ++k) {
    std::uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) bits |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[data_start + 4 * k + b])) << (8 * b);
    std::memcpy(&arr.values[k], &bits, 4);
  }
  return arr;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error("read_npy: cannot open \"", path, "\"");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_npy(bytes);
}

// ---- Statistics ------------------------------------------------------------------------------------------

AttentionStats attention_stats(const AttentionMaps& maps, std::int64_t min_row) {
  maps.validate("attention_stats");
  if (min_row < 0) throw_error("attention_stats: got min_row=", min_row, ", expected >= 0");
  AttentionStats st;
  st.mask = maps.mask;
  const std::int64_t T = maps.T;
  st.first_row = T > min_row ? min_row : (T > 1 ? 1 : 0);
  st.rows = T - st.first_row;
  for (std::int64_t l = 0; l < maps.n_layer; ++l)
    for (std::int64_t h = 0; h < maps.n_head; ++h) {
      HeadStats hs;
      hs.layer = l;
      hs.head = h;
      for (std::int64_t i = st.first_row; i < T; ++i) {
        double first = maps.at(l, h, i, 0);
        double mass = maps.row_mass(l, h, i);
        hs.first_share_raw += first;
        hs.first_share_norm += mass > 0 ? first / mass : 0.0;
        hs.mean_real_mass += mass;
      }
      hs.first_share_raw /= static_cast<double>(st.rows);
      hs.first_share_norm /= static_cast<double>(st.rows);
      hs.mean_real_mass /= static_cast<double>(st.rows);
      st.heads.push_back(hs);
    }
  return st;
}

namespace {
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string pad_right(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}
}  // namespace

std::string format_stats(const AttentionStats& st) {
  std::string out = "attention on the first token (" + st.mask + "), rows " + std::to_string(st.first_row) + ".." +
                    std::to_string(st.first_row + st.rows - 1) + "\n";
  out += "layer  head   raw share   share / R_i   mean R_i\n";
  for (const HeadStats& h : st.heads)
    out += pad_right(std::to_string(h.layer), 7) + pad_right(std::to_string(h.head), 7) +
           fmt("%9.4f", h.first_share_raw) + fmt("%14.4f", h.first_share_norm) + fmt("%11.4f", h.mean_real_mass) + "\n";
  return out;
}

std::string format_stats_comparison(const AttentionStats& a, const AttentionStats& b) {
  if (a.heads.size() != b.heads.size())
    throw_error("format_stats_comparison: got ", a.heads.size(), " and ", b.heads.size(), " heads, expected the same");
  std::string out = "attention on the first token, rows " + std::to_string(a.first_row) + ".." +
                    std::to_string(a.first_row + a.rows - 1) + " (share / R_i: normalised by the row's real mass)\n";
  std::string ca = a.mask.substr(0, 18), cb = b.mask.substr(0, 18);
  out += "             " + pad_right(ca, 33) + " | " + cb + "\n";
  out += "layer head   raw     share/R_i  mean R_i  | raw     share/R_i  mean R_i\n";
  for (std::size_t k = 0; k < a.heads.size(); ++k) {
    const HeadStats &x = a.heads[k], &y = b.heads[k];
    out += pad_right(std::to_string(x.layer), 6) + pad_right(std::to_string(x.head), 5) + fmt("%7.4f", x.first_share_raw) +
           fmt("%11.4f", x.first_share_norm) + fmt("%10.4f", x.mean_real_mass) + "   |" + fmt("%7.4f", y.first_share_raw) +
           fmt("%11.4f", y.first_share_norm) + fmt("%10.4f", y.mean_real_mass) + "\n";
  }
  return out;
}

}  // namespace gradlab::viz
