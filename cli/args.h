#pragma once
// ArgParser: the flag parser of the gradlab command and of the lessons.
//
//   ArgParser args("gradlab train", "Train a small GPT.");
//   args.add_int("n_layer", 4, 1, 64, "transformer blocks");
//   args.add_choice("mask", {"causal", "stablemask"}, "causal", "attention mask");
//   args.add_string("out", "", "output directory").required();
//   args.add_flag("compile", "...");
//   args.parse(argc - 2, argv + 2);        // the words after "gradlab train"
//   if (args.help_requested()) { std::cout << args.help(); return 0; }
//   int n_layer = args.get_int("n_layer");
//
// Syntax: --name value, --name=value; a boolean flag is --name (or --name=true/false/1/0); -h/--help.
// '-' and '_' are equivalent inside names (--n-layer is --n_layer). Every value is converted and range-checked
// during parse(), so all usage errors surface before any work starts. Errors are gradlab::cli::UsageError (a
// gradlab::Error) with a one-line message: an unknown flag (with the closest known one suggested), a missing
// value, a bad number, a value out of range, a choice not in the list, a flag given twice, a missing required
// flag, an unexpected positional argument. The parser never prints and never calls exit(): the caller maps
// UsageError to exit code 2.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace gradlab::cli {

struct UsageError : Error {
  using Error::Error;
};

// Levenshtein distance, for "did you mean".
std::size_t edit_distance(const std::string& a, const std::string& b);

class ArgParser {
 public:
  enum class Type { Flag, Int, Double, String, Choice };

  explicit ArgParser(std::string command, std::string summary = "");

  // Declarations; names are given without "--". Integers and doubles are checked to lie in [lo, hi].
  ArgParser& add_flag(const std::string& name, const std::string& help);
  ArgParser& add_int(const std::string& name, std::int64_t default_value, std::int64_t lo, std::int64_t hi,
                     const std::string& help);
  ArgParser& add_double(const std::string& name, double default_value, double lo, double hi, const std::string& help);
  ArgParser& add_string(const std::string& name, const std::string& default_value, const std::string& help,
                        const std::string& metavar = "VALUE");
  ArgParser& add_choice(const std::string& name, const std::vector<std::string>& choices,
                        const std::string& default_value, const std::string& help);
  // Modifiers for the flag declared last.
  ArgParser& required();    // must be given on the command line (its default is then unused)
  ArgParser& no_default();  // the value is absent unless given: has() false, get_* throws
  // Starts a titled group in the help text.
  ArgParser& section(const std::string& title);
  // Accept positional arguments (otherwise they are an error); metavar is shown in the usage line.
  ArgParser& allow_positionals(const std::string& metavar);
  // A paragraph printed at the end of the help text (e.g. the evaluation rule).
  ArgParser& epilog(const std::string& text);

  // Parses the arguments after the command name. May be called once.
  void parse(int argc, const char* const* argv);
  void parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }
  std::string help() const;

  // Typed getters (names with - or _). The getter must match the declared type.
  bool given(const std::string& name) const;  // present on the command line
  bool has(const std::string& name) const;    // given, or has a default
  bool get_flag(const std::string& name) const;
  std::int64_t get_int64(const std::string& name) const;
  int get_int(const std::string& name) const;  // additionally checked to fit an int
  double get_double(const std::string& name) const;
  std::string get_string(const std::string& name) const;
  std::string get_choice(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  // All names, normalised, in declaration order (for tests and fuzzers).
  std::vector<std::string> names() const;

 private:
  struct Option {
    std::string name;  // normalised: '_' only
    Type type = Type::String;
    std::string help, metavar, section;
    bool required = false, has_default = true, given = false;
    std::vector<std::string> choices;
    std::int64_t int_lo = 0, int_hi = 0, int_value = 0;
    double dbl_lo = 0, dbl_hi = 0, dbl_value = 0;
    std::string str_value;  // String and Choice
    bool flag_value = false;
  };
  Option& declare(const std::string& name, Type type, const std::string& help, const std::string& metavar);
  Option* find(const std::string& normalised);
  const Option& lookup(const std::string& name, Type type) const;
  void assign(Option& opt, const std::string& value, const std::string& spelled);
  std::string default_text(const Option& opt) const;
  [[noreturn]] void usage_error(const std::string& what) const;

  std::string command_, summary_, epilog_, current_section_, positional_metavar_;
  bool positionals_allowed_ = false, parsed_ = false, help_requested_ = false;
  std::vector<Option> options_;
  std::vector<std::string> positionals_;
};

// "--n-layer" -> "n_layer"; the normalisation used for names.
std::string normalise_flag_name(const std::string& name);

// Applies a valid --threads N / --threads=N (1 <= N <= 1024) from a command's arguments before its parser runs, so
// that the start-up line reports the thread count the command will use. Anything else is left for the parser to
// judge (and to reject with its own message). Returns the count applied, or 0 when none was.
int apply_threads_flag(const std::vector<std::string>& args);

}  // namespace gradlab::cli
