#pragma once
// Output-path protection, shared by the commands: no output of a command may overwrite one of its inputs or an
// existing checkpoint (a model or train_state file). A refusal is a gradlab::Error (exit code 2) that names the
// flag and both paths. Writing a new file, or over an earlier output of the same kind, is fine.
#include <string>
#include <vector>

namespace gradlab::cli {

// `output` (the value of --<flag>) must not be the same file as any input, nor an existing checkpoint file.
// Inputs may be files or checkpoint directories (then their model and train_state files count).
void check_output_file(const std::string& flag, const std::string& output, const std::vector<std::string>& inputs);

// For outputs named "<stem>.<anything>" (gradlab attn writes FILE.png, FILE.svg, FILE.npy, ...): no existing
// file of that form may be an input or a checkpoint.
void check_output_stem(const std::string& flag, const std::string& stem, const std::vector<std::string>& inputs);

// gradlab train --out DIR: DIR's files (model, train_state, log.csv and the step directories) must not be an
// input (--data), and a DIR that already holds a checkpoint may only be written by resuming it
// (`resume_dir` equivalent to DIR).
void check_train_output_dir(const std::string& out_dir, const std::vector<std::string>& inputs,
                            const std::string& resume_dir);

}  // namespace gradlab::cli
