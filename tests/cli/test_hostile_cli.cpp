// Hostile command lines beyond those of test_args.cpp (the parser alone) and test_cli_train.cpp (unknown flag, missing
// value, negative steps, heads that do not divide the width, zero batch): numbers that are not numbers, that
// overflow or are not finite, empty values, repeated flags, control characters and non-UTF-8 bytes in flags
// and values. Every one is exit code 2 with exactly one line on stderr, and nothing is created.
#include <doctest/doctest.h>

#include <filesystem>

#include "hostile_util.h"

using namespace hostile;

TEST_SUITE("hostile") {

TEST_CASE("hostile cli: malformed numbers and values are one line with exit code 2") {
  TempDir tmp;
  const std::string data = tmp.file("data.txt");
  write_file(data, ascii_text(500));
  const std::string out = tmp.file("out");
  struct Case {
    std::vector<std::string> extra;
    const char* expect;
  };
  const Case cases[] = {
      {{"--max_iters="}, "--max_iters"},                            // empty value
      {{"--max_iters", "1e3"}, "--max_iters"},                      // not an integer
      {{"--max_iters", "12abc"}, "--max_iters"},                    // trailing garbage
      {{"--max_iters", "0x10"}, "--max_iters"},                     // hex is not decimal
      {{"--max_iters", "99999999999999999999999"}, "--max_iters"},  // beyond 64 bits
      {{"--max_iters", " 5"}, "--max_iters"},                       // leading space
      {{"--learning_rate", "nan"}, "--learning_rate"},
      {{"--learning_rate", "inf"}, "--learning_rate"},
      {{"--learning_rate", "1e999"}, "--learning_rate"},
      {{"--learning_rate", "-0.001"}, "--learning_rate"},
      {{"--dropout", "1"}, "--dropout"},
      {{"--n_head", "0"}, "--n_head"},
      {{"--n_layer", "2", "--n_layer", "3"}, "twice"},
      {{"--bias=maybe"}, "--bias"},
      {{"--mask", "causal\nstablemask"}, "--mask"},     // a newline inside a value
      {{"--n_\xff\xfe", "1"}, "unknown flag"},           // non-UTF-8 bytes in a flag name
      {{"--mask", "\x1b[31mred"}, "--mask"},             // a terminal escape in a value
      {{"positional"}, "positional"},
      {{"-x"}, "-x"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = tiny_flags();
    args.insert(args.end(), {"--data", data, "--out", out});
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    Run r = train(args);
    CAPTURE(c.expect);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(r.err_lines() == 1);  // a newline or escape from the value must not break the line
    CHECK(r.out.empty());
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.err.find('\x1b') == std::string::npos);  // control bytes are not echoed raw to the terminal
    CHECK_FALSE(std::filesystem::exists(out));
  }
}

TEST_CASE("hostile cli: eval refuses malformed values the same way") {
  const std::string model = reference_checkpoint(), data = reference_text_file();
  const std::vector<std::vector<std::string>> cases = {
      {"--model", model, "--data", data, "--ctx", "abc"},
      {"--model", model, "--data", data, "--ctx", "99999999999999999999"},
      {"--model", model, "--data", data, "--window", "-1"},
      {"--model", "", "--data", data},
      {"--model", model, "--data", ""},
      {"--model", model, "--data", data, "--data", data},
      {"--model", model, "--task", "position-\n"},
  };
  for (const auto& args : cases) {
    Run r = eval(args);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(r.err_lines() == 1);
    CHECK(r.out.empty());
  }
}

}  // TEST_SUITE
