#pragma once
// Every error gradlab throws on purpose derives from gradlab::Error.
// The command line turns an Error into one line on stderr and exit code 2 (bad usage or bad input);
// anything else that escapes is a runtime failure (exit code 1).
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace gradlab {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Builds a message from pieces: throw_error("matmul: got ", a, " and ", b, ", expected ...").
template <typename... Parts>
[[noreturn]] void throw_error(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  throw Error(out.str());
}

}  // namespace gradlab
