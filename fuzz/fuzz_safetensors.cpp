// Fuzz target: the checkpoint reader.
//
// Any bytes go to parse_safetensors (the validation read_safetensors applies to a file). The only acceptable
// outcomes are a gradlab::Error with a one-line message, or a file whose tensors exactly tile the data region.
// Anything else (a sanitizer report, another exception type, an abort) is a finding.
// Bytes that parse are then
//   - written back with serialize_safetensors and parsed again: the same tensors, bit for bit;
//   - loaded as a model with load_model (what `gradlab eval/sample/attn` and `--resume` call) from an in-memory
//     file, which adds the metadata checks (format, config, tokenizer, task, step), the shape checks against
//     the config and the finiteness check.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fuzz/fuzz_common.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"
#include "tensor/error.h"

using namespace gradlab;
using gradlab_fuzz::fail;

namespace {

std::size_t tensor_bytes(const Tensor& t) { return static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()); }

const void* tensor_data(const Tensor& t) {
  return t.dtype() == DType::F32 ? static_cast<const void*>(t.data<float>()) : static_cast<const void*>(t.data<double>());
}

void check_round_trip(const SafetensorsFile& file) {
  std::string bytes;
  try {
    bytes = serialize_safetensors(file.tensors, file.metadata);
  } catch (const Error& e) {
    fail("a parsed file cannot be written back", e.what());
  }
  SafetensorsFile again;
  try {
    again = parse_safetensors(bytes.data(), bytes.size(), "round-trip");
  } catch (const Error& e) {
    fail("a file written by serialize_safetensors does not parse", e.what());
  }
  if (again.metadata != file.metadata) fail("metadata changed in a round trip", "");
  if (again.tensors.size() != file.tensors.size()) fail("tensor count changed in a round trip", "");
  for (const auto& [name, t] : file.tensors) {
    auto it = again.tensors.find(name);
    if (it == again.tensors.end()) fail("a tensor vanished in a round trip", name);
    const Tensor& u = it->second;
    if (u.shape() != t.shape() || u.dtype() != t.dtype()) fail("shape or dtype changed in a round trip", name);
    if (std::memcmp(tensor_data(t), tensor_data(u), tensor_bytes(t)) != 0) fail("data changed in a round trip", name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  SafetensorsFile file;
  try {
    file = parse_safetensors(data, size, "fuzz.safetensors");
  } catch (const Error& e) {
    gradlab_fuzz::check_error_message(e.what());
    return 0;
  }
  // The tensors tile the data region exactly, so their byte counts add up to at most the input size.
  std::size_t total = 0;
  for (const auto& [name, t] : file.tensors) {
    if (!t.is_contiguous()) fail("a parsed tensor is not contiguous", name);
    if (t.dtype() != DType::F32 && t.dtype() != DType::F64) fail("a parsed tensor is neither F32 nor F64", name);
    total += tensor_bytes(t);
  }
  if (total > size) fail("parsed tensors hold more bytes than the input", std::to_string(total));
  check_round_trip(file);

  if (!file.metadata.count("config")) return 0;  // load_model refuses it at once; nothing more to learn
  gradlab_fuzz::MemFile mem(data, size);
  try {
    ModelInfo info;
    auto model = load_model(mem.path, &info);
    if (!model) fail("load_model returned null without an error", "");
  } catch (const Error& e) {
    gradlab_fuzz::check_error_message(e.what(), /*strict=*/false);
  }
  return 0;
}
