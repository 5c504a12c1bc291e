#pragma once
// gradlab train: trains a small GPT on the built-in grammar corpus, a text file or a position task.
//
//   gradlab train [--data FILE | --task NAME] --mask causal|stablemask [config flags] --max_iters N --out DIR
//   gradlab train --resume DIR [--max_iters N]
//
// Output: progress and messages on stderr; on stdout, as the last line, one JSON object
//   {"iters":..,"tokens":..,"seconds":..,"tokens_per_second":..,"train_loss":..,"val_loss":..,...}
// tokens_per_second counts batch_size * block_size * gradient_accumulation_steps per optimizer step, over this
// run's steps after its first 5 (warm-up) steps.
// Exit codes: 0 done, 1 stopped by a non-finite loss/gradient or a runtime failure, 2 bad usage or bad input
// (one line on stderr; nothing in the output directory is touched), 130 interrupted by Ctrl-C (after writing a
// checkpoint).
#include <iosfwd>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace gradlab::cli {

// As run_train, writing the JSON line to `out` and messages to `err` (the progress bar always goes to stderr).
int run_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gradlab::cli
