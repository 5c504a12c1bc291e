#include "train/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

namespace gradlab {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; gradlab assumes a little-endian host");

using json = nlohmann::json;

namespace {

// A name from a hostile file, made safe for a one-line message: control bytes escaped, length capped.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= 80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw_error("safetensors file '", printable(label), "': ", what);
}
[[noreturn]] void fail_tensor(const std::string& label, const std::string& name, const std::string& what) {
  throw_error("safetensors file '", printable(label), "': tensor '", printable(name), "': ", what);
}

// Where the bytes come from: a file (pread) or memory. read() fills exactly n bytes or returns false.
struct Source {
  std::uint64_t size = 0;
  std::function<bool(std::uint64_t offset, std::size_t n, void* dst)> read;
};

struct Entry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
};

// dtypes that exist in the safetensors format but that gradlab does not read.
const std::set<std::string>& known_unsupported_dtypes() {
  static const std::set<std::string> names = {"BOOL", "U8",  "I8",  "I16", "U16",     "F16",     "BF16",
                                              "I32",  "U32", "I64", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                              "F4",   "F6_E2M3", "F6_E3M2", "C64"};
  return names;
}

// A JSON integer as int64, or nothing (floats, huge unsigned values, non-numbers).
bool json_to_int64(const json& v, std::int64_t& out) {
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return false;
    out = static_cast<std::int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<std::int64_t>();
    return true;
  }
  return false;
}

// A value's JSON text, short, for messages.
std::string short_dump(const json& v) {
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 40) + "...";
  return s;
}

// Parses the JSON header with duplicate-key and depth detection (nlohmann keeps the last duplicate silently).
json parse_header_json(const char* text, std::size_t n, const std::string& label) {
  struct Abort {
    std::string what;
  };
  // Memory stays proportional to the header text and small: nesting, array lengths and the number of values
  // are capped (a valid header has depth 3, arrays of at most 64 shape entries, and a few values per tensor).
  struct Open {
    bool is_array;
    std::uint64_t count;
  };
  std::vector<Open> open;
  std::vector<std::set<std::string>> keys;  // one set per open object, for duplicates
  std::uint64_t values = 0;
  auto count_value = [&] {
    if (++values > kSafetensorsMaxJsonValues)
      throw Abort{"header has more than " + std::to_string(kSafetensorsMaxJsonValues) + " JSON values"};
    if (!open.empty() && open.back().is_array && ++open.back().count > kSafetensorsMaxJsonArray)
      throw Abort{"header has an array with more than " + std::to_string(kSafetensorsMaxJsonArray) + " elements"};
  };
  auto callback = [&](int, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        count_value();
        if (open.size() + 1 > static_cast<std::size_t>(kSafetensorsMaxJsonDepth))
          throw Abort{"header JSON nests deeper than " + std::to_string(kSafetensorsMaxJsonDepth) + " levels"};
        open.push_back({event == json::parse_event_t::array_start, 0});
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!open.empty()) {
          if (!open.back().is_array && !keys.empty()) keys.pop_back();
          open.pop_back();
        }
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!keys.empty() && !keys.back().insert(key).second)
          throw Abort{"duplicate key '" + printable(key) + "' in the header" +
                      (keys.size() == 1 ? " (two tensors with one name)" : "")};
        break;
      }
      case json::parse_event_t::value:
        count_value();
        break;
    }
    return true;
  };
  try {
    return json::parse(text, text + n, callback, /*allow_exceptions=*/true);
  } catch (const Abort& a) {
    fail(label, a.what);
  } catch (const json::exception& e) {
    // nlohmann's messages are one line and give the byte position.
    fail(label, std::string("header is not valid JSON: ") + printable(e.what()));
  }
}

// Validates the header against a data region of data_size bytes; returns the entries sorted by begin.
std::vector<Entry> validate_header(const json& header, std::uint64_t data_size, const std::string& label,
                                   std::map<std::string, std::string>& metadata) {
  if (!header.is_object()) fail(label, std::string("header is JSON ") + header.type_name() + ", expected an object");
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object())
        fail(label, std::string("__metadata__ is JSON ") + value.type_name() + ", expected an object of strings");
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string())
          fail(label, "__metadata__ key '" + printable(key) + "' holds JSON " + v.type_name() + ", expected a string");
        metadata[key] = v.get<std::string>();
      }
      continue;
    }
    if (name.empty()) fail(label, "a tensor has an empty name");
    if (!value.is_object()) fail_tensor(label, name, std::string("entry is JSON ") + value.type_name() + ", expected an object");
    for (const auto& [key, v] : value.items()) {
      if (key != "dtype" && key != "shape" && key != "data_offsets")
        fail_tensor(label, name, "unknown key '" + printable(key) + "' (expected dtype, shape, data_offsets)");
    }
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!value.contains(key)) fail_tensor(label, name, std::string("missing key '") + key + "'");

    Entry e;
    e.name = name;
    // dtype
    const json& dt = value["dtype"];
    if (!dt.is_string()) fail_tensor(label, name, "dtype is " + short_dump(dt) + ", expected a string");
    const std::string dtype = dt.get<std::string>();
    if (dtype == "F32") {
      e.dtype = DType::F32;
    } else if (dtype == "F64") {
      e.dtype = DType::F64;
    } else if (known_unsupported_dtypes().count(dtype)) {
      fail_tensor(label, name, "dtype " + dtype + " is not supported (gradlab reads F32 and F64)");
    } else {
      fail_tensor(label, name, "unknown dtype '" + printable(dtype) + "' (gradlab reads F32 and F64)");
    }
    // shape: non-negative integers whose product fits; the product of the non-zero sizes must fit as well,
    // so that strides computed from the shape can never overflow either.
    const json& sh = value["shape"];
    if (!sh.is_array()) fail_tensor(label, name, "shape is " + short_dump(sh) + ", expected an array of integers");
    if (sh.size() > 64) fail_tensor(label, name, "shape has " + std::to_string(sh.size()) + " dimensions, more than 64");
    std::int64_t numel = 1, nonzero_product = 1;
    for (std::size_t d = 0; d < sh.size(); ++d) {
      std::int64_t size = 0;
      if (!json_to_int64(sh[d], size))
        fail_tensor(label, name, "shape entry " + std::to_string(d) + " is " + short_dump(sh[d]) + ", expected an integer");
      if (size < 0) fail_tensor(label, name, "shape entry " + std::to_string(d) + " is " + std::to_string(size) + ", expected >= 0");
      e.shape.push_back(size);
      if (__builtin_mul_overflow(numel, size, &numel) ||
          (size != 0 && __builtin_mul_overflow(nonzero_product, size, &nonzero_product)))
        fail_tensor(label, name, "shape " + short_dump(sh) + " has an element count that overflows 64 bits");
    }
    std::uint64_t nbytes = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel), static_cast<std::uint64_t>(dtype_size(e.dtype)), &nbytes))
      fail_tensor(label, name, "shape " + short_dump(sh) + " has a byte count that overflows 64 bits");
    // data_offsets
    const json& off = value["data_offsets"];
    std::int64_t begin = 0, end = 0;
    if (!off.is_array() || off.size() != 2 || !json_to_int64(off[0], begin) || !json_to_int64(off[1], end) ||
        begin < 0 || end < 0)
      fail_tensor(label, name, "data_offsets is " + short_dump(off) + ", expected [begin, end], two non-negative integers");
    e.begin = static_cast<std::uint64_t>(begin);
    e.end = static_cast<std::uint64_t>(end);
    if (e.end < e.begin)
      fail_tensor(label, name, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] end before begin");
    if (e.end > data_size)
      fail_tensor(label, name, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                   "] reach beyond the data, which has " + std::to_string(data_size) + " bytes");
    if (e.end - e.begin != nbytes)
      fail_tensor(label, name, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] hold " +
                                   std::to_string(e.end - e.begin) + " bytes, but shape " + shape_str(e.shape) + " of " +
                                   dtype + " needs " + std::to_string(nbytes));
    entries.push_back(std::move(e));
  }
  // The ranges must tile the data region exactly: sorted by begin, each starts where the previous ended.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      fail_tensor(label, e.name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                     "] overlap tensor '" + printable(previous->name) + "' (which ends at " +
                                     std::to_string(cursor) + ")");
    if (e.begin > cursor)
      fail_tensor(label, e.name, "data_offsets begin at " + std::to_string(e.begin) + ", leaving a gap of " +
                                     std::to_string(e.begin - cursor) + " unused bytes after offset " + std::to_string(cursor));
    cursor = e.end;
    previous = &e;
  }
  if (cursor != data_size)
    fail(label, "the tensors use " + std::to_string(cursor) + " of the " + std::to_string(data_size) +
                    " data bytes; " + std::to_string(data_size - cursor) + " trailing bytes are unused");
  return entries;
}

void verify_checksums(SafetensorsFile& out, const std::string& label);

SafetensorsFile parse_source(const Source& src, const std::string& label) {
  if (src.size < 8)
    fail(label, "file has " + std::to_string(src.size) + " bytes, fewer than the 8-byte header length");
  unsigned char len_bytes[8];
  if (!src.read(0, 8, len_bytes)) fail(label, "file is truncated (cannot read the 8-byte header length)");
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > kSafetensorsMaxHeaderBytes)
    fail(label, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                    std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");
  if (header_len > src.size - 8)
    fail(label, "header length " + std::to_string(header_len) + " reaches beyond the file (" +
                    std::to_string(src.size) + " bytes); the file is truncated or not safetensors");
  // header_len <= 100 MB and <= the real size: safe to allocate.
  std::string header_text(header_len, '\0');
  if (header_len > 0 && !src.read(8, header_len, header_text.data()))
    fail(label, "file is truncated (cannot read the " + std::to_string(header_len) + "-byte header)");
  json header = parse_header_json(header_text.data(), header_text.size(), label);
  const std::uint64_t data_start = 8 + header_len;
  const std::uint64_t data_size = src.size - data_start;

  SafetensorsFile out;
  std::vector<Entry> entries = validate_header(header, data_size, label, out.metadata);
  // Only now, with every size checked against the real data size, allocate and read.
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    const std::size_t nbytes = static_cast<std::size_t>(e.end - e.begin);
    void* dst = e.dtype == DType::F32 ? static_cast<void*>(t.data<float>()) : static_cast<void*>(t.data<double>());
    if (nbytes > 0 && !src.read(data_start + e.begin, nbytes, dst))
      fail_tensor(label, e.name, "file is truncated (its data could not be read; did the file change while reading?)");
    out.tensors.emplace(e.name, std::move(t));
  }
  verify_checksums(out, label);
  return out;
}

std::string errno_text(int err) { return std::strerror(err); }

std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Canonical bytes of the metadata for its checksum: key NUL value NUL, in key order, the checksum key left out.
std::string metadata_bytes(const std::map<std::string, std::string>& metadata) {
  std::string out;
  for (const auto& [key, value] : metadata) {
    if (key == kSafetensorsChecksumKey) continue;
    out += key;
    out += '\0';
    out += value;
    out += '\0';
  }
  return out;
}

std::string hex8(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::uint32_t tensor_crc(const Tensor& c) {
  const std::size_t nbytes = static_cast<std::size_t>(c.numel()) * dtype_size(c.dtype());
  const void* p = c.dtype() == DType::F32 ? static_cast<const void*>(c.data<float>()) : static_cast<const void*>(c.data<double>());
  return crc32c(p, nbytes);
}

// Checks the file's checksums (when it has them) and removes the key from out.metadata.
void verify_checksums(SafetensorsFile& out, const std::string& label) {
  auto it = out.metadata.find(kSafetensorsChecksumKey);
  if (it == out.metadata.end()) return;
  // A flat object of strings: anything nested is refused before nlohmann builds it.
  json sums = json::parse(it->second, [](int depth, json::parse_event_t, json&) { return depth <= 1; }, false);
  if (sums.is_discarded() || !sums.is_object())
    fail(label, std::string("metadata '") + kSafetensorsChecksumKey + "' is not a JSON object of checksums");
  auto recorded = [&](const std::string& name) -> std::uint32_t {
    auto s = sums.find(name);
    if (s == sums.end() || !s->is_string() || s->get_ref<const std::string&>().size() != 8 ||
        s->get_ref<const std::string&>().find_first_not_of("0123456789abcdef") != std::string::npos)
      fail(label, std::string("metadata '") + kSafetensorsChecksumKey + "' has no valid checksum for '" +
                      printable(name) + "'");
    return static_cast<std::uint32_t>(std::stoul(s->get<std::string>(), nullptr, 16));
  };
  for (const auto& [name, t] : out.tensors) {
    const std::uint32_t want = recorded(name), got = tensor_crc(t);
    if (want != got)
      fail_tensor(label, name, "checksum mismatch: its data has CRC32C " + hex8(got) + " but the header records " +
                                   hex8(want) + " (the file is damaged)");
  }
  const std::uint32_t want = recorded("__metadata__"), got = crc32c(metadata_bytes(out.metadata).data(), metadata_bytes(out.metadata).size());
  if (want != got)
    fail(label, "checksum mismatch in __metadata__: CRC32C " + hex8(got) + ", the header records " + hex8(want) +
                    " (the file is damaged)");
  for (const auto& [name, v] : sums.items())
    if (name != "__metadata__" && !out.tensors.count(name))
      fail(label, std::string("metadata '") + kSafetensorsChecksumKey + "' has a checksum for '" + printable(name) +
                      "', a tensor the file does not hold");
  out.metadata.erase(it);
  out.checksummed = true;
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc) {
  // Byte-wise table of the reflected polynomial; 8 tables let the loop take 8 bytes per step.
  static const auto tables = [] {
    std::vector<std::uint32_t> t(8 * 256);
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
      t[i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
      for (int k = 1; k < 8; ++k) t[k * 256 + i] = (t[(k - 1) * 256 + i] >> 8) ^ t[t[(k - 1) * 256 + i] & 0xff];
    return t;
  }();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  while (n >= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, 8);  // little-endian host (asserted above)
    word ^= crc;
    crc = tables[7 * 256 + (word & 0xff)] ^ tables[6 * 256 + ((word >> 8) & 0xff)] ^
          tables[5 * 256 + ((word >> 16) & 0xff)] ^ tables[4 * 256 + ((word >> 24) & 0xff)] ^
          tables[3 * 256 + ((word >> 32) & 0xff)] ^ tables[2 * 256 + ((word >> 40) & 0xff)] ^
          tables[1 * 256 + ((word >> 48) & 0xff)] ^ tables[0 * 256 + (word >> 56)];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ tables[(crc ^ *p++) & 0xff];
  return ~crc;
}

SafetensorsFile parse_safetensors(const void* bytes, std::size_t size, const std::string& label) {
  Source src;
  src.size = size;
  src.read = [bytes, size](std::uint64_t offset, std::size_t n, void* dst) {
    if (offset > size || n > size - offset) return false;
    std::memcpy(dst, static_cast<const char*>(bytes) + offset, n);
    return true;
  };
  return parse_source(src, label);
}

SafetensorsFile read_safetensors(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open: " + errno_text(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(path, "cannot stat: " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) fail(path, "is a directory, expected a file");
  if (!S_ISREG(st.st_mode)) fail(path, "is not a regular file");
  Source src;
  src.size = static_cast<std::uint64_t>(st.st_size);
  src.read = [fd](std::uint64_t offset, std::size_t n, void* dst) {
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      p += got;
      n -= static_cast<std::size_t>(got);
      offset += static_cast<std::uint64_t>(got);
    }
    return true;
  };
  return parse_source(src, path);
}

namespace {

// The header JSON (padded) and the tensors to write, in name order, as contiguous copies.
std::string build_header(const std::map<std::string, Tensor>& tensors, const std::map<std::string, std::string>& metadata,
                         std::vector<Tensor>& contiguous_out) {
  json header = json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) throw_error("write_safetensors: got a tensor with an empty name");
    if (name == "__metadata__") throw_error("write_safetensors: '__metadata__' is reserved and cannot name a tensor");
    if (!t.defined()) throw_error("write_safetensors: tensor '", name, "' is undefined");
    if (t.dtype() != DType::F32 && t.dtype() != DType::F64)
      throw_error("write_safetensors: tensor '", name, "' has dtype ", dtype_name(t.dtype()), ", expected F32 or F64");
    Tensor c = t.contiguous();
    const std::uint64_t nbytes = static_cast<std::uint64_t>(c.numel()) * dtype_size(c.dtype());
    header[name] = {{"dtype", c.dtype() == DType::F32 ? "F32" : "F64"},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contiguous_out.push_back(std::move(c));
  }
  if (metadata.count(kSafetensorsChecksumKey))
    throw_error("write_safetensors: metadata key '", kSafetensorsChecksumKey, "' is reserved for the checksums");
  json sums = json::object();
  std::size_t index = 0;
  for (const auto& [name, t] : tensors) sums[name] = hex8(tensor_crc(contiguous_out[index++]));
  const std::string md = metadata_bytes(metadata);
  sums["__metadata__"] = hex8(crc32c(md.data(), md.size()));
  json meta = metadata;
  meta[kSafetensorsChecksumKey] = sums.dump();
  header["__metadata__"] = meta;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw_error("write_safetensors: cannot encode the header (names and metadata must be UTF-8): ", e.what());
  }
  // Pad with spaces so that the data begins at a multiple of 8 bytes (8 + N is a multiple of 8).
  while (text.size() % 8 != 0) text += ' ';
  return text;
}

std::string length_prefix(std::uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

const void* raw_bytes(const Tensor& c) {
  return c.dtype() == DType::F32 ? static_cast<const void*>(c.data<float>()) : static_cast<const void*>(c.data<double>());
}

}  // namespace

std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> parts;
  std::string header = build_header(tensors, metadata, parts);
  std::string out = length_prefix(header.size()) + header;
  for (const Tensor& c : parts)
    out.append(static_cast<const char*>(raw_bytes(c)), static_cast<std::size_t>(c.numel()) * dtype_size(c.dtype()));
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Everything that can fail on the input fails here, before the temporary file exists.
  std::vector<Tensor> parts;
  std::string header = build_header(tensors, metadata, parts);
  AtomicWriter writer(path);
  writer.write(length_prefix(header.size()));
  writer.write(header);
  for (const Tensor& c : parts) writer.write(raw_bytes(c), static_cast<std::size_t>(c.numel()) * dtype_size(c.dtype()));
  writer.commit();
}

void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& label) {
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) continue;
    Tensor c = t.contiguous();
    const std::int64_t n = c.numel();
    for (std::int64_t i = 0; i < n; ++i) {
      double v = c.dtype() == DType::F32 ? static_cast<double>(c.data<float>()[i]) : c.data<double>()[i];
      if (!std::isfinite(v))
        throw_error(printable(label), ": tensor '", printable(name), "' has a non-finite value (",
                    std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"), ") at flat index ", i, " of shape ",
                    shape_str(c.shape()));
    }
  }
}

void fault_injection_point() {
  static const long long limit = [] {
    const char* v = std::getenv("GRADLAB_FAULT_SAVE_POINT");
    if (!v) return -1LL;
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    return end != v && *end == '\0' && n > 0 ? n : -1LL;
  }();
  static long long reached = 0;
  if (limit > 0 && ++reached == limit) {
    std::raise(SIGKILL);
    std::abort();  // not reached
  }
}

// ---- AtomicWriter -------------------------------------------------------------------------------------------

AtomicWriter::AtomicWriter(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw_error("write: got an empty output path");
  temp_path_ = path_ + ".tmp." + std::to_string(::getpid());
  if (const char* fault = std::getenv("GRADLAB_FAULT_WRITE_BYTES")) {
    char* endp = nullptr;
    long long n = std::strtoll(fault, &endp, 10);
    if (endp != fault && *endp == '\0' && n >= 0) fault_after_ = n;
  }
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_error("cannot write '", path_, "': ", errno_text(errno), " (creating the temporary file '", temp_path_, "')");
}

AtomicWriter::~AtomicWriter() {
  if (!committed_) {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(temp_path_.c_str());
  }
}

void AtomicWriter::write(const void* data, std::size_t nbytes) {
  if (committed_ || fd_ < 0) throw_error("write '", path_, "': writer already committed");
  fault_injection_point();
  const char* p = static_cast<const char*>(data);
  std::size_t remaining = nbytes;
  bool die_after = false;
  if (fault_after_ >= 0 && written_ + remaining > static_cast<std::uint64_t>(fault_after_)) {
    remaining = static_cast<std::size_t>(static_cast<std::uint64_t>(fault_after_) - written_);
    die_after = true;  // the injected crash: write up to the limit, then die without any cleanup
  }
  while (remaining > 0) {
    ssize_t put = ::write(fd_, p, remaining);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) throw_error("cannot write '", path_, "': ", errno_text(errno));
    p += put;
    remaining -= static_cast<std::size_t>(put);
    written_ += static_cast<std::uint64_t>(put);
  }
  if (die_after) {
    std::raise(SIGKILL);
    std::abort();  // not reached
  }
}

void AtomicWriter::commit() {
  if (committed_ || fd_ < 0) throw_error("write '", path_, "': writer already committed");
  fault_injection_point();
  if (::fsync(fd_) != 0) throw_error("cannot write '", path_, "': ", errno_text(errno), " (fsync)");
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) throw_error("cannot write '", path_, "': ", errno_text(errno), " (close)");
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
    throw_error("cannot write '", path_, "': ", errno_text(errno), " (renaming the temporary file into place)");
  committed_ = true;
  // Make the rename itself durable. Some file systems cannot fsync a directory (EINVAL): that is not an error.
  int dir = ::open(directory_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    if (::fsync(dir) != 0 && errno != EINVAL && errno != ENOTSUP) {
      int err = errno;
      ::close(dir);
      throw_error("write '", path_, "': fsync of the directory failed: ", errno_text(err));
    }
    ::close(dir);
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicWriter writer(path);
  writer.write(bytes);
  writer.commit();
}

}  // namespace gradlab
