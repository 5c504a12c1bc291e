#include "hostile_util.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "cli/eval.h"
#include "cli/train.h"
#include "train/safetensors.h"

#include <cstdio>
#include <map>

namespace hostile {

TempDir::TempDir() {
  char pattern[] = "/tmp/gradlab_hostile_XXXXXX";
  char* made = ::mkdtemp(pattern);
  if (!made) throw std::runtime_error("mkdtemp failed");
  path = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  // a test may leave a file without permissions behind: give them back so that removal works for non-root
  std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
  std::filesystem::remove_all(path, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("hostile test: cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("hostile test: cannot write " + path);
}

int Run::err_lines() const { return static_cast<int>(std::count(err.begin(), err.end(), '\n')); }

Run train(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Run r;
  r.code = gradlab::cli::run_train(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

Run eval(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Run r;
  r.code = gradlab::cli::run_eval(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::string ascii_text(std::size_t n_chars) {
  static const std::string words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"};
  std::string text;
  std::size_t k = 0;
  while (text.size() < n_chars) {
    text += words[(k * 7 + k / 3) % 10];
    text += (k % 9 == 8) ? ".\n" : " ";
    ++k;
  }
  text.resize(n_chars);
  return text;
}

std::vector<std::string> tiny_flags() {
  return {"--n_layer", "1",          "--n_head", "2",    "--n_embd",     "8", "--block_size", "8",
          "--batch_size", "2",       "--eval_iters", "1", "--eval_interval", "0", "--progress", "none",
          "--threads", "1"};
}

namespace {

struct Reference {
  TempDir dir;
  std::string checkpoint, text;
  Reference() {
    text = dir.file("train.txt");
    write_file(text, ascii_text(2000));
    checkpoint = dir.file("ckpt");
    std::vector<std::string> args = tiny_flags();
    for (const char* a : {"--max_iters", "2", "--checkpoint_interval", "0"}) args.push_back(a);
    args.push_back("--data");
    args.push_back(text);
    args.push_back("--out");
    args.push_back(checkpoint);
    Run r = train(args);
    if (r.code != 0) throw std::runtime_error("hostile test: the reference training run failed: " + r.err);
  }
};

Reference& reference() {
  static Reference ref;
  return ref;
}

}  // namespace

const std::string& reference_checkpoint() { return reference().checkpoint; }
const std::string& reference_text_file() { return reference().text; }

void copy_checkpoint(const std::string& to_dir) {
  // The directory as `cp -a` would copy it: the step directory and the (relative) links of the layout.
  std::filesystem::create_directories(to_dir);
  std::filesystem::copy(reference_checkpoint(), to_dir,
                        std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks |
                            std::filesystem::copy_options::overwrite_existing);
}

SafetensorsParts SafetensorsParts::parse(const std::string& bytes) {
  if (bytes.size() < 8) throw std::runtime_error("hostile test: not a safetensors file");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  SafetensorsParts p;
  p.header = nlohmann::ordered_json::parse(bytes.substr(8, n));
  p.data = bytes.substr(8 + n);
  return p;
}

std::string SafetensorsParts::bytes() const {
  // A crafted file carries valid checksums (a forger recomputes them), so the deeper checks are the ones tested;
  // byte damage without new checksums is tested on the raw bytes.
  nlohmann::ordered_json h = header;
  if (h.contains("__metadata__") && h["__metadata__"].is_object() && h["__metadata__"].contains(gradlab::kSafetensorsChecksumKey)) {
    auto hex = [](std::uint32_t v) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%08x", v);
      return std::string(buf);
    };
    nlohmann::json sums = nlohmann::json::object();
    std::map<std::string, std::string> md;
    for (const auto& [key, value] : h.items()) {
      if (key == "__metadata__") {
        for (const auto& [k, v] : value.items())
          if (k != gradlab::kSafetensorsChecksumKey && v.is_string()) md[k] = v.get<std::string>();
        continue;
      }
      if (!value.is_object() || !value.contains("data_offsets") || !value["data_offsets"].is_array() ||
          value["data_offsets"].size() != 2 || !value["data_offsets"][0].is_number_unsigned() ||
          !value["data_offsets"][1].is_number_unsigned())
        continue;
      const auto b = value["data_offsets"][0].get<std::size_t>(), e = value["data_offsets"][1].get<std::size_t>();
      if (b <= e && e <= data.size()) sums[key] = hex(gradlab::crc32c(data.data() + b, e - b));
    }
    std::string md_bytes;
    for (const auto& [k, v] : md) md_bytes += k + '\0' + v + '\0';
    sums["__metadata__"] = hex(gradlab::crc32c(md_bytes.data(), md_bytes.size()));
    h["__metadata__"][gradlab::kSafetensorsChecksumKey] = sums.dump();
  }
  std::string text = h.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text + data;
}

std::pair<std::size_t, std::size_t> SafetensorsParts::range(const std::string& tensor) const {
  const auto& off = header.at(tensor).at("data_offsets");
  return {off.at(0).get<std::size_t>(), off.at(1).get<std::size_t>()};
}

}  // namespace hostile
