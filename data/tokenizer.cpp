#include "data/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "tensor/error.h"
#include "tensor/utf8.h"

namespace gradlab {

using json = nlohmann::json;

std::vector<Utf8Char> decode_utf8(std::string_view text) {
  std::vector<Utf8Char> out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    char32_t cp = 0;
    std::size_t len = utf8_decode_one(text, i, cp);
    if (len == 0) {
      out.push_back({U'\uFFFD', i, 1, false});
      i += 1;
    } else {
      out.push_back({cp, i, len, true});
      i += len;
    }
  }
  return out;
}

std::size_t count_invalid_utf8(std::string_view text) {
  std::size_t invalid = 0, i = 0;
  while (i < text.size()) {
    char32_t cp = 0;
    std::size_t len = utf8_decode_one(text, i, cp);
    if (len == 0) ++invalid, len = 1;
    i += len;
  }
  return invalid;
}

void append_utf8(std::string& out, char32_t cp) {
  if (!is_unicode_scalar(cp)) throw_error("append_utf8: got U+", std::hex, static_cast<std::uint32_t>(cp), ", not a Unicode scalar value");
  utf8_append(out, cp);
}

std::string describe_code_point(char32_t cp) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(cp));
  std::string shown;
  switch (cp) {
    case U'\n': shown = "\\n"; break;
    case U'\t': shown = "\\t"; break;
    case U'\r': shown = "\\r"; break;
    case U'\'': shown = "\\'"; break;
    case U'\\': shown = "\\\\"; break;
    default:
      if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || !is_unicode_scalar(cp)) {
        return std::string(hex);
      }
      append_utf8(shown, cp);
  }
  return "'" + shown + "' (" + hex + ")";
}

Tokenizer::Tokenizer() = default;

Tokenizer Tokenizer::byte_level() { return Tokenizer(); }

Tokenizer Tokenizer::char_level(std::string_view training_text) {
  if (training_text.empty()) throw_error("char tokenizer: the training text is empty, so there is no vocabulary");
  // One pass over the text, never materialising it as code points: ASCII in a table, the rest in a vector.
  std::vector<char32_t> cps;
  std::vector<bool> seen_ascii(128, false);
  std::size_t i = 0;
  while (i < training_text.size()) {
    char32_t cp = 0;
    std::size_t len = utf8_decode_one(training_text, i, cp);
    if (len == 0) cp = 0xFFFD, len = 1;
    i += len;
    if (cp < 128) {
      if (seen_ascii[cp]) continue;
      seen_ascii[cp] = true;
    }
    cps.push_back(cp);
    if (cps.size() > (1u << 16)) {  // keep the non-ASCII list short on texts with many repeats
      std::sort(cps.begin(), cps.end());
      cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
    }
  }
  std::sort(cps.begin(), cps.end());
  cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
  return from_vocab(std::move(cps));
}

Tokenizer Tokenizer::from_vocab(std::vector<char32_t> code_points) {
  if (code_points.empty()) throw_error("char tokenizer: got an empty vocabulary, expected at least one character");
  for (std::size_t k = 0; k < code_points.size(); ++k) {
    if (!is_unicode_scalar(code_points[k]))
      throw_error("char tokenizer: vocabulary entry ", k, " is ", static_cast<std::uint32_t>(code_points[k]),
                  ", not a Unicode scalar value (0..0x10FFFF without surrogates)");
    if (k > 0 && code_points[k] <= code_points[k - 1])
      throw_error("char tokenizer: vocabulary entry ", k, " (", describe_code_point(code_points[k]),
                  ") is not greater than the one before it (", describe_code_point(code_points[k - 1]),
                  "); the vocabulary must be sorted and unique");
  }
  Tokenizer t;
  t.kind_ = TokenizerKind::Char;
  t.vocab_ = std::move(code_points);
  t.ascii_ids_.assign(128, -1);
  for (std::size_t k = 0; k < t.vocab_.size() && t.vocab_[k] < 128; ++k) t.ascii_ids_[t.vocab_[k]] = static_cast<std::int32_t>(k);
  return t;
}

std::int64_t Tokenizer::vocab_size() const {
  return kind_ == TokenizerKind::Byte ? 256 : static_cast<std::int64_t>(vocab_.size());
}

std::int32_t Tokenizer::id_of(char32_t cp) const {
  if (kind_ == TokenizerKind::Byte) return -1;
  if (cp < 128) return ascii_ids_[cp];
  auto it = std::lower_bound(vocab_.begin(), vocab_.end(), cp);
  if (it == vocab_.end() || *it != cp) return -1;
  return static_cast<std::int32_t>(it - vocab_.begin());
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text) const {
  // text is UTF-8 (any bytes for the byte kind); returns one id per character (per byte)
  std::vector<std::int32_t> ids;
  if (kind_ == TokenizerKind::Byte) {
    ids.reserve(text.size());
    for (unsigned char b : text) ids.push_back(b);
    return ids;
  }
  // Decoded on the fly: a 1 GiB text must not become a vector of 24-byte records first.
  ids.reserve(text.size());
  std::size_t offset = 0, index = 0;
  while (offset < text.size()) {
    char32_t cp = 0;
    std::size_t len = utf8_decode_one(text, offset, cp);
    const bool valid = len > 0;
    if (!valid) cp = 0xFFFD, len = 1;
    std::int32_t id = id_of(cp);
    if (id < 0) {
      char byte_hex[8];
      std::snprintf(byte_hex, sizeof byte_hex, "0x%02X", static_cast<unsigned char>(text[offset]));
      if (!valid)
        throw_error("char tokenizer: invalid UTF-8 byte ", byte_hex, " (read as U+FFFD) at character ", index,
                    " (byte offset ", offset, ") is not in the vocabulary of ", vocab_.size(),
                    " characters; use the byte tokenizer for non-UTF-8 text");
      throw_error("char tokenizer: character ", describe_code_point(cp), " at character ", index, " (byte offset ",
                  offset, ") is not in the vocabulary of ", vocab_.size(), " characters");
    }
    ids.push_back(id);
    offset += len;
    ++index;
  }
  return ids;
}

std::string Tokenizer::decode_one(std::int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw_error(kind_name(), " tokenizer: id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  std::string out;
  if (kind_ == TokenizerKind::Byte) {
    out += static_cast<char>(static_cast<unsigned char>(id));
  } else {
    append_utf8(out, vocab_[static_cast<std::size_t>(id)]);
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (std::size_t pos = 0; pos < ids.size(); ++pos) {
    std::int32_t id = ids[pos];
    if (id < 0 || id >= vocab_size())
      throw_error(kind_name(), " tokenizer: id ", id, " at position ", pos, " is outside the vocabulary [0, ",
                  vocab_size(), ")");
    if (kind_ == TokenizerKind::Byte) {
      out += static_cast<char>(static_cast<unsigned char>(id));
    } else {
      append_utf8(out, vocab_[static_cast<std::size_t>(id)]);
    }
  }
  return out;
}

std::string Tokenizer::to_json() const {
  json j;
  j["kind"] = kind_name();
  if (kind_ == TokenizerKind::Char) {
    json v = json::array();
    for (char32_t cp : vocab_) v.push_back(static_cast<std::uint32_t>(cp));
    j["vocab"] = std::move(v);
  }
  return j.dump();
}

Tokenizer Tokenizer::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw_error("tokenizer JSON: not valid JSON: ", e.what());
  }
  if (!j.is_object()) throw_error("tokenizer JSON: got JSON ", j.type_name(), ", expected an object");
  for (const auto& [key, value] : j.items())
    if (key != "kind" && key != "vocab") throw_error("tokenizer JSON: unknown key '", key, "' (expected kind, vocab)");
  if (!j.contains("kind") || !j["kind"].is_string())
    throw_error("tokenizer JSON: missing string 'kind' (expected \"char\" or \"byte\")");
  const std::string kind = j["kind"].get<std::string>();
  if (kind == "byte") {
    if (j.contains("vocab")) throw_error("tokenizer JSON: a byte tokenizer has no 'vocab'");
    return byte_level();
  }
  if (kind != "char") throw_error("tokenizer JSON: unknown kind '", kind, "' (expected \"char\" or \"byte\")");
  if (!j.contains("vocab") || !j["vocab"].is_array())
    throw_error("tokenizer JSON: a char tokenizer needs 'vocab', an array of code points");
  const json& v = j["vocab"];
  if (v.size() > 0x110000) throw_error("tokenizer JSON: vocab has ", v.size(), " entries, more than there are code points");
  std::vector<char32_t> cps;
  cps.reserve(v.size());
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (!v[k].is_number_integer() || (v[k].is_number_unsigned() ? v[k].get<std::uint64_t>() > 0x10FFFF
                                                                 : !is_unicode_scalar(v[k].get<std::int64_t>())))
      // never dump() a container: a hostile, deeply nested entry would recurse once per level
      throw_error("tokenizer JSON: vocab entry ", k, " is ",
                  v[k].is_primitive() ? v[k].dump().substr(0, 40) : std::string("a JSON ") + v[k].type_name(),
                  ", expected a code point (0..1114111)");
    cps.push_back(static_cast<char32_t>(v[k].get<std::int64_t>()));
  }
  return from_vocab(std::move(cps));
}

}  // namespace gradlab
