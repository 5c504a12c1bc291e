#pragma once
// Checkpoints: a directory holding
//
//   model.safetensors        F32 tensors under nanoGPT names (GPT::state_dict), and in "__metadata__":
//                              "format":    "gradlab-1"
//                              "config":    GPTConfig::to_json()
//                              "tokenizer": Tokenizer::to_json()     (text models)
//                              "task":      "position-index", ...     (models trained on a position task)
//                              "step":      optimizer steps taken     (written by training; optional)
//   train_state.safetensors  what resuming needs besides the weights:
//                              tensors "m.<param>", "v.<param>": the AdamW moments (F32)
//                              "__metadata__": "format": "gradlab-train-1", "step", "adam_steps",
//                              "rng": the data Rng's state, "train_config": the training settings (JSON),
//                              "data": where the data came from (JSON).
//
// Why metadata strings for the step and the RNG state: safetensors here carries F32/F64 only, and a 64-bit
// integer (the PCG32 state) does not fit a float exactly. The RNG state is written as decimal integers and the
// Box-Muller spare as the exact bit pattern of its double in hex, so it round-trips bit for bit.
//
// Each file is written atomically (train/safetensors.h: temporary file, fsync, rename) and carries per-tensor
// checksums. A checkpoint directory publishes the two as one pair (save_checkpoint). Both carry the step, and the
// model the run's seed and data; a pair whose files disagree is refused on resume, rather than resuming from a mix.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/optim.h"
#include "data/tokenizer.h"
#include "tensor/rng.h"

namespace gradlab {

constexpr const char* kModelFileName = "model.safetensors";
constexpr const char* kTrainStateFileName = "train_state.safetensors";
constexpr const char* kModelFormat = "gradlab-1";
constexpr const char* kTrainStateFormat = "gradlab-train-1";

// What a model file says about itself.
struct ModelInfo {
  GPTConfig config;
  std::optional<Tokenizer> tokenizer;  // text models
  std::string task;                     // position-task models ("" otherwise)
  std::int64_t step = -1;               // -1 when the file does not say
  bool checksummed = false;             // the file carried per-tensor checksums (and they matched)
  std::map<std::string, std::string> metadata;
  std::vector<std::string> notes;       // one-line notes for the user (filled by the CLI's loader)
};

// Writes model.safetensors at `path` (atomically). tokenizer may be null (then `task` should name the task).
// `run`: more metadata (a checkpoint's "seed" and "data", which tie the model to its train_state).
void save_model(const std::string& path, const GPT& model, const Tokenizer* tokenizer, const std::string& task = "",
                std::int64_t step = -1, const std::map<std::string, std::string>& run = {});

// Reads and validates a model file completely: the safetensors structure, the metadata (format, config,
// tokenizer), every tensor's name and shape against the config (GPT::load_state_dict) and finiteness.
// Every problem is one gradlab::Error line naming the file.
std::unique_ptr<GPT> load_model(const std::string& path, ModelInfo* info = nullptr);
// For files without gradlab's metadata (e.g. saved by nanoGPT's PyTorch code with safetensors' save_model):
// the config is given; a "config" in the file's metadata, if any, must agree with it.
std::unique_ptr<GPT> load_model_with_config(const std::string& path, const GPTConfig& config,
                                            ModelInfo* info = nullptr);

// The resumable part of training.
struct TrainState {
  std::int64_t step = 0;        // optimizer steps completed (= the next iteration to run)
  std::int64_t adam_steps = 0;  // AdamW's own counter (equal to step unless steps were skipped)
  Rng::State rng{};             // the data sampler's Rng
  bool has_dropout_rng = false; // files written before it was saved lack it
  Rng::State dropout_rng{};     // the model's dropout Rng
  std::map<std::string, Tensor> optimizer;  // "m.<param>", "v.<param>"
  std::string train_config;     // JSON (train/trainer.h TrainConfig::to_json)
  std::string data;             // JSON describing the data source
  bool checksummed = false;     // (on load) the file carried checksums
};

void save_train_state(const std::string& path, const TrainState& state);
TrainState load_train_state(const std::string& path);  // validates the structure and finiteness

// The exact text forms used for the RNG state (exposed for tests).
std::string rng_state_to_string(const Rng::State& s);
Rng::State rng_state_from_string(const std::string& text, const std::string& source);

// A whole checkpoint directory, saved as a pair atomically (see checkpoint.cpp for the layout: a step directory
// published by renaming one `latest` symlink; model.safetensors and train_state.safetensors at the top level are
// links into it). Creates the directory. A directory of the old layout (two plain files) is converted.
void save_checkpoint(const std::string& dir, const GPT& model, const Tokenizer* tokenizer, const std::string& task,
                     const TrainState& state);
// The two files a checkpoint directory holds now, read through `latest` once (both layouts).
struct CheckpointFiles {
  std::string model, train_state;
};
CheckpointFiles checkpoint_files(const std::string& dir);
// Whether `dir` holds a checkpoint (of either layout) that a new save would replace.
bool holds_checkpoint(const std::string& dir);
// Removes what interrupted saves left in `dir` (temporary files, unpublished step directories); returns their
// paths. Only for the directory's lock holder.
std::vector<std::string> clean_stale_temporaries(const std::string& dir);
// Loads both files of a directory and checks that they are one pair: the same step, and (for files that record
// them) the same seed and data.
struct LoadedCheckpoint {
  std::unique_ptr<GPT> model;
  ModelInfo info;
  TrainState state;
  std::vector<std::string> notes;  // one-line notes for the user (e.g. a checkpoint without checksums)
};
LoadedCheckpoint load_checkpoint(const std::string& dir);

// "dir/name", tolerant of a trailing slash.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace gradlab
