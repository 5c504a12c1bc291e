#pragma once
// Shared helpers of the training tests: tiny models, small data, temporary directories, child processes.
#include <string>
#include <vector>

#include "data/dataset.h"
#include "nn/gpt.h"
#include "train/trainer.h"

namespace train_test {

// A fresh empty directory under /tmp, removed by the destructor.
struct TempDir {
  TempDir();
  ~TempDir();
  std::string path;
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// The built-in grammar corpus, small (20k characters), char tokenizer. Built once per process.
const gradlab::TextDataset& small_grammar();

// A tiny model for the small grammar: 2 layers, 2 heads, width 32, block 32.
gradlab::GPTConfig tiny_config(const std::string& mask = "causal");

// A quiet training config for fast tests.
gradlab::TrainConfig tiny_train_config(std::int64_t max_iters, const std::string& out_dir = "");

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);
bool file_exists(const std::string& path);

// Runs `gradlab train <args>` in a child process (this test program re-executed on its helper test case),
// with extra environment variables "NAME=value". stdout goes to stdout_path. Returns the child's pid.
int spawn_train(const std::vector<std::string>& args, const std::vector<std::string>& env, const std::string& stdout_path);
// Waits for the child; returns the raw wait status.
int wait_child(int pid);

// The CLI flags of the tiny model/data for run_train.
std::vector<std::string> tiny_cli_args();

}  // namespace train_test
