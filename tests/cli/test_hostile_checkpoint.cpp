// Hostile checkpoints, end to end: a real `gradlab train --out` directory whose model.safetensors (or
// train_state.safetensors) is damaged, handed to the commands that load it (`gradlab train --resume DIR` and
// `gradlab eval --model DIR`). tests/train (test_safetensors) checks the reader on hand-made byte strings; here the damage is done to
// the files the program itself wrote, and the check is on what the user sees: exit code 2, one line on stderr
// that names the file (and the tensor or dtype when there is one), nothing on stdout, and no file of the
// checkpoint touched.
// (Test names avoid commas: doctest.cmake cannot find the suite label of such names.)
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>

#include "hostile_util.h"
#include "train/checkpoint.h"
#include "nn/gpt.h"
#include "train/safetensors.h"

using namespace hostile;
using nlohmann::ordered_json;

namespace {

const char* kWte = "transformer.wte.weight";

// Every file of a checkpoint directory with its bytes, to prove that a refused load changed nothing.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    files[entry.path().filename().string()] =
        entry.is_regular_file() ? read_file(entry.path().string()) : std::string("<not a regular file>");
  return files;
}

// Damages model.safetensors of a fresh copy of the reference checkpoint with `damage` (bytes -> bytes), then
// runs resume and eval on it. Both must refuse with exit code 2 and one line containing every fragment.
void expect_refused(const std::string& what, const std::function<std::string(std::string)>& damage,
                    const std::vector<std::string>& fragments, const char* file = gradlab::kModelFileName) {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  const std::string path = dir + "/" + file;
  write_file(path, damage(read_file(path)));
  const auto before = snapshot(dir);

  std::vector<std::string> fragments_with_file = fragments;
  fragments_with_file.push_back(file);
  const bool model_file = std::string(file) == gradlab::kModelFileName;  // eval reads only the model file
  std::vector<Run> runs;
  runs.push_back(train({"--resume", dir, "--max_iters", "3"}));
  if (model_file) runs.push_back(eval({"--model", dir, "--data", reference_text_file()}));
  for (const Run& run : runs) {
    const Run* r = &run;
    INFO(what << (r == &runs[0] ? " (train --resume)" : " (eval --model)") << ": " << r->err);
    CHECK(r->code == 2);
    CHECK(r->err_lines() == 1);
    CHECK(r->out.empty());
    for (const std::string& f : fragments_with_file) CHECK(r->err.find(f) != std::string::npos);
  }
  CHECK(snapshot(dir) == before);
}

// The same file rebuilt through a change of its header (tensor entries and metadata) and data.
std::function<std::string(std::string)> edit(const std::function<void(SafetensorsParts&)>& change) {
  return [change](std::string bytes) {
    SafetensorsParts p = SafetensorsParts::parse(bytes);
    change(p);
    return p.bytes();
  };
}

// Replaces one metadata JSON string (config or tokenizer) by a changed copy.
void edit_metadata_json(SafetensorsParts& p, const std::string& key, const std::function<void(ordered_json&)>& change) {
  ordered_json value = ordered_json::parse(p.header["__metadata__"][key].get<std::string>());
  change(value);
  p.header["__metadata__"][key] = value.dump();
}

std::string little_endian_u64(std::uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

}  // namespace

TEST_SUITE("hostile") {

TEST_CASE("hostile checkpoint: the reference checkpoint itself loads and resumes") {
  // Without this, every refusal below could come from a checkpoint that never worked.
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  Run ev = eval({"--model", dir, "--data", reference_text_file()});
  INFO(ev.err);
  CHECK(ev.code == 0);
  Run resume = train({"--resume", dir, "--max_iters", "3"});
  INFO(resume.err);
  CHECK(resume.code == 0);
  CHECK(resume.out.find("\"step\":3") != std::string::npos);
}

TEST_CASE("hostile checkpoint: truncated model files at every structural boundary") {
  const std::string bytes = read_file(reference_checkpoint() + "/" + gradlab::kModelFileName);
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  const std::size_t cuts[] = {0, 5, 8, 8 + header_len / 2, 8 + header_len, 8 + header_len + 3, bytes.size() - 1};
  for (std::size_t cut : cuts) {
    CAPTURE(cut);
    expect_refused("truncated to " + std::to_string(cut) + " bytes", [cut](std::string b) { return b.substr(0, cut); },
                   {});
  }
  // and with bytes appended: the data no longer matches the header
  expect_refused("trailing bytes", [](std::string b) { return b + "junk"; }, {"trailing"});
}

TEST_CASE("hostile checkpoint: header length beyond the file and above 100 MB") {
  expect_refused("header beyond file", [](std::string b) { return little_endian_u64(b.size()) + b.substr(8); },
                 {"beyond the file"});
  expect_refused("header 2^40", [](std::string b) { return little_endian_u64(1ull << 40) + b.substr(8); },
                 {"exceeds the limit"});
  expect_refused("header 2^64-1", [](std::string b) { return little_endian_u64(~0ull) + b.substr(8); },
                 {"exceeds the limit"});
}

TEST_CASE("hostile checkpoint: broken header JSON") {
  expect_refused("first brace replaced", [](std::string b) {
    b[8] = 'x';
    return b;
  }, {"not valid JSON"});
  expect_refused("NUL inside the header", [](std::string b) {
    b.replace(20, 1, 1, '\0');  // replace(), not b[20]: GCC 12 cannot see that b is long enough and warns
    return b;
  }, {"not valid JSON"});
}

TEST_CASE("hostile checkpoint: an unsupported or unknown dtype is named") {
  expect_refused("F16", edit([](SafetensorsParts& p) { p.header[kWte]["dtype"] = "F16"; }), {"F16", kWte});
  expect_refused("unknown dtype", edit([](SafetensorsParts& p) { p.header[kWte]["dtype"] = "Q4_K"; }), {"Q4_K", kWte});
}

TEST_CASE("hostile checkpoint: a shape whose element count overflows") {
  expect_refused("overflow", edit([](SafetensorsParts& p) {
    p.header[kWte]["shape"] = ordered_json::array({1ull << 32, 1ull << 32, 16});
  }), {"overflows", kWte});
}

TEST_CASE("hostile checkpoint: data offsets outside the data / overlapping / leaving a gap") {
  expect_refused("beyond the data", edit([](SafetensorsParts& p) {
    auto [b, e] = p.range(kWte);
    p.header[kWte]["data_offsets"] = ordered_json::array({b + p.data.size(), e + p.data.size()});
  }), {"beyond the data", kWte});
  // Two tensors whose ranges overlap: the first tensor's range moved 4 bytes into its neighbour.
  expect_refused("overlap", edit([](SafetensorsParts& p) {
    std::string first, second;
    for (auto& [name, entry] : p.header.items())
      if (name != "__metadata__" && entry["data_offsets"][0] == 0) first = name;
    for (auto& [name, entry] : p.header.items())
      if (name != "__metadata__" && entry["data_offsets"][0] == p.header[first]["data_offsets"][1]) second = name;
    REQUIRE(!second.empty());
    auto [b, e] = p.range(second);
    p.header[second]["data_offsets"] = ordered_json::array({b - 4, e - 4});
  }), {"overlap"});
  expect_refused("gap", edit([](SafetensorsParts& p) {
    // every tensor shifted 4 bytes up, 4 new bytes at the start of the data
    for (auto& [name, entry] : p.header.items())
      if (name != "__metadata__")
        entry["data_offsets"] = ordered_json::array({entry["data_offsets"][0].get<std::size_t>() + 4,
                                                     entry["data_offsets"][1].get<std::size_t>() + 4});
    p.data = std::string(4, '\0') + p.data;
  }), {"gap"});
}

TEST_CASE("hostile checkpoint: duplicate / missing and extra tensors") {
  expect_refused("duplicate key", [](std::string b) {
    // a second entry with the name of the first one, spliced in textually (JSON libraries drop duplicates)
    SafetensorsParts p = SafetensorsParts::parse(b);
    const std::string name = p.header.begin().key();
    std::string header = p.header.dump();
    const std::string entry = "\"" + name + "\":" + p.header[name].dump();
    header.insert(1, entry + ",");
    while (header.size() % 8 != 0) header += ' ';
    return little_endian_u64(header.size()) + header + p.data;
  }, {"duplicate"});

  // Missing and extra tensors need a structurally valid file: rebuilt with the writer.
  auto rebuild = [](const std::function<void(std::map<std::string, gradlab::Tensor>&)>& change) {
    return [change](std::string b) {
      gradlab::SafetensorsFile f = gradlab::parse_safetensors(b.data(), b.size(), "reference");
      change(f.tensors);
      return gradlab::serialize_safetensors(f.tensors, f.metadata);
    };
  };
  const std::string ln_f = "transformer.ln_f.weight";
  expect_refused("missing", rebuild([&](auto& t) { t.erase(ln_f); }), {"missing tensor", ln_f});
  expect_refused("extra", rebuild([](auto& t) { t["transformer.h.7.attn.c_attn.weight"] = gradlab::Tensor::zeros({2, 2}); }),
                 {"unexpected tensor", "transformer.h.7.attn.c_attn.weight"});
  expect_refused("lm_head differs", rebuild([](auto& t) {
    gradlab::Tensor head = t.at("transformer.wte.weight").clone();
    head.data<float>()[0] += 1.0f;
    t["lm_head.weight"] = head;
  }), {"lm_head.weight"});
}

TEST_CASE("hostile checkpoint: the tied lm_head.weight alias is not an extra tensor") {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  copy_checkpoint(dir);
  const std::string path = dir + "/" + gradlab::kModelFileName;
  const std::string bytes = read_file(path);
  gradlab::SafetensorsFile f = gradlab::parse_safetensors(bytes.data(), bytes.size(), "reference");
  f.tensors["lm_head.weight"] = f.tensors.at(kWte).clone();  // the same values under the alias
  write_file(path, gradlab::serialize_safetensors(f.tensors, f.metadata));
  Run ev = eval({"--model", dir, "--data", reference_text_file()});
  INFO(ev.err);
  CHECK(ev.code == 0);
  // and under the alias alone (how PyTorch's safetensors keeps a tied embedding)
  f.tensors.erase(kWte);
  write_file(path, gradlab::serialize_safetensors(f.tensors, f.metadata));
  Run alone = eval({"--model", dir, "--data", reference_text_file()});
  INFO(alone.err);
  CHECK(alone.code == 0);
  // the same model, so the same loss
  CHECK(ordered_json::parse(alone.out)["loss"] == ordered_json::parse(ev.out)["loss"]);
}

TEST_CASE("hostile checkpoint: shapes that disagree with the config") {
  expect_refused("wte one column wider", [](std::string b) {
    gradlab::SafetensorsFile f = gradlab::parse_safetensors(b.data(), b.size(), "reference");
    const gradlab::Shape s = f.tensors.at(kWte).shape();
    f.tensors[kWte] = gradlab::Tensor::zeros({s[0], s[1] + 1});
    return gradlab::serialize_safetensors(f.tensors, f.metadata);
  }, {kWte, "shape"});
  expect_refused("config says 2 layers", edit([](SafetensorsParts& p) {
    edit_metadata_json(p, "config", [](ordered_json& c) { c["n_layer"] = 2; });
  }), {"missing tensor", "transformer.h.1."});
  expect_refused("config says width 16", edit([](SafetensorsParts& p) {
    edit_metadata_json(p, "config", [](ordered_json& c) { c["n_embd"] = 16; });
  }), {"config"});
}

TEST_CASE("hostile checkpoint: a config that claims a huge model is refused without building it") {
  // Largest widths the config allows: building the model first would ask for terabytes.
  expect_refused("huge config", edit([](SafetensorsParts& p) {
    edit_metadata_json(p, "config", [](ordered_json& c) {
      c["n_embd"] = 65536;
      c["n_head"] = 64;
      c["n_layer"] = 1024;
    });
  }), {"config"});
}

TEST_CASE("hostile checkpoint: broken metadata is named") {
  expect_refused("no config", edit([](SafetensorsParts& p) { p.header["__metadata__"].erase("config"); }), {"config"});
  expect_refused("config not JSON", edit([](SafetensorsParts& p) { p.header["__metadata__"]["config"] = "{n_layer: 1"; }),
                 {"config"});
  expect_refused("unknown config key", edit([](SafetensorsParts& p) {
    edit_metadata_json(p, "config", [](ordered_json& c) { c["n_experts"] = 8; });
  }), {"n_experts"});
  expect_refused("config value deeply nested", edit([](SafetensorsParts& p) {
    p.header["__metadata__"]["config"] = "{\"n_layer\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  }), {"config"});
  expect_refused("tokenizer value deeply nested", edit([](SafetensorsParts& p) {
    p.header["__metadata__"]["tokenizer"] =
        "{\"kind\": \"char\", \"vocab\": [10, " + std::string(100000, '[') + std::string(100000, ']') + "]}";
  }), {"tokenizer"});
  expect_refused("wrong format", edit([](SafetensorsParts& p) { p.header["__metadata__"]["format"] = "pt"; }),
                 {"format"});
  expect_refused("tokenizer of another size", edit([](SafetensorsParts& p) {
    edit_metadata_json(p, "tokenizer", [](ordered_json& t) { t["vocab"].erase(t["vocab"].size() - 1); });
  }), {"tokenizer"});
  expect_refused("metadata value not a string", edit([](SafetensorsParts& p) { p.header["__metadata__"]["step"] = 2; }),
                 {"__metadata__"});
  expect_refused("negative step", edit([](SafetensorsParts& p) { p.header["__metadata__"]["step"] = "-4"; }), {"step"});
}

TEST_CASE("hostile checkpoint: non-finite weights are named with their tensor") {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    CAPTURE(bad);
    expect_refused("non-finite", edit([bad](SafetensorsParts& p) {
      auto [b, e] = p.range(kWte);
      REQUIRE(e - b >= 3 * sizeof(float));
      std::memcpy(p.data.data() + b + 2 * sizeof(float), &bad, sizeof bad);  // the third value
    }), {"non-finite", kWte});
  }
}

TEST_CASE("hostile checkpoint: model file replaced by a directory or missing or empty") {
  for (const char* kind : {"directory", "missing", "empty"}) {
    TempDir tmp;
    const std::string dir = tmp.file("ckpt");
    copy_checkpoint(dir);
    const std::string path = dir + "/" + gradlab::kModelFileName;
    std::filesystem::remove(path);
    if (std::string(kind) == "directory") std::filesystem::create_directory(path);
    if (std::string(kind) == "empty") write_file(path, "");
    for (const Run& r : {train({"--resume", dir}), eval({"--model", dir, "--data", reference_text_file()})}) {
      INFO(kind << ": " << r.err);
      CHECK(r.code == 2);
      CHECK(r.err_lines() == 1);
      CHECK(r.err.find(gradlab::kModelFileName) != std::string::npos);
    }
  }
}

TEST_CASE("hostile checkpoint: a damaged train_state.safetensors stops --resume and names that file") {
  using gradlab::kTrainStateFileName;
  expect_refused("train state truncated", [](std::string b) { return b.substr(0, b.size() / 2); }, {},
                 kTrainStateFileName);
  expect_refused("train state NaN moment", edit([](SafetensorsParts& p) {
    std::string name;
    for (auto& [n, entry] : p.header.items())
      if (n.rfind("m.", 0) == 0) name = n;
    REQUIRE(!name.empty());
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(p.data.data() + p.range(name).first, &nan, sizeof nan);
  }), {"non-finite"}, kTrainStateFileName);
  expect_refused("train state bad rng", edit([](SafetensorsParts& p) { p.header["__metadata__"]["rng"] = "1 2 3"; }),
                 {"rng"}, kTrainStateFileName);
  // A value with line breaks is quoted JSON-escaped, so the error stays on one line.
  expect_refused("train state multi-line rng",
                 edit([](SafetensorsParts& p) { p.header["__metadata__"]["rng"] = "1\n2\r\n3 4"; }),
                 {"rng", "\\n"}, kTrainStateFileName);
  expect_refused("train state multi-line rng number",
                 edit([](SafetensorsParts& p) { p.header["__metadata__"]["rng"] = "1\n2 3 0 0123456789abcdef"; }),
                 {"rng state"}, kTrainStateFileName);
  expect_refused("train state data not JSON", edit([](SafetensorsParts& p) { p.header["__metadata__"]["data"] = "[[["; }),
                 {"data"}, kTrainStateFileName);
}

}  // TEST_SUITE
