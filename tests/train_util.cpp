#include "train_util.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "data/grammar.h"

namespace train_test {

TempDir::TempDir() {
  char templ[] = "/tmp/gradlab_train_test_XXXXXX";
  char* p = ::mkdtemp(templ);
  if (!p) throw std::runtime_error("mkdtemp failed");
  path = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

const gradlab::TextDataset& small_grammar() {
  static const std::unique_ptr<gradlab::TextDataset> data = [] {
    gradlab::GrammarOptions opt;
    opt.target_chars = 20'000;
    return gradlab::make_grammar_dataset(opt);
  }();
  return *data;
}

gradlab::GPTConfig tiny_config(const std::string& mask) {
  gradlab::GPTConfig c;
  c.vocab_size = small_grammar().vocab_size();
  c.block_size = 32;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 32;
  c.mask = mask;
  return c;
}

gradlab::TrainConfig tiny_train_config(std::int64_t max_iters, const std::string& out_dir) {
  gradlab::TrainConfig t;
  t.batch_size = 4;
  t.max_iters = max_iters;
  t.eval_interval = 0;
  t.eval_iters = 2;
  t.schedule.learning_rate = 1e-2;
  t.schedule.min_lr = 1e-3;
  t.schedule.warmup_iters = std::min<std::int64_t>(2, max_iters);
  t.schedule.lr_decay_iters = max_iters;
  t.out_dir = out_dir;
  t.progress = gradlab::Progress::Mode::Quiet;
  return t;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

std::vector<std::string> tiny_cli_args() {
  return {"--n_layer", "1", "--n_head", "2", "--n_embd", "16", "--block_size", "16", "--batch_size", "4",
          "--eval_iters", "2", "--eval_interval", "0", "--progress", "none", "--threads", "1"};
}

int spawn_train(const std::vector<std::string>& args, const std::vector<std::string>& env,
                const std::string& stdout_path) {
  // The child is this very program, run on its helper test case, which calls run_train with the words in
  // GRADLAB_TRAIN_CHILD_ARGS (separated by \x1f). fork + exec at once: nothing of this process's threads is
  // used in the child.
  std::string joined;
  for (const auto& a : args) joined += a + '\x1f';
  std::vector<std::string> env_strings = env;
  env_strings.push_back("GRADLAB_TRAIN_CHILD_ARGS=" + joined);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    for (auto& e : env_strings) ::putenv(e.data());
    int fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::close(fd);
    }
    const char* argv[] = {"/proc/self/exe", "--test-case=train child process helper", "--no-version=true", nullptr};
    ::execv("/proc/self/exe", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  return pid;
}

int wait_child(int pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

}  // namespace train_test
