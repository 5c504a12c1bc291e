#pragma once
// Helpers for the io tests: a temporary directory that cleans up, and "the message of the Error f throws".
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tensor/error.h"

namespace io_test {

struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/gradlab_io_XXXXXX";
    char* made = ::mkdtemp(pattern);
    if (!made) throw std::runtime_error("mkdtemp failed");
    path = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The message of the gradlab::Error that f throws; "<no error>" when it returns normally.
// Any other exception type escapes and fails the test.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const gradlab::Error& e) {
    return e.what();
  }
  return "<no error>";
}

inline bool one_line(const std::string& s) { return s.find('\n') == std::string::npos && !s.empty(); }

}  // namespace io_test
