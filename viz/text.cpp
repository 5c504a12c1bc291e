#include "viz/text.h"

#include <cstdio>

#include "tensor/utf8.h"

namespace gradlab::viz {

namespace {
constexpr char32_t kReplacement = 0xFFFD;
}  // namespace

std::vector<char32_t> decode_utf8(const std::string& s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp;
    std::size_t n = utf8_decode_one(s, i, cp);
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
  utf8_append(out, is_unicode_scalar(cp) ? cp : kReplacement);
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
    std::size_t n = utf8_decode_one(token, i, cp);
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
