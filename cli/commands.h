#pragma once
// The subcommands of the gradlab program. Each takes the words after its name, returns the process exit code
// (0 success, 1 runtime failure, 2 bad usage or bad input, 130 interrupted) and never calls exit(), so tests
// can call it directly.
#include <string>
#include <vector>

namespace gradlab::cli {

int run_train(const std::vector<std::string>& args);   // cli/train.cpp
int run_eval(const std::vector<std::string>& args);    // evaluation of a checkpoint
int run_sample(const std::vector<std::string>& args);  // text generation from a checkpoint
int run_attn(const std::vector<std::string>& args);    // attention pictures

}  // namespace gradlab::cli
