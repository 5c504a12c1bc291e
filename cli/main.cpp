// gradlab: the command-line program. main() only dispatches to the subcommands (cli/commands.h), which return
// exit codes and never call exit() themselves.
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <exception>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "tensor/cpu.h"
#include "tensor/error.h"

namespace {

const char* kUsage =
    "usage: gradlab <command> [flags]\n"
    "\n"
    "commands:\n"
    "  train    train a small GPT (causal mask or StableMask) on text or a position task\n"
    "  eval     evaluate a checkpoint on a text file or task\n"
    "  sample   generate text from a checkpoint\n"
    "  attn     draw a checkpoint's attention maps\n"
    "\n"
    "  gradlab <command> --help   flags of one command\n"
    "  gradlab --version          version and build features\n"
    "\n"
    "The start-up line (kernels, threads) goes to stderr when it is a terminal, or with --verbose.\n";

using Command = int (*)(const std::vector<std::string>&);

struct Entry {
  const char* name;
  Command run;
};
const Entry kCommands[] = {
    {"train", gradlab::cli::run_train},
    {"eval", gradlab::cli::run_eval},
    {"sample", gradlab::cli::run_sample},
    {"attn", gradlab::cli::run_attn},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "--version" || command == "version") {
    std::printf("%s\n", gradlab::build_info().c_str());
    return 0;
  }
  for (const Entry& e : kCommands) {
    if (command != e.name) continue;
    std::vector<std::string> args;
    bool verbose = false;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--verbose") == 0) verbose = true;  // for every command, so taken out here
      else args.emplace_back(argv[i]);
    }
    const bool help = [&] {
      for (const auto& a : args)
        if (a == "--help" || a == "-h") return true;
      return false;
    }();
    if (!help) {
      gradlab::cli::apply_threads_flag(args);
      // The start-up line (which kernels, how many threads) only for a person: a script sees errors alone.
      if (verbose || ::isatty(STDERR_FILENO)) gradlab::print_build_info(stderr);
    }
    try {
      return e.run(args);
    } catch (const gradlab::Error& err) {
      std::fprintf(stderr, "gradlab %s: %s\n", e.name, err.what());
      return 2;
    } catch (const std::exception& err) {
      std::fprintf(stderr, "gradlab %s: internal error: %s\n", e.name, err.what());
      return 1;
    }
  }
  std::fprintf(stderr, "gradlab: unknown command '%s' (commands: train, eval, sample, attn; see gradlab --help)\n",
               command.c_str());
  return 2;
}
