#include "cli/outputs.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "train/checkpoint.h"
#include "tensor/error.h"

namespace gradlab::cli {

namespace {

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino; }
};

bool file_id(const std::string& path, FileId& id) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  id = {st.st_dev, st.st_ino};
  return true;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The files an input stands for: itself, or a checkpoint directory's model and train_state (both layouts).
std::vector<std::string> input_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    if (in.empty()) continue;
    if (!is_dir(in)) {
      files.push_back(in);
      continue;
    }
    const CheckpointFiles f = checkpoint_files(in);
    files.push_back(f.model);
    files.push_back(f.train_state);
    files.push_back(join_path(in, kModelFileName));
    files.push_back(join_path(in, kTrainStateFileName));
  }
  return files;
}

// The "format" of a gradlab checkpoint file ("gradlab-1" model, "gradlab-train-1" train state), read from the
// header only; "" for anything else.
std::string checkpoint_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char len[8];
  if (!in.read(reinterpret_cast<char*>(len), 8)) return "";
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n == 0 || n > 100'000'000) return "";
  std::string header(static_cast<std::size_t>(n), '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(n))) return "";
  const nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("__metadata__") || !j["__metadata__"].is_object()) return "";
  const auto& md = j["__metadata__"];
  if (!md.contains("format") || !md["format"].is_string()) return "";
  const std::string format = md["format"].get<std::string>();
  return format == kModelFormat || format == kTrainStateFormat ? format : "";
}

void check_one(const std::string& flag, const std::string& output, const std::vector<std::string>& files) {
  FileId out_id;
  if (!file_id(output, out_id)) return;  // a new file
  for (const std::string& f : files) {
    FileId in_id;
    if (file_id(f, in_id) && in_id == out_id)
      throw_error("--", flag, " '", output, "' would overwrite the input '", f,
                  "'; choose another output path");
  }
  const std::string format = checkpoint_format(output);
  if (!format.empty())
    throw_error("--", flag, " '", output, "' would overwrite a checkpoint file (format ", format,
                "); choose another output path");
}

}  // namespace

void check_output_file(const std::string& flag, const std::string& output, const std::vector<std::string>& inputs) {
  check_one(flag, output, input_files(inputs));
}

void check_output_stem(const std::string& flag, const std::string& stem, const std::vector<std::string>& inputs) {
  const std::filesystem::path stem_path(stem);
  const std::filesystem::path parent = stem_path.parent_path().empty() ? "." : stem_path.parent_path();
  const std::string prefix = stem_path.filename().string() + ".";
  const std::vector<std::string> files = input_files(inputs);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) check_one(flag, (stem_path.parent_path() / name).string(), files);
  }
}

void check_train_output_dir(const std::string& out_dir, const std::vector<std::string>& inputs,
                            const std::string& resume_dir) {
  if (!is_dir(out_dir)) return;  // created fresh: nothing in it can be an input
  std::error_code ec;
  const bool resuming_here = !resume_dir.empty() && std::filesystem::equivalent(resume_dir, out_dir, ec);
  // Resuming in place replaces the checkpoint it read by a new pair: that is the point, not an overwrite.
  std::vector<std::string> others;
  for (const std::string& in : inputs) {
    std::error_code same;
    if (!(resuming_here && std::filesystem::equivalent(in, resume_dir, same))) others.push_back(in);
  }
  const std::vector<std::string> files = input_files(others);
  // What the run writes in DIR.
  std::vector<std::string> outputs = {join_path(out_dir, kModelFileName), join_path(out_dir, kTrainStateFileName),
                                      join_path(out_dir, "log.csv")};
  const CheckpointFiles current = checkpoint_files(out_dir);
  outputs.push_back(current.model);
  outputs.push_back(current.train_state);
  for (const std::string& out : outputs) {
    FileId out_id;
    if (!file_id(out, out_id)) continue;
    for (const std::string& f : files) {
      FileId in_id;
      if (file_id(f, in_id) && in_id == out_id)
        throw_error("--out '", out_dir, "': the run would overwrite its input '", f, "' (it is '", out,
                    "'); choose another output directory");
    }
  }
  if (!resuming_here && holds_checkpoint(out_dir))
    throw_error("--out '", out_dir, "' already holds a checkpoint (", kModelFileName, ", ", kTrainStateFileName,
                "); continue it with --resume '", out_dir, "', or choose another output directory");
}

}  // namespace gradlab::cli
