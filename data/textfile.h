#pragma once
// Reading a training text from disk, with an error for each way it can go wrong.
#include <cstdint>
#include <string>

namespace gradlab {

// Text files above this size are refused (gradlab keeps the whole text and its tokens in memory).
constexpr std::uint64_t kMaxTextFileBytes = 1ull << 30;  // 1 GiB

// The whole file as bytes (no decoding here; see data/tokenizer.h for UTF-8 handling). One-line gradlab::Error,
// naming the path, for: a missing file, a directory, something that is not a regular file, a file that cannot
// be opened or read (permission), an empty file, and a file above kMaxTextFileBytes.
std::string read_text_file(const std::string& path);

}  // namespace gradlab
