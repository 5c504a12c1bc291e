#include "viz/text.h"

#include <cstdio>

namespace gradlab::viz {

namespace {
constexpr char32_t kReplacement = 0xFFFD;

// Decodes one code point at s[i]; returns its length in bytes, or 0 when the sequence is invalid.
std::size_t decode_one(const std::string& s, std::size_t i, char32_t& cp) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) { len = 2; cp = b0 & 0x1F; min = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { len = 3; cp = b0 & 0x0F; min = 0x800; }
  else if ((b0 & 0xF8) == 0xF0) { len = 4; cp = b0 & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}
}  // namespace

std::vector<char32_t> decode_utf8(const std::string& s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp;
    std::size_t n = decode_one(s, i, cp);
    if (n == 0) {
      out.push_back(kReplacement);
      i += 1;
    } else {
      out.push_back(cp);
      i += n;
    }
  }
  return out;
}

std::string encode_utf8(char32_t cp) {
  std::string out;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement;
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
  return out;
}

std::string encode_utf8(const std::vector<char32_t>& cps) {
  std::string out;
  for (char32_t cp : cps) out += encode_utf8(cp);
  return out;
}

std::string escape_token(const std::string& token) {
  if (token.empty()) return "\u2205";  // ∅
  std::string out;
  char hex[8];
  for (std::size_t i = 0; i < token.size();) {
    char32_t cp;
    std::size_t n = decode_one(token, i, cp);
    if (n == 0) {  // a byte that is not UTF-8: show the byte itself
      std::snprintf(hex, sizeof hex, "\\x%02X", static_cast<unsigned char>(token[i]));
      out += hex;
      i += 1;
      continue;
    }
    if (cp == ' ') out += "\u00B7";        // ·
    else if (cp == '\n') out += "\u21B5";  // ↵
    else if (cp == '\t') out += "\u2192";  // →
    else if (cp < 0x20 || cp == 0x7F) {
      std::snprintf(hex, sizeof hex, "\\x%02X", static_cast<unsigned>(cp));
      out += hex;
    } else if (cp >= 0x80 && cp < 0xA0) {  // C1 controls are invisible too
      std::snprintf(hex, sizeof hex, "\\u%04X", static_cast<unsigned>(cp));
      out += hex;
    } else {
      out.append(token, i, n);
    }
    i += n;
  }
  return out;
}

std::string truncate_label(const std::string& utf8, std::size_t max_chars) {
  std::vector<char32_t> cps = decode_utf8(utf8);
  if (cps.size() <= max_chars) return encode_utf8(cps);
  if (max_chars == 0) return "";
  cps.resize(max_chars - 1);
  cps.push_back(0x2026);  // …
  return encode_utf8(cps);
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : decode_utf8(s)) {
    switch (cp) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xFFFE || cp == 0xFFFF) cp = kReplacement;
        out += encode_utf8(cp);
    }
  }
  return out;
}

}  // namespace gradlab::viz
