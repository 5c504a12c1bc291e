// Fuzz target: the command-line parser.
//
// The input is split at NUL bytes into words, given to an ArgParser declared like `gradlab train` (every kind
// of flag: switch, int, double, string, choice, required, no default, positionals). parse() must either throw
// a one-line UsageError or leave every declared flag readable: the getters never throw for a declared name
// except for an absent no-default flag, and the values lie in their declared ranges. help() always works.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/args.h"
#include "fuzz/fuzz_common.h"
#include "tensor/error.h"

using gradlab::cli::ArgParser;
using gradlab::cli::UsageError;
using gradlab_fuzz::fail;

namespace {

void declare(ArgParser& a, bool positionals) {
  a.section("data");
  a.add_string("data", "", "text file", "FILE").no_default();
  a.add_choice("tokenizer", {"char", "byte"}, "char", "tokenizer");
  a.section("model");
  a.add_int("n_layer", 4, 1, 256, "blocks");
  a.add_int("n_embd", 128, 1, 16384, "width");
  a.add_int("seed", 1337, 0, INT64_MAX, "seed");
  a.add_int("offset", 0, INT64_MIN, INT64_MAX, "any 64-bit integer");
  a.add_double("dropout", 0.0, 0.0, 0.95, "dropout");
  a.add_double("learning_rate", 1e-3, 0.0, 10.0, "learning rate");
  a.add_double("min_lr", 1e-4, 0.0, 10.0, "final lr").no_default();
  a.add_flag("bias", "biases");
  a.add_choice("mask", {"causal", "stablemask"}, "causal", "mask");
  a.add_string("out", "", "output directory", "DIR").required();
  a.epilog("Evaluation rule: consecutive windows.");
  if (positionals) a.allow_positionals("FILES");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool positionals = data[0] & 1;
  std::vector<std::string> words;
  std::string word;
  for (std::size_t i = 1; i < size; ++i) {
    if (data[i] == 0) {
      words.push_back(word);
      word.clear();
    } else {
      word += static_cast<char>(data[i]);
    }
  }
  if (size > 1) words.push_back(word);

  ArgParser a("gradlab fuzz", "The fuzz target's parser.");
  declare(a, positionals);
  try {
    a.parse(words);
  } catch (const UsageError& e) {
    gradlab_fuzz::check_error_message(e.what());
    return 0;
  } catch (const gradlab::Error& e) {
    fail("parse threw an Error that is not a UsageError", e.what());
  }
  if (a.help().empty()) fail("empty help", "");
  if (a.help_requested()) return 0;
  if (!positionals && !a.positionals().empty()) fail("positionals accepted without allow_positionals", "");
  try {
    if (a.get_int("n_layer") < 1 || a.get_int("n_layer") > 256) fail("n_layer out of range", "");
    if (a.get_int64("seed") < 0) fail("seed out of range", "");
    (void)a.get_int64("offset");
    const double d = a.get_double("dropout");
    if (!(d >= 0.0 && d <= 0.95)) fail("dropout out of range", std::to_string(d));
    const double lr = a.get_double("learning_rate");
    if (!std::isfinite(lr) || lr < 0.0 || lr > 10.0) fail("learning_rate out of range", std::to_string(lr));
    if (a.has("min_lr")) {
      const double m = a.get_double("min_lr");
      if (!(m >= 0.0 && m <= 10.0)) fail("min_lr out of range", std::to_string(m));
    }
    (void)a.get_flag("bias");
    const std::string mask = a.get_choice("mask");
    if (mask != "causal" && mask != "stablemask") fail("mask outside its choices", mask);
    const std::string tok = a.get_choice("tokenizer");
    if (tok != "char" && tok != "byte") fail("tokenizer outside its choices", tok);
    if (!a.given("out")) fail("a required flag is missing but parse() succeeded", "");
    (void)a.get_string("out");
    if (a.has("data")) (void)a.get_string("data");
  } catch (const gradlab::Error& e) {
    fail("a getter threw after a successful parse", e.what());
  }
  return 0;
}
