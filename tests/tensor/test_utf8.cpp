// The UTF-8 primitives shared by the tokenizer and the figure labels: every valid length round-trips, and each
// kind of invalid sequence is refused at its first byte.
#include <doctest/doctest.h>

#include <ios>
#include <string>

#include "tensor/error.h"
#include "tensor/utf8.h"

using namespace gradlab;

TEST_SUITE("tensor") {

TEST_CASE("utf8: one to four bytes round-trip, at the edges of each length") {
  for (char32_t cp : {0x0u, 0x41u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu, 0x10000u,
                      0x10FFFFu}) {
    INFO("U+" << std::hex << static_cast<unsigned>(cp));
    std::string bytes;
    utf8_append(bytes, cp);
    const std::size_t expected = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    CHECK(bytes.size() == expected);
    char32_t back = 0;
    CHECK(utf8_decode_one(bytes, 0, back) == expected);
    CHECK(back == cp);
  }
}

TEST_CASE("utf8: invalid sequences decode to length 0") {
  char32_t cp = 0;
  CHECK(utf8_decode_one("\x80", 0, cp) == 0);              // a stray continuation byte
  CHECK(utf8_decode_one("\xF8\x88\x80\x80", 0, cp) == 0);  // no 5-byte forms
  CHECK(utf8_decode_one("\xE2\x82", 0, cp) == 0);          // truncated
  CHECK(utf8_decode_one("\xC0\xAF", 0, cp) == 0);          // overlong '/'
  CHECK(utf8_decode_one("\xED\xA0\x80", 0, cp) == 0);      // a surrogate, U+D800
  CHECK(utf8_decode_one("\xF4\x90\x80\x80", 0, cp) == 0);  // U+110000, beyond Unicode
  CHECK(utf8_decode_one("\xC3(", 0, cp) == 0);             // a lead byte followed by ASCII
  CHECK(utf8_decode_one("a\xC3\xA9", 1, cp) == 2);         // decoding starts at i
  CHECK(cp == 0xE9);
  CHECK_THROWS_AS(utf8_decode_one("ab", 2, cp), Error);  // past the end
  CHECK(is_unicode_scalar(0x10FFFF));
  CHECK_FALSE(is_unicode_scalar(0xDFFF));
  CHECK_FALSE(is_unicode_scalar(-1));
}

}  // TEST_SUITE
