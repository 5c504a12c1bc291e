#include "tensor/utf8.h"

#include "tensor/error.h"

namespace gradlab {

bool is_unicode_scalar(std::int64_t cp) { return cp >= 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

std::size_t utf8_decode_one(std::string_view text, std::size_t i, char32_t& cp) {
  if (i >= text.size())
    throw_error("utf8_decode_one: got position ", i, " in a text of ", text.size(), " bytes, expected a position inside it");
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    cp = lead;
    return 1;
  }
  // The lead byte says how many bytes follow and carries the top bits of the value.
  std::size_t len;
  char32_t smallest;  // below this, the same value has a shorter encoding (overlong)
  if ((lead & 0xE0) == 0xC0) {
    len = 2, cp = lead & 0x1F, smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3, cp = lead & 0x0F, smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4, cp = lead & 0x07, smallest = 0x10000;
  } else {
    return 0;  // a continuation byte or 0xF8..0xFF
  }
  if (i + len > text.size()) return 0;  // truncated
  for (std::size_t k = 1; k < len; ++k) {
    const unsigned char next = byte(i + k);
    if ((next & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (next & 0x3F);
  }
  if (cp < smallest || !is_unicode_scalar(cp)) return 0;
  return len;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace gradlab
