#pragma once
// gradlab eval, sample and attn (cli/eval.cpp, cli/sample.cpp, cli/attn.cpp): the stream-taking forms that
// tests call, and the model loading they share.
//
//   gradlab eval   --model DIR [--data FILE | --task NAME] [--ctx T] [--window W] [--grads FILE]
//   gradlab sample --model DIR --prompt TEXT --tokens N [--temperature X] [--top_k K] [--seed S]
//   gradlab attn   --model DIR [--model DIR2 | --mask both] (--text TEXT | --example) --out FILE.png
//                  [--layers ...] [--heads ...] [--range a:b]
//
// Exit codes: 0 done, 1 runtime failure (e.g. a file that cannot be written), 2 bad usage or bad input (one
// line on `err`).
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "train/checkpoint.h"

namespace gradlab::cli {

int run_eval(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_sample(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_attn(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The evaluation rule as printed by `gradlab eval --help` (and quoted in the README).
extern const char* const kEvalRuleText;

// Writes "gradlab <command>: <message>" as one line (no double prefix when the message already carries it).
void print_error(std::ostream& err, const char* command, const std::exception& e);

// --model DIR: a checkpoint directory (its model.safetensors) or a model file. Throws one line naming the
// path when it does not exist or does not hold a valid model.
// A directory of either checkpoint layout works (train/checkpoint.h). A file without checksums loads with a
// note in info->notes.
std::unique_ptr<GPT> load_cli_model(const std::string& path, ModelInfo* info);
// Writes info.notes to err, one line each.
void print_notes(std::ostream& err, const ModelInfo& info);

// The BOS character the checkpoint directory's training data declared (train_state's data source: "bos", or
// '^' for bigram-backcopy); "" when it declares none or the path is not a directory with a train_state.
std::string declared_bos(const std::string& model_path);

}  // namespace gradlab::cli
