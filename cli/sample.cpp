// gradlab sample: KV-cached, seeded text generation from a checkpoint (train/generate.h).
#include <algorithm>
#include <iostream>
#include <limits>

#include "cli/args.h"
#include "cli/eval.h"
#include "train/diagnose.h"
#include "train/generate.h"
#include "tensor/cpu.h"
#include "tensor/error.h"

namespace gradlab::cli {

int run_sample(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  ArgParser a("gradlab sample", "Generate text from a checkpoint (KV cache, seeded).");
  std::unique_ptr<GPT> model;
  ModelInfo info;
  std::vector<std::int32_t> prompt;
  SampleOptions so;
  std::string prompt_text;
  try {
    a.add_string("model", "", "checkpoint directory (from gradlab train --out) or a model.safetensors", "DIR")
        .required();
    a.add_string("prompt", "", "the text to continue (every character must be in the model's vocabulary)", "TEXT")
        .required();
    a.add_int("tokens", 200, 0, 1 << 24, "new tokens to generate");
    a.add_double("temperature", 1.0, 0.0, 100.0, "divide the logits by this (0: greedy, always the most likely)");
    a.add_int("top_k", 0, 0, 1 << 24, "sample among the k most likely tokens only (0: all)");
    a.add_int("seed", 1337, 0, std::numeric_limits<std::int64_t>::max(), "seed of the sampler");
    a.add_int("threads", 0, 0, 1024, "threads (0: all the machine offers)");
    a.epilog(
        "Output: the prompt followed by the generated text on stdout. Positions are absolute; for rope, alibi, "
        "sinusoidal and none the KV cache keeps the block_size most recent tokens, learned positions re-read the last block_size "
        "tokens once the text is longer. The same model, prompt, flags and seed give the same text.");
    a.parse(args);
    if (a.help_requested()) {
      out << a.help();
      return 0;
    }
    if (a.get_int64("threads") > 0) set_num_threads(static_cast<int>(a.get_int64("threads")));
    model = load_cli_model(a.get_string("model"), &info);
    if (!info.tokenizer)
      throw_error("--model ", a.get_string("model"), ": trained on task ", info.task,
                  ", it has no text tokenizer; sample works on text models (use gradlab eval --task)");
    prompt_text = a.get_string("prompt");
    if (prompt_text.empty()) throw_error("--prompt: the text is empty; give at least one character");
    try {
      prompt = info.tokenizer->encode(prompt_text);
    } catch (const Error& e) {
      throw_error("--prompt: ", e.what());
    }
    so.max_new_tokens = a.get_int64("tokens");
    so.temperature = a.get_double("temperature");
    so.top_k = a.get_int64("top_k");
    so.seed = static_cast<std::uint64_t>(a.get_int64("seed"));
    so.validate(model->config().vocab_size);
  } catch (const Error& e) {
    print_error(err, "sample", e);
    return 2;
  }
  print_notes(err, info);
  std::vector<std::int32_t> seq = prompt;
  try {
    // Tokens stream out as they come; the prompt goes first, once the first logits proved finite.
    bool started = false;
    const Tokenizer& tok = *info.tokenizer;
    generate(*model, prompt, so, [&](std::int32_t id) {
      if (!started) out << prompt_text;
      started = true;
      out << tok.decode_one(id) << std::flush;
      seq.push_back(id);
    });
    if (!started) out << prompt_text;
    out << "\n";
    out.flush();
  } catch (const NonFiniteError& e) {
    const std::int64_t L = model->config().block_size;
    const std::int64_t n = std::min<std::int64_t>(L, static_cast<std::int64_t>(seq.size()));
    const std::string where = locate_nonfinite(*model, std::vector<std::int32_t>(seq.end() - n, seq.end()));
    err << "gradlab sample: after " << (seq.size() - prompt.size()) << " generated tokens, " << e.what()
        << (where.empty() ? std::string() : "; non-finite values first appear in " + where) << "\n";
    return 1;
  } catch (const std::exception& e) {
    print_error(err, "sample", e);
    return 1;
  }
  return 0;
}

int run_sample(const std::vector<std::string>& args) { return run_sample(args, std::cout, std::cerr); }

}  // namespace gradlab::cli
