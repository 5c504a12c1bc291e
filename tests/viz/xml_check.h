#pragma once
// A tiny well-formedness checker for the SVG the figures write: one root element, balanced and properly
// nested tags, quoted attributes without raw '<' or '&', entities limited to the five XML ones and numeric
// references, no raw '<' or '&' in text, valid UTF-8, no forbidden control characters.
// Returns an empty string when the document is well formed, else a description of the first problem.
#include <cctype>
#include <string>
#include <vector>

namespace gradlab_test {

inline bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

inline std::string check_entity(const std::string& s, std::size_t& i) {
  // s[i] == '&'
  std::size_t semi = s.find(';', i);
  if (semi == std::string::npos || semi - i > 10) return "bare '&' at offset " + std::to_string(i);
  std::string name = s.substr(i + 1, semi - i - 1);
  if (name != "amp" && name != "lt" && name != "gt" && name != "quot" && name != "apos" &&
      !(name.size() > 1 && name[0] == '#'))
    return "unknown entity &" + name + "; at offset " + std::to_string(i);
  i = semi + 1;
  return "";
}

inline std::string xml_problem(const std::string& doc) {
  if (!valid_utf8(doc)) return "not valid UTF-8";
  for (unsigned char ch : doc)
    if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') return "forbidden control character";
  std::vector<std::string> stack;
  bool seen_root = false;
  std::size_t i = 0;
  if (doc.compare(0, 5, "<?xml") == 0) {
    i = doc.find("?>");
    if (i == std::string::npos) return "unterminated XML declaration";
    i += 2;
  }
  while (i < doc.size()) {
    if (doc[i] != '<') {
      if (doc[i] == '&') {
        std::string e = check_entity(doc, i);
        if (!e.empty()) return e;
        continue;
      }
      if (doc[i] == '>') return "raw '>' in text at offset " + std::to_string(i);
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(doc[i]))) return "text outside the root element";
      ++i;
      continue;
    }
    std::size_t close = i + 1;
    bool end_tag = close < doc.size() && doc[close] == '/';
    if (end_tag) ++close;
    std::size_t name_end = close;
    while (name_end < doc.size() && (std::isalnum(static_cast<unsigned char>(doc[name_end])) || doc[name_end] == '-' ||
                                     doc[name_end] == ':' || doc[name_end] == '_'))
      ++name_end;
    if (name_end == close) return "tag without a name at offset " + std::to_string(i);
    std::string name = doc.substr(close, name_end - close);
    // Attributes: name="value" pairs.
    std::size_t p = name_end;
    bool self_closing = false;
    while (true) {
      while (p < doc.size() && std::isspace(static_cast<unsigned char>(doc[p]))) ++p;
      if (p >= doc.size()) return "unterminated tag <" + name;
      if (doc[p] == '>') break;
      if (doc[p] == '/' && p + 1 < doc.size() && doc[p + 1] == '>') {
        self_closing = true;
        ++p;
        break;
      }
      if (end_tag) return "attributes in an end tag </" + name;
      std::size_t a = p;
      while (p < doc.size() && doc[p] != '=' && !std::isspace(static_cast<unsigned char>(doc[p])) && doc[p] != '>') ++p;
      if (p == a || p >= doc.size() || doc[p] != '=') return "attribute without value in <" + name;
      ++p;
      if (p >= doc.size() || (doc[p] != '"' && doc[p] != '\'')) return "unquoted attribute in <" + name;
      char q = doc[p++];
      while (p < doc.size() && doc[p] != q) {
        if (doc[p] == '<') return "raw '<' in an attribute of <" + name;
        if (doc[p] == '&') {
          std::string e = check_entity(doc, p);
          if (!e.empty()) return e;
          continue;
        }
        ++p;
      }
      if (p >= doc.size()) return "unterminated attribute in <" + name;
      ++p;
    }
    i = p + 1;
    if (end_tag) {
      if (stack.empty() || stack.back() != name) return "mismatched </" + name + ">";
      stack.pop_back();
    } else {
      if (stack.empty() && seen_root) return "second root element <" + name + ">";
      seen_root = true;
      if (!self_closing) stack.push_back(name);
    }
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (!seen_root) return "no root element";
  return "";
}

}  // namespace gradlab_test
