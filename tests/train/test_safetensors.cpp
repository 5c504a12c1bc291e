// safetensors: format layout, round trips, every validation case, atomic writes under an injected SIGKILL.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "io_util.h"
#include "train/safetensors.h"
#include "tensor/rng.h"

using namespace gradlab;
using io_test::error_of;
using io_test::one_line;

namespace {

// 8-byte little-endian length + header + data.
std::string st_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] { parse_safetensors(bytes.data(), bytes.size(), "mem.safetensors"); });
}

// A header with one F32 tensor "a" of shape [2] at [0, 8] followed by 8 data bytes: valid.
const std::string kOneTensor = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

TEST_SUITE("io") {

TEST_CASE("safetensors: the byte layout of a small file") {
  std::map<std::string, Tensor> tensors;
  tensors["b"] = Tensor::from_values({2}, {3.0, 4.0});
  tensors["a"] = Tensor::from_values({1}, {1.5}, DType::F64);
  std::string bytes = serialize_safetensors(tensors, {{"k", "v"}});
  std::string data(16, '\0');
  double a = 1.5;
  float b[2] = {3.0f, 4.0f};
  std::memcpy(data.data(), &a, 8);
  std::memcpy(data.data() + 8, b, 8);
  // The checksums: CRC32C of each tensor's bytes and of the metadata as "key NUL value NUL".
  auto hex = [](std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", v);
    return std::string(buf);
  };
  const std::string sums = R"({\"__metadata__\":\")" + hex(crc32c("k\0v\0", 4)) + R"(\",\"a\":\")" +
                           hex(crc32c(data.data(), 8)) + R"(\",\"b\":\")" + hex(crc32c(data.data() + 8, 8)) + R"(\"})";
  // Header: keys sorted, "a" first (F64, 8 bytes), then "b" (F32, 8 bytes); padded with spaces to 8.
  std::string header = R"({"__metadata__":{"gradlab.crc32c":")" + sums + R"(","k":"v"},)"
                       R"("a":{"data_offsets":[0,8],"dtype":"F64","shape":[1]},)"
                       R"("b":{"data_offsets":[8,16],"dtype":"F32","shape":[2]}})";
  while (header.size() % 8) header += ' ';
  CHECK(bytes == st_file(header, data));
  CHECK((8 + header.size()) % 8 == 0);
}

TEST_CASE("safetensors: CRC32C matches the published check values") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);  // the standard check value of CRC-32C
  CHECK(crc32c("", 0) == 0u);
  const std::string zeros(32, '\0');
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);  // RFC 3720 B.4: 32 bytes of zeros
  // continuing a CRC over two pieces gives the CRC of the whole
  const std::string text = "the cat sat on the mat and the dog ran far";
  CHECK(crc32c(text.data() + 10, text.size() - 10, crc32c(text.data(), 10)) == crc32c(text.data(), text.size()));
}

TEST_CASE("safetensors: round trip of F32/F64 and views and empty and 0-d tensors with metadata") {
  io_test::TempDir dir;
  Rng rng(7);
  std::vector<double> vals(12);
  for (auto& v : vals) v = rng.normal();
  std::map<std::string, Tensor> tensors;
  tensors["w"] = Tensor::from_values({3, 4}, vals);
  tensors["w_t"] = tensors["w"].transpose(0, 1);  // a non-contiguous view is written row-major
  tensors["d"] = Tensor::from_values({2, 2}, {1e-300, -2.0, 3.25, 1e300}, DType::F64);
  tensors["empty"] = Tensor::zeros({0, 5});
  tensors["scalar"] = Tensor::scalar(42.0);
  std::map<std::string, std::string> meta = {{"config", R"({"n_layer": 2})"}, {"note", "ünïcode ✓"}};
  const std::string path = dir.file("m.safetensors");
  write_safetensors(path, tensors, meta);
  SafetensorsFile f = read_safetensors(path);
  CHECK(f.metadata == meta);
  REQUIRE(f.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    const Tensor& r = f.tensors.at(name);
    CHECK(r.shape() == t.shape());
    CHECK(r.dtype() == t.dtype());
    CHECK(r.is_contiguous());
    CHECK(r.to_vector() == t.to_vector());
  }
  // No temporary file is left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path)) entries += 1, (void)e;
  CHECK(entries == 1);
  // A second write replaces the first.
  tensors.erase("w_t");
  write_safetensors(path, tensors);
  CHECK(read_safetensors(path).tensors.count("w_t") == 0);
  CHECK(read_safetensors(path).metadata.empty());
}

TEST_CASE("safetensors: the writer rejects what it cannot write") {
  io_test::TempDir dir;
  std::map<std::string, Tensor> bad_name = {{"__metadata__", Tensor::zeros({1})}};
  CHECK(error_of([&] { write_safetensors(dir.file("x"), bad_name); }).find("reserved") != std::string::npos);
  std::map<std::string, Tensor> undefined = {{"u", Tensor()}};
  CHECK(error_of([&] { write_safetensors(dir.file("x"), undefined); }).find("'u' is undefined") != std::string::npos);
  // Metadata that is not UTF-8 cannot go in the JSON header.
  std::map<std::string, Tensor> ok = {{"a", Tensor::zeros({1})}};
  CHECK(error_of([&] { write_safetensors(dir.file("x"), ok, {{"k", "\xff"}}); }).find("UTF-8") != std::string::npos);
  // Nothing was created by the failed writes.
  CHECK(!std::filesystem::exists(dir.file("x")));
  // A missing directory is a clear error.
  std::string msg = error_of([&] { write_safetensors(dir.file("no/such/dir/x"), ok); });
  CHECK(msg.find("cannot write '" + dir.file("no/such/dir/x") + "': No such file or directory") != std::string::npos);
}

TEST_CASE("safetensors: every malformed header is rejected with a one-line message naming the file") {
  const std::string data8(8, '\0');
  struct Case {
    const char* what;
    std::string bytes;
    const char* expect;
  };
  std::string huge_len(8, '\0');
  std::uint64_t big = 200'000'000;
  std::memcpy(huge_len.data(), &big, 8);
  std::string beyond(8, '\0');
  std::uint64_t len20 = 20;
  std::memcpy(beyond.data(), &len20, 8);
  beyond += "{}";
  const std::vector<Case> cases = {
      {"shorter than 8 bytes", std::string(5, '\0'), "fewer than the 8-byte header length"},
      {"header length above 100 MB", huge_len + "{}", "exceeds the limit of 100000000"},
      {"header length beyond the file", beyond, "reaches beyond the file"},
      {"invalid JSON", st_file("{\"a\": ", ""), "not valid JSON"},
      {"JSON not an object", st_file("[1, 2]", ""), "header is JSON array, expected an object"},
      {"invalid UTF-8 in JSON", st_file("{\"\xff\": 1}", ""), "not valid JSON"},
      {"unknown dtype", st_file(R"({"a":{"dtype":"X42","shape":[2],"data_offsets":[0,8]}})", data8), "unknown dtype 'X42'"},
      {"unsupported dtype", st_file(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", data8),
       "tensor 'a': dtype F16 is not supported"},
      {"BF16", st_file(R"({"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})", data8), "dtype BF16 is not supported"},
      {"dtype not a string", st_file(R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", data8), "expected a string"},
      {"negative shape", st_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8),
       "shape entry 0 is -2, expected >= 0"},
      {"float shape", st_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data8),
       "shape entry 0 is 2.0, expected an integer"},
      {"string shape", st_file(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", data8), "expected an integer"},
      {"shape not an array", st_file(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", data8),
       "expected an array of integers"},
      {"huge shape entry", st_file(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", data8),
       "expected an integer"},
      {"element count overflow", st_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8),
       "element count that overflows"},
      {"overflow hidden by a zero", st_file(R"({"a":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", data8),
       "element count that overflows"},
      {"byte count overflow", st_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})", data8),
       "byte count that overflows"},
      {"offsets: one number", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data8), "expected [begin, end]"},
      {"offsets: string", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", data8), "expected [begin, end]"},
      {"offsets: negative", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data8), "expected [begin, end]"},
      {"offsets: float", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", data8), "expected [begin, end]"},
      {"end before begin", st_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8), "end before begin"},
      {"outside the data", st_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data8),
       "reach beyond the data, which has 8 bytes"},
      {"byte length mismatch", st_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
       "hold 8 bytes, but shape (3,) of F32 needs 12"},
      {"overlap", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          std::string(12, '\0')),
       "tensor 'b': data_offsets [4, 12] overlap tensor 'a'"},
      {"gap", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                      std::string(20, '\0')),
       "tensor 'b': data_offsets begin at 12, leaving a gap of 4"},
      {"gap at the start", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')),
       "leaving a gap of 4 unused bytes after offset 0"},
      {"trailing bytes", st_file(kOneTensor, std::string(12, '\0')), "4 trailing bytes are unused"},
      {"duplicate tensor", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8),
       "duplicate key 'a' in the header (two tensors with one name)"},
      {"duplicate field", st_file(R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", data8),
       "duplicate key 'dtype'"},
      {"metadata not an object", st_file(R"({"__metadata__":["x"]})", ""), "__metadata__ is JSON array"},
      {"metadata value not a string", st_file(R"({"__metadata__":{"step":5}})", ""), "__metadata__ key 'step' holds JSON number"},
      {"entry not an object", st_file(R"({"a":[1,2]})", ""), "tensor 'a': entry is JSON array"},
      {"missing key", st_file(R"({"a":{"dtype":"F32","shape":[2]}})", data8), "tensor 'a': missing key 'data_offsets'"},
      {"unknown key", st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", data8), "unknown key 'extra'"},
      {"empty name", st_file(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8), "empty name"},
      {"deep nesting", st_file(R"({"__metadata__":{"k":[[[[[[[[[[1]]]]]]]]]]}})", ""), "nests deeper than 8"},
      {"long array", st_file(R"({"__metadata__":{"k":[)" + [] { std::string m = "0"; for (int k = 0; k < 64; ++k) m += ",0"; return m; }() + "]}}", ""),
       "more than 64 elements"},
      {"control characters in a name are escaped",
       st_file("{\"a\\nb\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", data8), "tensor 'a\\x0ab'"},
  };
  for (const Case& c : cases) {
    const std::string what = c.what;
    CAPTURE(what);
    std::string msg = parse_error(c.bytes);
    CAPTURE(msg);
    CHECK(msg.find(c.expect) != std::string::npos);
    CHECK(msg.find("safetensors file 'mem.safetensors'") == 0);
    CHECK(one_line(msg));
  }
  // Too many JSON values (a header of 250001 tiny metadata entries) is refused before it can eat memory.
  {
    std::string header = "{\"__metadata__\":{";
    for (int k = 0; k <= 250'000; ++k) header += (k ? ",\"" : "\"") + std::to_string(k) + "\":\"\"";
    header += "}}";
    std::string msg = parse_error(st_file(header, ""));
    CHECK(msg.find("more than 250000 JSON values") != std::string::npos);
  }
  // The valid baseline the cases were derived from parses.
  std::string ok = st_file(kOneTensor, data8);
  CHECK(parse_safetensors(ok.data(), ok.size(), "x").tensors.at("a").shape() == Shape{2});
  // An empty header object with no data is a valid file without tensors; zero-size tensors may sit anywhere.
  std::string empty = st_file("{}", "");
  CHECK(parse_safetensors(empty.data(), empty.size(), "x").tensors.empty());
  std::string zeros = st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F64","shape":[0,3],"data_offsets":[8,8]}})", data8);
  CHECK(parse_safetensors(zeros.data(), zeros.size(), "x").tensors.at("z").numel() == 0);
}

TEST_CASE("safetensors: files on disk that are missing or a directory or truncated") {
  io_test::TempDir dir;
  CHECK(error_of([&] { read_safetensors(dir.file("missing.safetensors")); }).find("cannot open: No such file") != std::string::npos);
  CHECK(error_of([&] { read_safetensors(dir.path); }).find("is a directory") != std::string::npos);
  std::map<std::string, Tensor> tensors = {{"a", Tensor::ones({4, 4})}, {"b", Tensor::ones({3})}};
  const std::string path = dir.file("full.safetensors");
  write_safetensors(path, tensors);
  const std::string full = io_test::read_bytes(path);
  // Every truncation point fails with an Error naming the file (never a crash, never a partial load).
  for (std::size_t n = 0; n < full.size(); ++n) {
    const std::string cut = dir.file("cut.safetensors");
    io_test::write_bytes(cut, full.substr(0, n));
    std::string msg = error_of([&] { read_safetensors(cut); });
    CAPTURE(n);
    CAPTURE(msg);
    CHECK(msg.find("safetensors file '" + cut + "'") == 0);
    CHECK(one_line(msg));
  }
}

TEST_CASE("safetensors: random corruption never crashes the reader") {
  std::map<std::string, Tensor> tensors = {{"transformer.wte.weight", Tensor::ones({5, 3})},
                                           {"transformer.ln_f.bias", Tensor::zeros({3})}};
  const std::string good = serialize_safetensors(tensors, {{"config", "{}"}});
  Rng rng(123);
  int rejected = 0, accepted = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng.below(4));
    for (int k = 0; k < flips; ++k) {
      const std::size_t at = rng.below(static_cast<std::uint32_t>(bytes.size()));
      bytes[at] = static_cast<char>(rng.below(256));
    }
    try {
      SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), "fuzz");
      ++accepted;  // e.g. a flipped data byte: still a valid file
      std::size_t total = 0;
      for (const auto& [n, t] : f.tensors) total += static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
      CHECK(total <= bytes.size());
    } catch (const Error& e) {
      ++rejected;
      CHECK(one_line(e.what()));
    }
  }
  CHECK(rejected > 0);
  CHECK(accepted > 0);
}

TEST_CASE("safetensors: check_finite names the first non-finite tensor") {
  std::map<std::string, Tensor> tensors = {{"a", Tensor::ones({3})}, {"b", Tensor::ones({2, 2})}, {"c", Tensor::ones({1})}};
  CHECK_NOTHROW(check_finite(tensors, "m.safetensors"));
  tensors["c"].set({0}, std::numeric_limits<double>::infinity());
  tensors["b"].set({1, 0}, std::nan(""));
  std::string msg = error_of([&] { check_finite(tensors, "m.safetensors"); });
  CHECK(msg == "m.safetensors: tensor 'b' has a non-finite value (nan) at flat index 2 of shape (2, 2)");
  tensors["b"].set({1, 0}, 1.0);
  CHECK(error_of([&] { check_finite(tensors, "m"); }).find("tensor 'c' has a non-finite value (inf)") != std::string::npos);
}

TEST_CASE("safetensors: SIGKILL in the middle of a write leaves the previous file intact") {
  io_test::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  std::map<std::string, Tensor> old_tensors = {{"w", Tensor::full({8, 8}, 1.25)}};
  write_safetensors(path, old_tensors, {{"step", "100"}});
  const std::string old_bytes = io_test::read_bytes(path);

  std::map<std::string, Tensor> new_tensors = {{"w", Tensor::full({64, 64}, -3.0)}, {"x", Tensor::ones({100})}};
  const std::size_t limit = 1000;  // dies inside the data of "w"
  REQUIRE(serialize_safetensors(new_tensors, {{"step", "200"}}).size() > limit);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::setenv("GRADLAB_FAULT_WRITE_BYTES", std::to_string(limit).c_str(), 1);
    try {
      write_safetensors(path, new_tensors, {{"step", "200"}});
    } catch (...) {
    }
    ::_exit(0);  // only reached if the fault injection did not fire
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  // The target is byte-identical to the old file and loads.
  CHECK(io_test::read_bytes(path) == old_bytes);
  SafetensorsFile f = read_safetensors(path);
  CHECK(f.metadata.at("step") == "100");
  CHECK(f.tensors.at("w").at({7, 7}) == 1.25);
  // The dead writer's temporary file holds exactly the bytes written before the kill, and is not loadable.
  const std::string temp = path + ".tmp." + std::to_string(child);
  REQUIRE(std::filesystem::exists(temp));
  CHECK(std::filesystem::file_size(temp) == limit);
  CHECK(error_of([&] { read_safetensors(temp); }).find("safetensors file") == 0);
  // A later write (no fault) replaces the file as usual.
  write_safetensors(path, new_tensors, {{"step", "200"}});
  CHECK(read_safetensors(path).metadata.at("step") == "200");
}

TEST_CASE("safetensors: an abandoned AtomicWriter removes its temporary file") {
  io_test::TempDir dir;
  const std::string path = dir.file("f.bin");
  io_test::write_bytes(path, "old");
  std::string temp;
  {
    AtomicWriter w(path);
    temp = w.temp_path();
    w.write("new content");
    CHECK(std::filesystem::exists(temp));
  }  // destroyed without commit(), as when an exception unwinds
  CHECK(!std::filesystem::exists(temp));
  CHECK(io_test::read_bytes(path) == "old");
  write_file_atomic(path, "new");
  CHECK(io_test::read_bytes(path) == "new");
}

}  // TEST_SUITE
