#pragma once
// Font: TrueType text through stb_truetype (DejaVu Sans Mono by default), or a built-in 5x7 bitmap font
// when no TrueType file can be found, so that labels never silently disappear.
//
// Sizes are em sizes in pixels (the same number an SVG font-size would carry). Text is UTF-8; characters
// a font lacks are drawn as a hollow box, never skipped, so the label keeps its width.
#include <memory>
#include <string>
#include <vector>

#include "viz/image.h"

namespace gradlab::viz {

struct TrueTypeFace;  // stb_truetype state plus the file bytes it points into

class Font {
 public:
  // Loads a TrueType file; throws gradlab::Error when it cannot be read or parsed.
  static std::shared_ptr<const Font> load_truetype(const std::string& path);
  // The built-in bitmap font (ASCII 32..126 plus · ↵ → ← ↑ ↓ γ Σ − … ×; anything else is a box).
  static std::shared_ptr<const Font> bitmap();
  // The first that works of: $GRADLAB_FONT, DejaVuSansMono.ttf in search_folders(), then the bitmap font.
  // When $GRADLAB_FONT is set but unusable the bitmap font is used (no silent search elsewhere), so
  // `GRADLAB_FONT=/nonexistent` forces the fallback. When the search finds nothing, stderr says so once.
  static std::shared_ptr<const Font> find_system_font();
  // Debian/Fedora/Arch font folders first, then macOS's: ~/Library/Fonts (where Homebrew's font casks go),
  // /Library/Fonts, /System/Library/Fonts, /opt/homebrew/share/fonts.
  static std::vector<std::string> search_folders();
  // The font of the first folder holding a usable DejaVuSansMono.ttf; null when none does.
  static std::shared_ptr<const Font> find_in(const std::vector<std::string>& folders);
  // What find_system_font() prints when no folder has the font: where it looked and how to install one.
  static std::string missing_font_message(const std::vector<std::string>& folders);

  ~Font();
  bool is_truetype() const { return face_ != nullptr; }
  const std::string& path() const { return path_; }  // empty for the bitmap font
  // Name for SVG font-family lists.
  std::string family() const;

  // Vertical metrics in pixels for an em size: ascent above the baseline, descent below it (positive).
  double ascent(double size) const;
  double descent(double size) const;
  double line_height(double size) const { return ascent(size) + descent(size); }
  // Advance width of the text in pixels.
  // bold uses the bold face beside the regular one (DejaVuSansMono-Bold.ttf) when there is one; the bitmap
  // font thickens its strokes instead.
  double measure(const std::string& utf8, double size, bool bold = false) const;
  // True when the font has a real glyph for the code point (not the box).
  bool has_glyph(char32_t cp) const;
  // The text with every character this font has no glyph for written as its code, "U+1F600", so a label
  // never shows an anonymous box.
  std::string printable(const std::string& utf8) const;

  // Renders text into a coverage mask; *baseline receives the row of the baseline inside the mask, and the
  // pen starts at column 1 (one pixel of padding on each side).
  Mask render(const std::string& utf8, double size, int* baseline, bool bold = false) const;

 private:
  Font() = default;
  std::string path_;
  std::shared_ptr<TrueTypeFace> face_;      // primary TrueType face (null for bitmap)
  std::shared_ptr<TrueTypeFace> fallback_;  // DejaVu Sans beside it, for glyphs the mono face lacks
  std::shared_ptr<TrueTypeFace> bold_;      // bold face beside it (optional)
  const TrueTypeFace* face_for(bool bold) const { return bold && bold_ ? bold_.get() : face_.get(); }
  int bitmap_scale(double size) const;
};

using FontPtr = std::shared_ptr<const Font>;

// The font every figure uses unless told otherwise: find_system_font() on first use.
// set_default_font replaces it (tests use Font::bitmap() to exercise the fallback); nullptr re-runs the search.
FontPtr default_font();
void set_default_font(FontPtr font);

}  // namespace gradlab::viz
