#include "cli/args.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "tensor/cpu.h"

namespace gradlab::cli {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  // one row of the dynamic-programming table at a time
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string normalise_flag_name(const std::string& name) {
  std::string out = name;
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

namespace {

// A user's word, made safe for a one-line message.
std::string shown(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= 60) return out + "...";
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string format_double(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

// The closest candidate within a small edit distance, or "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string& c : candidates) {
    std::size_t d = edit_distance(word, c);
    // a prefix is a good guess too ("--lr" for "--learning_rate" is not, "--n_lay" for "--n_layer" is)
    if (c.rfind(word, 0) == 0 && word.size() >= 3) d = std::min<std::size_t>(d, 1);
    if (d < best_distance) best_distance = d, best = c;
  }
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  return best_distance <= limit ? best : "";
}

}  // namespace

ArgParser::ArgParser(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

void ArgParser::usage_error(const std::string& what) const { throw UsageError(command_ + ": " + what); }

ArgParser::Option& ArgParser::declare(const std::string& name, Type type, const std::string& help,
                                      const std::string& metavar) {
  const std::string n = normalise_flag_name(name);
  if (n.empty() || n == "help" || n == "h") throw Error("ArgParser: cannot declare a flag named '" + name + "'");
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      throw Error("ArgParser: flag name '" + name + "' has a character other than letters, digits, - and _");
  if (find(n)) throw Error("ArgParser: flag --" + n + " declared twice");
  Option opt;
  opt.name = n;
  opt.type = type;
  opt.help = help;
  opt.metavar = metavar;
  opt.section = current_section_;
  options_.push_back(opt);
  return options_.back();
}

ArgParser& ArgParser::add_flag(const std::string& name, const std::string& help) {
  declare(name, Type::Flag, help, "");
  return *this;
}

ArgParser& ArgParser::add_int(const std::string& name, std::int64_t default_value, std::int64_t lo, std::int64_t hi,
                              const std::string& help) {
  if (lo > hi || default_value < lo || default_value > hi)
    throw Error("ArgParser: --" + name + " default " + std::to_string(default_value) + " outside [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  Option& o = declare(name, Type::Int, help, std::string(1, 'N'));
  o.int_lo = lo, o.int_hi = hi, o.int_value = default_value;
  return *this;
}

ArgParser& ArgParser::add_double(const std::string& name, double default_value, double lo, double hi,
                                 const std::string& help) {
  if (!(lo <= hi) || !(default_value >= lo && default_value <= hi))
    throw Error("ArgParser: --" + name + " default " + format_double(default_value) + " outside [" +
                format_double(lo) + ", " + format_double(hi) + "]");
  Option& o = declare(name, Type::Double, help, std::string(1, 'X'));
  o.dbl_lo = lo, o.dbl_hi = hi, o.dbl_value = default_value;
  return *this;
}

ArgParser& ArgParser::add_string(const std::string& name, const std::string& default_value, const std::string& help,
                                 const std::string& metavar) {
  Option& o = declare(name, Type::String, help, metavar);
  o.str_value = default_value;
  return *this;
}

ArgParser& ArgParser::add_choice(const std::string& name, const std::vector<std::string>& choices,
                                 const std::string& default_value, const std::string& help) {
  if (choices.empty() || std::find(choices.begin(), choices.end(), default_value) == choices.end())
    throw Error("ArgParser: --" + name + " default '" + default_value + "' is not one of its choices");
  std::string meta;
  for (const auto& c : choices) meta += (meta.empty() ? "" : "|") + c;
  Option& o = declare(name, Type::Choice, help, meta);
  o.choices = choices;
  o.str_value = default_value;
  return *this;
}

ArgParser& ArgParser::required() {
  if (options_.empty()) throw Error("ArgParser: required() before any flag");
  options_.back().required = true;
  options_.back().has_default = false;
  return *this;
}

ArgParser& ArgParser::no_default() {
  if (options_.empty()) throw Error("ArgParser: no_default() before any flag");
  options_.back().has_default = false;
  return *this;
}

ArgParser& ArgParser::section(const std::string& title) {
  current_section_ = title;
  return *this;
}

ArgParser& ArgParser::allow_positionals(const std::string& metavar) {
  positionals_allowed_ = true;
  positional_metavar_ = metavar;
  return *this;
}

ArgParser& ArgParser::epilog(const std::string& text) {
  epilog_ = text;
  return *this;
}

ArgParser::Option* ArgParser::find(const std::string& normalised) {
  for (Option& o : options_)
    if (o.name == normalised) return &o;
  return nullptr;
}

std::vector<std::string> ArgParser::names() const {
  std::vector<std::string> out;
  for (const Option& o : options_) out.push_back(o.name);
  return out;
}

void ArgParser::assign(Option& opt, const std::string& value, const std::string& spelled) {
  const std::string flag = "--" + spelled;
  switch (opt.type) {
    case Type::Flag: {
      if (value == "true" || value == "1" || value == "yes") {
        opt.flag_value = true;
      } else if (value == "false" || value == "0" || value == "no") {
        opt.flag_value = false;
      } else {
        usage_error(flag + " is a switch: got '" + shown(value) + "', expected true or false (or no value)");
      }
      break;
    }
    case Type::Int: {
      std::int64_t v = 0;
      const char* first = value.data();
      const char* last = value.data() + value.size();
      if (!value.empty() && *first == '+') ++first;
      auto [ptr, ec] = std::from_chars(first, last, v);
      if (value.empty() || ec == std::errc::invalid_argument || ptr != last)
        usage_error(flag + " expects an integer, got '" + shown(value) + "'");
      if (ec == std::errc::result_out_of_range || v < opt.int_lo || v > opt.int_hi)
        usage_error(flag + " is " + shown(value) + ", expected " + std::to_string(opt.int_lo) + " .. " +
                    std::to_string(opt.int_hi));
      opt.int_value = v;
      break;
    }
    case Type::Double: {
      // strtod accepts "inf", "nan" and hex; all are checked below (finite and in range).
      char* end = nullptr;
      errno = 0;
      double v = value.empty() || std::isspace(static_cast<unsigned char>(value[0])) ? 0.0 : std::strtod(value.c_str(), &end);
      if (value.empty() || end == nullptr || *end != '\0' || end == value.c_str())
        usage_error(flag + " expects a number, got '" + shown(value) + "'");
      if (!std::isfinite(v)) usage_error(flag + " is " + shown(value) + ", expected a finite number");
      if (v < opt.dbl_lo || v > opt.dbl_hi)
        usage_error(flag + " is " + shown(value) + ", expected " + format_double(opt.dbl_lo) + " .. " +
                    format_double(opt.dbl_hi));
      opt.dbl_value = v;
      break;
    }
    case Type::String:
      opt.str_value = value;
      break;
    case Type::Choice: {
      if (std::find(opt.choices.begin(), opt.choices.end(), value) == opt.choices.end()) {
        std::string list;
        for (const auto& c : opt.choices) list += (list.empty() ? "" : ", ") + c;
        std::string guess = closest(value, opt.choices);
        usage_error(flag + " is '" + shown(value) + "', expected one of " + list +
                    (guess.empty() ? "" : " (did you mean " + guess + "?)"));
      }
      opt.str_value = value;
      break;
    }
  }
  opt.given = true;
}

void ArgParser::parse(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) args.emplace_back(argv[i] ? argv[i] : "");
  parse(args);
}

void ArgParser::parse(const std::vector<std::string>& args) {
  if (parsed_) throw Error("ArgParser: parse() called twice");
  parsed_ = true;
  bool only_positionals = false;  // after "--"
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (!only_positionals && word == "--") {
      only_positionals = true;  // everything after "--" is positional
      continue;
    }
    if (!only_positionals && (word == "-h" || word == "--help")) {
      help_requested_ = true;
      continue;
    }
    const bool looks_like_flag = !only_positionals && word.size() > 2 && word.rfind("--", 0) == 0;
    if (!looks_like_flag) {
      // "-lr" is a mistake; "-5", "-.5" and a lone "-" are ordinary words.
      if (!only_positionals && word.size() >= 2 && word[0] == '-' && !std::isdigit(static_cast<unsigned char>(word[1])) &&
          word[1] != '.') {
        std::string guess = closest(normalise_flag_name(word.substr(std::min(word.find_first_not_of('-'), word.size()))), names());
        usage_error("unknown option '" + shown(word) + "' (flags are spelled --name" +
                    (guess.empty() ? "" : "; did you mean --" + guess + "?") + ")");
      }
      if (!positionals_allowed_) usage_error("unexpected argument '" + shown(word) + "'");
      positionals_.push_back(word);
      continue;
    }
    // --name or --name=value
    std::string body = word.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      inline_value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    const std::string spelled = body;
    const std::string name = normalise_flag_name(body);
    if (name == "help") {
      help_requested_ = true;
      continue;
    }
    Option* opt = find(name);
    if (!opt) {
      std::string guess = closest(name, names());
      usage_error("unknown flag --" + shown(spelled) + (guess.empty() ? "" : " (did you mean --" + guess + "?)") +
                  "; see --help");
    }
    if (opt->given) usage_error("--" + opt->name + " is given twice");
    if (opt->type == Type::Flag) {
      assign(*opt, inline_value.value_or("true"), spelled);
      continue;
    }
    if (!inline_value) {
      // The next word is the value, unless there is none or it is itself a flag ("--out --seed 1").
      if (i + 1 >= args.size() || (args[i + 1].rfind("--", 0) == 0 && args[i + 1].size() > 2))
        usage_error("--" + spelled + " needs a value (" + opt->metavar + ")");
      inline_value = args[++i];
    }
    assign(*opt, *inline_value, spelled);
  }
  if (help_requested_) return;  // --help wins over missing required flags
  for (const Option& o : options_)
    if (o.required && !o.given) usage_error("missing required flag --" + o.name + " " + o.metavar);
}

const ArgParser::Option& ArgParser::lookup(const std::string& name, Type type) const {
  const std::string n = normalise_flag_name(name);
  for (const Option& o : options_) {
    if (o.name != n) continue;
    if (o.type != type) throw Error("ArgParser: --" + n + " read with the wrong type");
    if (!o.given && !o.has_default) throw UsageError(command_ + ": --" + n + " was not given and has no default");
    return o;
  }
  throw Error("ArgParser: --" + n + " was never declared");
}

bool ArgParser::given(const std::string& name) const {
  const std::string n = normalise_flag_name(name);
  for (const Option& o : options_)
    if (o.name == n) return o.given;
  throw Error("ArgParser: --" + n + " was never declared");
}

bool ArgParser::has(const std::string& name) const {
  const std::string n = normalise_flag_name(name);
  for (const Option& o : options_)
    if (o.name == n) return o.given || o.has_default;
  throw Error("ArgParser: --" + n + " was never declared");
}

bool ArgParser::get_flag(const std::string& name) const { return lookup(name, Type::Flag).flag_value; }
std::int64_t ArgParser::get_int64(const std::string& name) const { return lookup(name, Type::Int).int_value; }
int ArgParser::get_int(const std::string& name) const {
  const Option& o = lookup(name, Type::Int);
  if (o.int_value < std::numeric_limits<int>::min() || o.int_value > std::numeric_limits<int>::max())
    throw UsageError(command_ + ": --" + o.name + " is " + std::to_string(o.int_value) + ", too large for an int");
  return static_cast<int>(o.int_value);
}
double ArgParser::get_double(const std::string& name) const { return lookup(name, Type::Double).dbl_value; }
std::string ArgParser::get_string(const std::string& name) const { return lookup(name, Type::String).str_value; }
std::string ArgParser::get_choice(const std::string& name) const { return lookup(name, Type::Choice).str_value; }

std::string ArgParser::default_text(const Option& o) const {
  if (o.required) return "required";
  if (!o.has_default) return "";
  switch (o.type) {
    case Type::Flag: return "";
    case Type::Int: {
      // Ranges near the type's limits mean "unbounded" on that side.
      const bool has_lo = o.int_lo > std::numeric_limits<std::int64_t>::min() / 2;
      const bool has_hi = o.int_hi < std::numeric_limits<std::int64_t>::max() / 2;
      std::string range = has_lo && has_hi ? ", " + std::to_string(o.int_lo) + " .. " + std::to_string(o.int_hi)
                          : has_lo         ? ", >= " + std::to_string(o.int_lo)
                          : has_hi         ? ", <= " + std::to_string(o.int_hi)
                                           : "";
      return "default " + std::to_string(o.int_value) + range;
    }
    case Type::Double: {
      const bool has_lo = o.dbl_lo > -1e300, has_hi = o.dbl_hi < 1e300;
      std::string range = has_lo && has_hi ? ", " + format_double(o.dbl_lo) + " .. " + format_double(o.dbl_hi)
                          : has_lo         ? ", >= " + format_double(o.dbl_lo)
                          : has_hi         ? ", <= " + format_double(o.dbl_hi)
                                           : "";
      return "default " + format_double(o.dbl_value) + range;
    }
    case Type::String: return o.str_value.empty() ? "" : "default " + o.str_value;
    case Type::Choice: return "default " + o.str_value;
  }
  return "";
}

std::string ArgParser::help() const {
  std::ostringstream out;
  out << "usage: " << command_ << " [flags]";
  if (positionals_allowed_) out << " " << positional_metavar_;
  out << "\n";
  if (!summary_.empty()) out << "\n" << summary_ << "\n";
  std::string section = "\x01";  // no section printed yet
  for (const Option& o : options_) {
    if (o.section != section) {
      section = o.section;
      out << "\n" << (section.empty() ? "flags" : section) << ":\n";
    }
    std::string left = "  --" + o.name + (o.metavar.empty() ? "" : " " + o.metavar);
    out << left;
    const std::size_t column = 30;
    if (left.size() + 2 > column) {
      out << "\n" << std::string(column, ' ');
    } else {
      out << std::string(column - left.size(), ' ');
    }
    out << o.help;
    std::string d = default_text(o);
    if (!d.empty()) out << " (" << d << ")";
    out << "\n";
  }
  out << "\n  -h, --help" << std::string(30 - 12, ' ') << "show this help\n";
  out << "\nNames accept - or _ (--n-layer = --n_layer); values as --name VALUE or --name=VALUE.\n";
  if (!epilog_.empty()) out << "\n" << epilog_ << "\n";
  return out.str();
}

int apply_threads_flag(const std::vector<std::string>& args) {
  int applied = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string value;
    if (args[i] == "--threads" && i + 1 < args.size())
      value = args[i + 1];
    else if (args[i].rfind("--threads=", 0) == 0)
      value = args[i].substr(10);
    else
      continue;
    char* end = nullptr;
    const long n = std::strtol(value.c_str(), &end, 10);
    if (!value.empty() && *end == '\0' && n >= 1 && n <= 1024) {
      set_num_threads(static_cast<int>(n));
      applied = static_cast<int>(n);
    }
  }
  return applied;
}

}  // namespace gradlab::cli
