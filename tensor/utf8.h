#pragma once
// UTF-8, one code point at a time. It sits in the base library, beside error.h, only because two layers that
// may not depend on each other need it: the tokenizer (data/tokenizer.h) and the figure labels (viz/text.h).
// Each of them decides what to do with invalid input; these functions only report it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gradlab {

// true for U+0000..U+10FFFF except the surrogates U+D800..U+DFFF.
bool is_unicode_scalar(std::int64_t cp);

// Decodes the sequence starting at text[i] (i < text.size(), else it throws) into cp and returns its length in bytes, or 0 when
// the byte at i does not begin a complete, shortest-form sequence of a scalar value (a stray continuation byte,
// 0xF8..0xFF, a truncated or overlong sequence, a surrogate, or a value beyond U+10FFFF).
std::size_t utf8_decode_one(std::string_view text, std::size_t i, char32_t& cp);

// Appends the 1..4 byte encoding of cp, which must be a scalar value (the caller checks or replaces it).
void utf8_append(std::string& out, char32_t cp);

}  // namespace gradlab
