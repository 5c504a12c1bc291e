// The command-line parser: syntax, types, ranges, suggestions, help; never exits.
#include <doctest/doctest.h>

#include "cli/args.h"
#include "tensor/cpu.h"
#include "io_util.h"

using namespace gradlab;
using gradlab::cli::ArgParser;
using io_test::error_of;
using io_test::one_line;

namespace {

ArgParser make_train_parser() {
  ArgParser p("gradlab train", "Train a small GPT.");
  p.section("model");
  p.add_int("n_layer", 4, 1, 64, "transformer blocks");
  p.add_int("n_embd", 128, 1, 8192, "embedding width");
  p.add_choice("mask", {"causal", "stablemask"}, "causal", "attention mask");
  p.section("training");
  p.add_double("learning_rate", 1e-3, 0.0, 10.0, "peak learning rate");
  p.add_int("max_iters", 2000, 0, INT64_MAX, "optimizer steps");
  p.add_string("out", "", "output directory", "DIR").required();
  p.add_string("data", "", "training text", "FILE").no_default();
  p.add_flag("compile", "an example switch");
  p.add_double("weight_decay", 0.1, 0.0, 1e308, "decoupled weight decay");
  return p;
}

std::string parse_error(std::vector<std::string> args) {
  return error_of([&] {
    ArgParser p = make_train_parser();
    p.parse(args);
  });
}

}  // namespace

TEST_SUITE("io") {

TEST_CASE("args: both value syntaxes with dashes or underscores plus defaults and switches") {
  ArgParser p = make_train_parser();
  p.parse({"--n-layer", "6", "--mask=stablemask", "--learning_rate", "3e-4", "--out=runs/a", "--compile"});
  CHECK(p.get_int("n_layer") == 6);
  CHECK(p.get_int("n-embd") == 128);  // default
  CHECK(p.get_choice("mask") == "stablemask");
  CHECK(p.get_double("learning-rate") == 3e-4);
  CHECK(p.get_string("out") == "runs/a");
  CHECK(p.get_flag("compile"));
  CHECK(p.given("n_layer"));
  CHECK(!p.given("n_embd"));
  CHECK(p.has("n_embd"));
  CHECK(!p.has("data"));
  CHECK(error_of([&] { p.get_string("data"); }).find("--data was not given") != std::string::npos);
  CHECK(!p.help_requested());

  ArgParser q = make_train_parser();
  q.parse({"--out", "x", "--compile=false", "--max_iters", "+5", "--data", "-"});  // "-" is a value (stdin)
  CHECK(!q.get_flag("compile"));
  CHECK(q.get_int64("max_iters") == 5);
  CHECK(q.get_string("data") == "-");
  // Negative numbers are values, not flags.
  ArgParser r("t");
  r.add_double("x", 0, -10, 10, "x");
  r.parse({"--x", "-2.5"});
  CHECK(r.get_double("x") == -2.5);
}

TEST_CASE("args: a valid --threads is applied before parsing (the start-up line reports it), others left alone") {
  const int before = max_threads();
  CHECK(cli::apply_threads_flag({"--max_iters", "3", "--threads", "1"}) == 1);
  CHECK(max_threads() == (built_with_openmp() ? 1 : max_threads()));
  CHECK(cli::apply_threads_flag({"--threads=1"}) == 1);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--threads", "x"}, {"--threads=0"}, {"--threads", "-2"}, {"--threads", "2k"},
        {"--threads"}, {"--threads=5000"}, {"--max_iters", "--threads"}})
    CHECK(cli::apply_threads_flag(bad) == 0);
  set_num_threads(before);
}

TEST_CASE("args: usage errors are one line and name the problem") {
  struct Case {
    std::vector<std::string> args;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {{"--out", "x", "--n_layers", "3"}, "unknown flag --n_layers (did you mean --n_layer?)"},
      {{"--out", "x", "--lerning-rate", "1"}, "unknown flag --lerning-rate (did you mean --learning_rate?)"},
      {{"--out", "x", "--zzz"}, "unknown flag --zzz; see --help"},
      {{"--out", "x", "-n_layer", "3"}, "unknown option '-n_layer' (flags are spelled --name; did you mean --n_layer?)"},
      {{"--out", "x", "--n_layer"}, "--n_layer needs a value (N)"},
      {{"--out", "x", "--n_layer", "--mask", "causal"}, "--n_layer needs a value (N)"},
      {{"--out", "x", "--n_layer", "four"}, "--n_layer expects an integer, got 'four'"},
      {{"--out", "x", "--n_layer", "3.5"}, "--n_layer expects an integer, got '3.5'"},
      {{"--out", "x", "--n_layer", ""}, "--n_layer expects an integer, got ''"},
      {{"--out", "x", "--n_layer", "0"}, "--n_layer is 0, expected 1 .. 64"},
      {{"--out", "x", "--max_iters", "-1"}, "--max_iters is -1, expected 0 .. 9223372036854775807"},
      {{"--out", "x", "--max_iters", "99999999999999999999"}, "--max_iters is 99999999999999999999, expected 0 .."},
      {{"--out", "x", "--learning_rate", "abc"}, "--learning_rate expects a number, got 'abc'"},
      {{"--out", "x", "--learning_rate", "1e-3x"}, "expects a number"},
      {{"--out", "x", "--learning_rate", "nan"}, "expected a finite number"},
      {{"--out", "x", "--learning_rate", "inf"}, "expected a finite number"},
      {{"--out", "x", "--learning_rate", "-0.1"}, "--learning_rate is -0.1, expected 0 .. 10"},
      {{"--out", "x", "--mask", "causl"}, "--mask is 'causl', expected one of causal, stablemask (did you mean causal?)"},
      {{"--out", "x", "--compile=maybe"}, "--compile is a switch: got 'maybe'"},
      {{"--out", "x", "--n_layer", "2", "--n-layer", "3"}, "--n_layer is given twice"},
      {{"--n_layer", "2"}, "missing required flag --out DIR"},
      {{"--out", "x", "extra"}, "unexpected argument 'extra'"},
      {{"--out", "x", "--n_layer", "2\n"}, "expects an integer, got '2\\x0a'"},
  };
  for (const Case& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    CAPTURE(joined);
    std::string msg = parse_error(c.args);
    CAPTURE(msg);
    CHECK(msg.find(c.expect) != std::string::npos);
    CHECK(msg.rfind("gradlab train: ", 0) == 0);
    CHECK(one_line(msg));
  }
  // The errors are UsageError, so the caller can map them to exit code 2.
  ArgParser p = make_train_parser();
  CHECK_THROWS_AS(p.parse({"--bogus"}), cli::UsageError);
}

TEST_CASE("args: --help wins over missing required flags and lists every flag") {
  ArgParser p = make_train_parser();
  p.epilog("Evaluation rule: windows of T+1 tokens.");
  p.parse({"--help"});
  CHECK(p.help_requested());
  ArgParser h = make_train_parser();
  h.parse({"-h", "--n_layer", "2"});
  CHECK(h.help_requested());
  std::string text = p.help();
  CHECK(text.rfind("usage: gradlab train [flags]\n", 0) == 0);
  for (const char* needle : {"--n_layer N", "(default 4, 1 .. 64)", "--mask causal|stablemask", "(default causal)",
                             "--learning_rate X", "(default 0.001, 0 .. 10)", "--max_iters N", "(default 2000, >= 0)", "(default 0.1, >= 0)",
                             "--out DIR", "(required)", "--compile", "model:\n", "training:\n", "Evaluation rule"}) {
    CAPTURE(needle);
    CHECK(text.find(needle) != std::string::npos);
  }
}

TEST_CASE("args: positionals and '--' and declaration mistakes") {
  ArgParser p("gradlab sample");
  p.allow_positionals("PROMPT");
  p.add_int("tokens", 10, 1, 1000, "tokens to generate");
  p.parse({"hello", "--tokens", "5", "--", "--not-a-flag"});
  CHECK(p.positionals() == std::vector<std::string>{"hello", "--not-a-flag"});
  CHECK(p.get_int("tokens") == 5);
  CHECK(error_of([&] { p.parse({}); }).find("parse() called twice") != std::string::npos);

  ArgParser d("x");
  d.add_int("a", 1, 0, 5, "a");
  CHECK(error_of([&] { d.add_int("a", 1, 0, 5, "again"); }).find("declared twice") != std::string::npos);
  CHECK(error_of([&] { d.add_int("b", 9, 0, 5, "b"); }).find("default 9 outside [0, 5]") != std::string::npos);
  CHECK(error_of([&] { d.add_choice("c", {"u", "v"}, "w", "c"); }).find("not one of its choices") != std::string::npos);
  CHECK(error_of([&] { d.add_flag("help", "h"); }).find("cannot declare") != std::string::npos);
  d.parse({});
  CHECK(error_of([&] { d.get_double("a"); }).find("wrong type") != std::string::npos);
  CHECK(error_of([&] { d.get_int("zz"); }).find("never declared") != std::string::npos);

  CHECK(cli::edit_distance("kitten", "sitting") == 3);
  CHECK(cli::edit_distance("", "abc") == 3);
  CHECK(cli::normalise_flag_name("n-layer") == "n_layer");
}

}  // TEST_SUITE
