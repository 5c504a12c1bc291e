#pragma once
// Text helpers shared by the font, the SVG writer and the heatmap labels: UTF-8 decoding that never
// fails (bad bytes become U+FFFD), token escapes that make whitespace visible, and XML escaping.
#include <string>
#include <vector>

namespace gradlab::viz {

// Decodes UTF-8; every malformed, overlong, surrogate or truncated sequence yields U+FFFD for its first byte.
std::vector<char32_t> decode_utf8(const std::string& s);
std::string encode_utf8(char32_t cp);
std::string encode_utf8(const std::vector<char32_t>& cps);

// A token as a label: space -> "·", newline -> "↵", tab -> "→", other control characters and bytes that
// are not valid UTF-8 -> "\xNN"; printable characters (including non-ASCII) stay as they are.
// The empty token becomes "∅" so the label slot is never blank.
std::string escape_token(const std::string& token);

// Shortens a label to at most max_chars code points, ending in "…" when cut.
std::string truncate_label(const std::string& utf8, std::size_t max_chars);

// Text for XML character data or attribute values: & < > " ' escaped; characters XML 1.0 forbids
// (C0 controls other than tab/newline, invalid UTF-8) become U+FFFD. The output is always valid UTF-8.
std::string xml_escape(const std::string& s);

}  // namespace gradlab::viz
