#pragma once
// Tokenizers: text <-> token ids.
//
// kind "char": the vocabulary is the sorted set of Unicode code points in the training text (as nanoGPT's
//   shakespeare_char: sorted(set(text)), so ids match nanoGPT's for the same text). id k = the k-th smallest
//   code point. Text is decoded as UTF-8.
// kind "byte": 256 ids, id = byte value. Any byte sequence round-trips.
//
// Invalid UTF-8 (the documented behaviour): every byte that does not begin a complete, shortest-form UTF-8
// sequence of a Unicode scalar value (<= U+10FFFF, not a surrogate) decodes as one U+FFFD REPLACEMENT CHARACTER,
// and decoding resumes at the next byte. So a Latin-1 file trains, with each non-ASCII byte seen as U+FFFD, and
// decode(encode(text)) gives back the text with those bytes replaced. count_invalid_utf8() lets a caller warn
// about it; the byte tokenizer is the lossless alternative. When U+FFFD is not in a char vocabulary, encoding
// such a byte fails with a message that names the invalid byte and its offset.
//
// Saved with a model as a JSON string in the safetensors metadata:
//   {"kind":"char","vocab":[10,32,33,...]}   (code points, strictly increasing)
//   {"kind":"byte"}
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gradlab {

enum class TokenizerKind { Char, Byte };

// One decoded code point and where it came from.
struct Utf8Char {
  char32_t code_point;   // U+FFFD for an invalid byte
  std::size_t offset;    // byte offset of its first byte
  std::size_t length;    // bytes consumed (1 for an invalid byte)
  bool valid;            // false: an invalid byte replaced by U+FFFD
};

// Decodes UTF-8 with the replacement rule above.
std::vector<Utf8Char> decode_utf8(std::string_view text);
// Number of bytes that are not valid UTF-8 (each becomes one U+FFFD).
std::size_t count_invalid_utf8(std::string_view text);
// Appends the UTF-8 encoding of a scalar value (must be valid: <= U+10FFFF, not a surrogate).
void append_utf8(std::string& out, char32_t code_point);
// "'a' (U+0061)", "'\n' (U+000A)": a character for an error message.
std::string describe_code_point(char32_t code_point);

class Tokenizer {
 public:
  Tokenizer();  // byte-level

  static Tokenizer byte_level();
  // Vocabulary from the training text; throws for an empty text.
  static Tokenizer char_level(std::string_view training_text);
  // From an explicit vocabulary (strictly increasing valid code points, at least one).
  static Tokenizer from_vocab(std::vector<char32_t> code_points);
  // Parses and validates to_json()'s output; every problem is a one-line gradlab::Error.
  static Tokenizer from_json(const std::string& text);
  std::string to_json() const;

  TokenizerKind kind() const { return kind_; }
  const char* kind_name() const { return kind_ == TokenizerKind::Char ? "char" : "byte"; }
  std::int64_t vocab_size() const;
  const std::vector<char32_t>& vocab() const { return vocab_; }  // char kind only (empty for byte)

  // Throws for a character outside the vocabulary, naming it, its character index and its byte offset.
  std::vector<std::int32_t> encode(std::string_view text) const;
  // Throws for an id outside [0, vocab_size), naming it and its position.
  std::string decode(const std::vector<std::int32_t>& ids) const;
  std::string decode_one(std::int32_t id) const;
  // The id of a code point, or -1 (char kind).
  std::int32_t id_of(char32_t code_point) const;

 private:
  TokenizerKind kind_ = TokenizerKind::Byte;
  std::vector<char32_t> vocab_;
  std::vector<std::int32_t> ascii_ids_;  // id of each ASCII code point or -1, a fast path
};

}  // namespace gradlab
