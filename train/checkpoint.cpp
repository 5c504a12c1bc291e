#include "train/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "train/safetensors.h"
#include "data/tasks.h"
#include "tensor/error.h"

namespace gradlab {

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

namespace {

// Up to max_chars of a metadata value, in double quotes and JSON-escaped: an error message stays one line
// whatever bytes a hostile file puts there.
std::string quoted(std::string_view text, std::size_t max_chars) {
  return nlohmann::json(std::string(text.substr(0, max_chars)))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::int64_t parse_int(const std::string& text, const std::string& what, const std::string& source) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end)
    throw_error(source, ": metadata '", what, "' is ", quoted(text, 40), ", expected an integer");
  return value;
}

std::uint64_t parse_u64(std::string_view text, const std::string& what, const std::string& source, int base = 10) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value, base);
  if (text.empty() || ec != std::errc() || ptr != end)
    throw_error(source, ": ", what, " is ", quoted(text, 40), ", expected an unsigned integer");
  return value;
}

// The "seed" of a train_config JSON as text ("" when absent), to tie a model file to the run that wrote it.
std::string seed_of(const std::string& train_config) {
  nlohmann::json j = nlohmann::json::parse(train_config, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("seed") || !j["seed"].is_number_unsigned()) return "";
  return std::to_string(j["seed"].get<std::uint64_t>());
}

const std::string& require_key(const std::map<std::string, std::string>& md, const std::string& key,
                               const std::string& source) {
  auto it = md.find(key);
  if (it == md.end()) throw_error(source, ": __metadata__ has no '", key, "'");
  return it->second;
}

// Re-throws any gradlab::Error from f with "<source>: " in front, so the message names the file.
template <typename F>
auto with_source(const std::string& source, const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(source + ": " + what + ": " + e.what());
  }
}

// JSON metadata nested deeper than this is refused before any parser sees it: the JSON readers recurse once per
// level (a 100,000-deep value overflowed the stack, fuzz/known-bugs), and no valid config or tokenizer nests
// deeper than 2.
constexpr int kMaxMetadataJsonDepth = 16;

void check_json_depth(const std::string& text, const std::string& key, const std::string& source) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        in_string = false;
      continue;
    }
    if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > kMaxMetadataJsonDepth)
        throw_error(source, ": metadata '", key, "' nests JSON deeper than ", kMaxMetadataJsonDepth, " levels");
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
}

// Refuses a file whose config describes a model far larger than the weights the file holds, before that model
// is built: otherwise a few bytes claiming n_embd = 65536 would make the loader allocate terabytes. The bound
// counts only tensors every config has (token embedding, learned positions, attention weights), so it never
// exceeds a valid file's weight count, and the model it admits is at most a few times the file's size.
void check_size_against_config(const std::string& path, const SafetensorsFile& file, const GPTConfig& c) {
  const double C = static_cast<double>(c.n_embd);
  double needed = static_cast<double>(c.vocab_size) * C + 4.0 * static_cast<double>(c.n_layer) * C * C;
  if (c.pos == PosKind::Learned) needed += static_cast<double>(c.block_size) * C;
  double held = 0.0;
  for (const auto& [name, t] : file.tensors) held += static_cast<double>(t.numel());
  if (held < needed)
    throw_error(path, ": holds ", static_cast<std::int64_t>(held), " weights, but its config (vocab ", c.vocab_size,
                ", n_layer ", c.n_layer, ", n_embd ", c.n_embd, ", block ", c.block_size, ") needs at least ",
                static_cast<std::int64_t>(needed));
}

std::unique_ptr<GPT> build_model(const std::string& path, SafetensorsFile& file, const GPTConfig& config,
                                 ModelInfo* info) {
  ModelInfo local;
  ModelInfo& mi = info ? *info : local;
  mi.config = config;
  mi.metadata = file.metadata;
  mi.tokenizer.reset();
  mi.task.clear();
  mi.step = -1;
  mi.checksummed = file.checksummed;
  if (auto it = file.metadata.find("tokenizer"); it != file.metadata.end()) {
    check_json_depth(it->second, "tokenizer", path);
    mi.tokenizer = with_source(path, "tokenizer", [&] { return Tokenizer::from_json(it->second); });
    if (mi.tokenizer->vocab_size() != config.vocab_size)
      throw_error(path, ": the tokenizer has ", mi.tokenizer->vocab_size(), " tokens but the config's vocab_size is ",
                  config.vocab_size);
  }
  if (auto it = file.metadata.find("task"); it != file.metadata.end()) {
    mi.task = it->second;
    auto task = with_source(path, "task", [&] { return make_task(mi.task, config.block_size); });
    if (task->vocab_size() != config.vocab_size)
      throw_error(path, ": task '", mi.task, "' has ", task->vocab_size(), " tokens but the config's vocab_size is ",
                  config.vocab_size);
  }
  if (auto it = file.metadata.find("step"); it != file.metadata.end()) {
    mi.step = parse_int(it->second, "step", path);
    if (mi.step < 0) throw_error(path, ": metadata 'step' is ", mi.step, ", expected >= 0");
  }
  check_finite(file.tensors, path);
  check_size_against_config(path, file, config);
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.reserve(file.tensors.size());
  for (auto& [name, t] : file.tensors)
    tensors.emplace_back(name, t.dtype() == DType::F32 ? t : t.to(DType::F32));
  // Check names and shapes against the config before building anything: a small file must not make us
  // allocate the huge model its config might claim.
  GPT::check_state_dict(config, tensors, path);
  auto model = std::make_unique<GPT>(config, 0);
  model->load_state_dict(tensors, path);
  return model;
}

}  // namespace

void save_model(const std::string& path, const GPT& model, const Tokenizer* tokenizer, const std::string& task,
                std::int64_t step, const std::map<std::string, std::string>& run) {
  std::map<std::string, Tensor> tensors;
  for (auto& [name, t] : model.state_dict()) tensors[name] = t.dtype() == DType::F32 ? t : t.to(DType::F32);
  std::map<std::string, std::string> metadata;
  metadata["format"] = kModelFormat;
  metadata["config"] = model.config().to_json();
  if (tokenizer) metadata["tokenizer"] = tokenizer->to_json();
  if (!task.empty()) metadata["task"] = task;
  if (step >= 0) metadata["step"] = std::to_string(step);
  for (const auto& [key, value] : run)
    if (!value.empty()) metadata[key] = value;
  write_safetensors(path, tensors, metadata);
}

std::unique_ptr<GPT> load_model(const std::string& path, ModelInfo* info) {
  SafetensorsFile file = read_safetensors(path);
  if (auto it = file.metadata.find("format"); it != file.metadata.end() && it->second != kModelFormat)
    throw_error(path, ": metadata 'format' is \"", it->second.substr(0, 40), "\", expected \"", kModelFormat, "\"");
  auto it = file.metadata.find("config");
  if (it == file.metadata.end())
    throw_error(path, ": __metadata__ has no 'config' (a gradlab model stores its GPTConfig there; for a file "
                      "saved elsewhere, give the config explicitly)");
  check_json_depth(it->second, "config", path);
  GPTConfig config = with_source(path, "config", [&] { return GPTConfig::from_json(it->second); });
  return build_model(path, file, config, info);
}

std::unique_ptr<GPT> load_model_with_config(const std::string& path, const GPTConfig& config, ModelInfo* info) {
  config.validate();
  SafetensorsFile file = read_safetensors(path);
  if (auto it = file.metadata.find("config"); it != file.metadata.end()) {
    check_json_depth(it->second, "config", path);
    GPTConfig stored = with_source(path, "config", [&] { return GPTConfig::from_json(it->second); });
    if (stored.to_json() != config.to_json())
      throw_error(path, ": its config ", stored.to_json(), " differs from the one given, ", config.to_json());
  }
  return build_model(path, file, config, info);
}

std::string rng_state_to_string(const Rng::State& s) {
  std::uint64_t spare_bits = 0;
  std::memcpy(&spare_bits, &s.spare, sizeof spare_bits);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%" PRIu64 " %" PRIu64 " %d %016" PRIx64, s.state, s.inc, s.has_spare ? 1 : 0,
                spare_bits);
  return buf;
}

Rng::State rng_state_from_string(const std::string& text, const std::string& source) {
  // "<state> <inc> <has_spare 0|1> <spare as 16 hex digits>"
  std::vector<std::string_view> parts;
  std::string_view rest(text);
  while (!rest.empty()) {
    std::size_t sp = rest.find(' ');
    parts.push_back(rest.substr(0, sp));
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  if (parts.size() != 4 || parts[3].size() != 16 || (parts[2] != "0" && parts[2] != "1"))
    throw_error(source, ": metadata 'rng' is ", quoted(text, 60),
                ", expected \"<state> <inc> <0|1> <16 hex digits>\"");
  Rng::State s{};
  s.state = parse_u64(parts[0], "the rng state", source);
  s.inc = parse_u64(parts[1], "the rng increment", source);
  s.has_spare = parts[2] == "1";
  const std::uint64_t bits = parse_u64(parts[3], "the rng spare", source, 16);
  std::memcpy(&s.spare, &bits, sizeof bits);
  if ((s.inc & 1u) == 0) throw_error(source, ": metadata 'rng' has an even increment, which PCG32 never uses");
  return s;
}

void save_train_state(const std::string& path, const TrainState& state) {
  std::map<std::string, std::string> metadata;
  metadata["format"] = kTrainStateFormat;
  metadata["step"] = std::to_string(state.step);
  metadata["adam_steps"] = std::to_string(state.adam_steps);
  metadata["rng"] = rng_state_to_string(state.rng);
  if (state.has_dropout_rng) metadata["dropout_rng"] = rng_state_to_string(state.dropout_rng);
  metadata["train_config"] = state.train_config;
  metadata["data"] = state.data;
  write_safetensors(path, state.optimizer, metadata);
}

TrainState load_train_state(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  const auto& md = file.metadata;
  const std::string& format = require_key(md, "format", path);
  if (format != kTrainStateFormat)
    throw_error(path, ": metadata 'format' is \"", format.substr(0, 40), "\", expected \"", kTrainStateFormat, "\"");
  TrainState s;
  s.checksummed = file.checksummed;
  s.step = parse_int(require_key(md, "step", path), "step", path);
  s.adam_steps = parse_int(require_key(md, "adam_steps", path), "adam_steps", path);
  if (s.step < 0 || s.adam_steps < 0) throw_error(path, ": negative step count");
  s.rng = rng_state_from_string(require_key(md, "rng", path), path);
  if (auto it = md.find("dropout_rng"); it != md.end()) {
    s.dropout_rng = rng_state_from_string(it->second, path);
    s.has_dropout_rng = true;
  }
  s.train_config = require_key(md, "train_config", path);
  s.data = require_key(md, "data", path);
  for (const auto& [name, t] : file.tensors)
    if (name.rfind("m.", 0) != 0 && name.rfind("v.", 0) != 0)
      throw_error(path, ": tensor '", name, "' is not an optimizer moment (expected names m.<param> or v.<param>)");
  check_finite(file.tensors, path);
  for (auto& [name, t] : file.tensors) s.optimizer[name] = t.dtype() == DType::F32 ? t : t.to(DType::F32);
  return s;
}

// ---- the checkpoint directory ------------------------------------------------------------------------------
//
//   DIR/latest                  -> steps/step-00000066         the published pair (a symlink)
//   DIR/model.safetensors       -> latest/model.safetensors    (symlinks, made once, so that readers of the
//   DIR/train_state.safetensors -> latest/train_state.safetensors    old layout's file names keep working)
//   DIR/steps/step-00000066/{model,train_state}.safetensors
//
// A save writes a new step directory in full (each file fsync'ed), renames it into steps/, and publishes it by
// renaming a new `latest` symlink over the old one: one rename, so a kill at any moment leaves `latest` naming
// either the previous complete pair or the new one. Only then are older step directories removed.

namespace {

constexpr const char* kLatestLink = "latest";
constexpr const char* kStepsDir = "steps";
constexpr const char* kPartialPrefix = ".partial-";

// Every step of a save is a fault-injection point (train/safetensors.h, GRADLAB_FAULT_SAVE_POINT).
void save_point() { fault_injection_point(); }

[[noreturn]] void fail_errno(const std::string& what, const std::string& path, int err) {
  throw_error("cannot ", what, " '", path, "': ", std::strerror(err));
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  if (::fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
    const int err = errno;
    ::close(fd);
    fail_errno("sync directory", dir, err);
  }
  ::close(fd);
}

void make_dir(const std::string& dir) {
  save_point();
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) fail_errno("create directory", dir, errno);
}

// Replaces `path` (a file or a symlink, never a directory) by a symlink to `target`, atomically.
void publish_symlink(const std::string& dir, const std::string& name, const std::string& target) {
  const std::string path = join_path(dir, name);
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(temp.c_str());
  save_point();
  if (::symlink(target.c_str(), temp.c_str()) != 0) fail_errno("create link", temp, errno);
  save_point();
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    fail_errno("publish", path, err);
  }
  fsync_dir(dir);
}

std::string read_link(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return "";
  return std::string(buf, static_cast<std::size_t>(n));
}

bool is_symlink(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

bool is_regular(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string step_dir_name(std::int64_t step) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

// A name in steps/ that is not the published one: step-N, or step-N.k when a pair of that step is published
// (a resumed run that saves the step it started from).
std::string fresh_step_name(const std::string& steps, std::int64_t step, const std::string& published) {
  const std::string base = step_dir_name(step);
  for (int k = 0;; ++k) {
    const std::string name = k == 0 ? base : base + "." + std::to_string(k);
    if (std::string(kStepsDir) + "/" + name == published) continue;
    std::error_code ec;
    std::filesystem::remove_all(join_path(steps, name), ec);  // an unpublished leftover
    return name;
  }
}

// The model and train_state links of the top level; a directory of the old layout (two regular files) is
// first moved under steps/ by hard links, so that at every moment both names give one consistent pair.
void ensure_top_level_links(const std::string& dir) {
  const std::string steps = join_path(dir, kStepsDir);
  const std::string model = join_path(dir, kModelFileName), state = join_path(dir, kTrainStateFileName);
  const bool legacy = !is_symlink(join_path(dir, kLatestLink)) && (is_regular(model) || is_regular(state));
  if (legacy) {
    const std::string stage = join_path(steps, std::string(kPartialPrefix) + "legacy." + std::to_string(::getpid()));
    std::error_code ec;
    std::filesystem::remove_all(stage, ec);
    make_dir(stage);
    for (const char* name : {kModelFileName, kTrainStateFileName}) {
      const std::string from = join_path(dir, name);
      if (!is_regular(from)) continue;
      save_point();
      if (::link(from.c_str(), join_path(stage, name).c_str()) != 0) fail_errno("link", from, errno);
    }
    fsync_dir(stage);
    const std::string name = "legacy";
    std::filesystem::remove_all(join_path(steps, name), ec);
    save_point();
    if (::rename(stage.c_str(), join_path(steps, name).c_str()) != 0) fail_errno("rename", stage, errno);
    fsync_dir(steps);
    publish_symlink(dir, kLatestLink, std::string(kStepsDir) + "/" + name);
  }
  for (const char* name : {kModelFileName, kTrainStateFileName}) {
    const std::string target = std::string(kLatestLink) + "/" + name;
    const std::string path = join_path(dir, name);
    if (is_symlink(path) && read_link(path) == target) continue;
    publish_symlink(dir, name, target);
  }
}

}  // namespace

void save_checkpoint(const std::string& dir, const GPT& model, const Tokenizer* tokenizer, const std::string& task,
                     const TrainState& state) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_error("cannot create directory '", dir, "': ", ec.message());
  const std::string steps = join_path(dir, kStepsDir);
  make_dir(steps);
  ensure_top_level_links(dir);
  const std::string published = read_link(join_path(dir, kLatestLink));
  const std::string name = fresh_step_name(steps, state.step, published);
  const std::string stage = join_path(steps, kPartialPrefix + name + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(stage, ec);
  make_dir(stage);
  save_train_state(join_path(stage, kTrainStateFileName), state);
  save_point();
  std::map<std::string, std::string> run;
  run["seed"] = seed_of(state.train_config);
  run["data"] = state.data;
  save_model(join_path(stage, kModelFileName), model, tokenizer, task, state.step, run);
  save_point();
  if (::rename(stage.c_str(), join_path(steps, name).c_str()) != 0) fail_errno("rename", stage, errno);
  fsync_dir(steps);
  publish_symlink(dir, kLatestLink, std::string(kStepsDir) + "/" + name);
  // Published: older pairs and leftovers of interrupted saves can go.
  for (const auto& entry : std::filesystem::directory_iterator(steps, ec)) {
    if (entry.path().filename() == name) continue;
    save_point();
    std::filesystem::remove_all(entry.path(), ec);
  }
}

std::vector<std::string> clean_stale_temporaries(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  auto sweep = [&](const std::string& folder, bool partials) {
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
      const std::string name = entry.path().filename().string();
      bool temp = partials && name.rfind(kPartialPrefix, 0) == 0;
      // "<one of our names>.tmp.<pid>": what an AtomicWriter or a link swap leaves when killed
      for (const char* ours : {kModelFileName, kTrainStateFileName, kLatestLink, "log.csv"}) {
        const std::string prefix = std::string(ours) + ".tmp.";
        if (name.rfind(prefix, 0) == 0 && name.size() > prefix.size() &&
            name.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
          temp = true;
      }
      if (!temp) continue;
      std::error_code rm;
      std::filesystem::remove_all(entry.path(), rm);
      if (!rm) removed.push_back(entry.path().string());
    }
  };
  sweep(dir, false);
  sweep(join_path(dir, kStepsDir), true);
  return removed;
}

CheckpointFiles checkpoint_files(const std::string& dir) {
  CheckpointFiles f;
  f.model = join_path(dir, kModelFileName);
  f.train_state = join_path(dir, kTrainStateFileName);
  // The standard links: read both files from the directory `latest` names now, once, so that a save
  // published between the two reads cannot give a mix.
  const std::string latest = read_link(join_path(dir, kLatestLink));
  if (latest.empty() || latest.find("..") != std::string::npos || latest.front() == '/') return f;
  for (auto [path, name] : {std::pair<std::string*, const char*>{&f.model, kModelFileName},
                            std::pair<std::string*, const char*>{&f.train_state, kTrainStateFileName}})
    if (is_symlink(*path) && read_link(*path) == std::string(kLatestLink) + "/" + name)
      *path = join_path(join_path(dir, latest), name);
  return f;
}

bool holds_checkpoint(const std::string& dir) {
  struct stat st {};
  return ::stat(join_path(dir, kModelFileName).c_str(), &st) == 0 ||
         ::stat(join_path(dir, kTrainStateFileName).c_str(), &st) == 0 || is_symlink(join_path(dir, kLatestLink));
}

LoadedCheckpoint load_checkpoint(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw_error("checkpoint '", dir, "': ", std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) throw_error("checkpoint '", dir, "': not a directory");
  const CheckpointFiles files = checkpoint_files(dir);
  LoadedCheckpoint c;
  c.state = load_train_state(files.train_state);
  c.model = load_model(files.model, &c.info);
  if (c.info.step != c.state.step)
    throw_error("checkpoint '", dir, "': model.safetensors is from step ", c.info.step,
                " but train_state.safetensors from step ", c.state.step,
                " (a save was interrupted between the two files); cannot resume from a mix");
  // The pair must come from one run: the model records the seed and data of the run that wrote it.
  if (auto it = c.info.metadata.find("seed"); it != c.info.metadata.end() && it->second != seed_of(c.state.train_config))
    throw_error("checkpoint '", dir, "': ", kTrainStateFileName, " is from a run with seed ",
                seed_of(c.state.train_config), " but ", kModelFileName, " from a run with seed ", it->second,
                "; cannot resume from a mix of two runs");
  if (auto it = c.info.metadata.find("data"); it != c.info.metadata.end() && it->second != c.state.data)
    throw_error("checkpoint '", dir, "': ", kTrainStateFileName, " was trained on data ", quoted(c.state.data, 120),
                " but ", kModelFileName, " on ", quoted(it->second, 120), "; cannot resume from a mix of two runs");
  if (!c.info.checksummed || !c.state.checksummed)
    c.notes.push_back("note: checkpoint '" + dir + "' was written before gradlab stored checksums; its tensors "
                      "were checked for structure and finiteness only");
  return c;
}

}  // namespace gradlab
