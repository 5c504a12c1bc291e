#include "viz/font.h"

#include <stb_truetype.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>

#include "tensor/error.h"
#include "viz/text.h"

namespace gradlab::viz {

struct TrueTypeFace {
  std::vector<unsigned char> bytes;
  stbtt_fontinfo info{};
};

namespace {

// ---- The built-in bitmap font --------------------------------------------------------------------
// Each glyph is 5 columns by up to 9 rows, rows separated by '|': rows 0..6 stand on the baseline
// (capitals fill all 7, lower case letters rows 2..6), rows 7..8 hang below it (g j p q y , ;).
struct BitmapGlyph {
  char32_t cp;
  const char* rows;
};

// clang-format off
constexpr BitmapGlyph kGlyphs[] = {
  {' ', ""},
  {'!', "..#..|..#..|..#..|..#..|..#..|.....|..#.."},
  {'"', ".#.#.|.#.#.|.#.#."},
  {'#', ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#."},
  {'$', "..#..|.####|#.#..|.###.|..#.#|####.|..#.."},
  {'%', "##...|##..#|...#.|..#..|.#...|#..##|...##"},
  {'&', ".##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#"},
  {'\'', "..#..|..#..|..#.."},
  {'(', "...#.|..#..|.#...|.#...|.#...|..#..|...#."},
  {')', ".#...|..#..|...#.|...#.|...#.|..#..|.#..."},
  {'*', ".....|..#..|#.#.#|.###.|#.#.#|..#..|....."},
  {'+', ".....|..#..|..#..|#####|..#..|..#..|....."},
  {',', ".....|.....|.....|.....|.....|.....|.##..|..#..|.#..."},
  {'-', ".....|.....|.....|#####|.....|.....|....."},
  {'.', ".....|.....|.....|.....|.....|.##..|.##.."},
  {'/', ".....|....#|...#.|..#..|.#...|#....|....."},
  {'0', ".###.|#...#|#..##|#.#.#|##..#|#...#|.###."},
  {'1', "..#..|.##..|..#..|..#..|..#..|..#..|.###."},
  {'2', ".###.|#...#|....#|...#.|..#..|.#...|#####"},
  {'3', "#####|...#.|..#..|...#.|....#|#...#|.###."},
  {'4', "...#.|..##.|.#.#.|#..#.|#####|...#.|...#."},
  {'5', "#####|#....|####.|....#|....#|#...#|.###."},
  {'6', "..##.|.#...|#....|####.|#...#|#...#|.###."},
  {'7', "#####|....#|...#.|..#..|.#...|.#...|.#..."},
  {'8', ".###.|#...#|#...#|.###.|#...#|#...#|.###."},
  {'9', ".###.|#...#|#...#|.####|....#|...#.|.##.."},
  {':', ".....|.##..|.##..|.....|.##..|.##..|....."},
  {';', ".....|.##..|.##..|.....|.##..|.##..|..#..|.#..."},
  {'<', "...#.|..#..|.#...|#....|.#...|..#..|...#."},
  {'=', ".....|.....|#####|.....|#####|.....|....."},
  {'>', ".#...|..#..|...#.|....#|...#.|..#..|.#..."},
  {'?', ".###.|#...#|....#|...#.|..#..|.....|..#.."},
  {'@', ".###.|#...#|#.###|#.#.#|#.###|#....|.###."},
  {'A', ".###.|#...#|#...#|#####|#...#|#...#|#...#"},
  {'B', "####.|#...#|#...#|####.|#...#|#...#|####."},
  {'C', ".###.|#...#|#....|#....|#....|#...#|.###."},
  {'D', "###..|#..#.|#...#|#...#|#...#|#..#.|###.."},
  {'E', "#####|#....|#....|####.|#....|#....|#####"},
  {'F', "#####|#....|#....|####.|#....|#....|#...."},
  {'G', ".###.|#...#|#....|#.###|#...#|#...#|.####"},
  {'H', "#...#|#...#|#...#|#####|#...#|#...#|#...#"},
  {'I', ".###.|..#..|..#..|..#..|..#..|..#..|.###."},
  {'J', "..###|...#.|...#.|...#.|...#.|#..#.|.##.."},
  {'K', "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#"},
  {'L', "#....|#....|#....|#....|#....|#....|#####"},
  {'M', "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#"},
  {'N', "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#"},
  {'O', ".###.|#...#|#...#|#...#|#...#|#...#|.###."},
  {'P', "####.|#...#|#...#|####.|#....|#....|#...."},
  {'Q', ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#"},
  {'R', "####.|#...#|#...#|####.|#.#..|#..#.|#...#"},
  {'S', ".####|#....|#....|.###.|....#|....#|####."},
  {'T', "#####|..#..|..#..|..#..|..#..|..#..|..#.."},
  {'U', "#...#|#...#|#...#|#...#|#...#|#...#|.###."},
  {'V', "#...#|#...#|#...#|#...#|#...#|.#.#.|..#.."},
  {'W', "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#."},
  {'X', "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#"},
  {'Y', "#...#|#...#|.#.#.|..#..|..#..|..#..|..#.."},
  {'Z', "#####|....#|...#.|..#..|.#...|#....|#####"},
  {'[', ".###.|.#...|.#...|.#...|.#...|.#...|.###."},
  {'\\', ".....|#....|.#...|..#..|...#.|....#|....."},
  {']', ".###.|...#.|...#.|...#.|...#.|...#.|.###."},
  {'^', "..#..|.#.#.|#...#"},
  {'_', ".....|.....|.....|.....|.....|.....|.....|#####"},
  {'`', ".#...|..#..|...#."},
  {'a', ".....|.....|.###.|....#|.####|#...#|.####"},
  {'b', "#....|#....|#.##.|##..#|#...#|#...#|####."},
  {'c', ".....|.....|.###.|#....|#....|#...#|.###."},
  {'d', "....#|....#|.##.#|#..##|#...#|#...#|.####"},
  {'e', ".....|.....|.###.|#...#|#####|#....|.###."},
  {'f', "..##.|.#..#|.#...|###..|.#...|.#...|.#..."},
  {'g', ".....|.....|.####|#...#|#...#|#...#|.####|....#|.###."},
  {'h', "#....|#....|#.##.|##..#|#...#|#...#|#...#"},
  {'i', "..#..|.....|.##..|..#..|..#..|..#..|.###."},
  {'j', "...#.|.....|..##.|...#.|...#.|...#.|...#.|#..#.|.##.."},
  {'k', "#....|#....|#..#.|#.#..|##...|#.#..|#..#."},
  {'l', ".##..|..#..|..#..|..#..|..#..|..#..|.###."},
  {'m', ".....|.....|##.#.|#.#.#|#.#.#|#.#.#|#.#.#"},
  {'n', ".....|.....|#.##.|##..#|#...#|#...#|#...#"},
  {'o', ".....|.....|.###.|#...#|#...#|#...#|.###."},
  {'p', ".....|.....|####.|#...#|#...#|#...#|####.|#....|#...."},
  {'q', ".....|.....|.####|#...#|#...#|#...#|.####|....#|....#"},
  {'r', ".....|.....|#.##.|##..#|#....|#....|#...."},
  {'s', ".....|.....|.####|#....|.###.|....#|####."},
  {'t', ".#...|.#...|###..|.#...|.#...|.#..#|..##."},
  {'u', ".....|.....|#...#|#...#|#...#|#..##|.##.#"},
  {'v', ".....|.....|#...#|#...#|#...#|.#.#.|..#.."},
  {'w', ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#."},
  {'x', ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#"},
  {'y', ".....|.....|#...#|#...#|#...#|#...#|.####|....#|.###."},
  {'z', ".....|.....|#####|...#.|..#..|.#...|#####"},
  {'{', "...##|..#..|..#..|.#...|..#..|..#..|...##"},
  {'|', "..#..|..#..|..#..|..#..|..#..|..#..|..#..|..#.."},
  {'}', "##...|..#..|..#..|...#.|..#..|..#..|##..."},
  {'~', ".....|.....|.#...|#.#.#|...#.|.....|....."},
  // A few symbols the labels and captions use.
  {0x00B7, ".....|.....|.....|..#..|.###.|..#..|....."},  // · (visible space)
  {0x21B5, "....#|....#|..#.#|.#..#|#####|.#...|..#.."},  // ↵ (newline)
  {0x2192, ".....|..#..|...#.|#####|...#.|..#..|....."},  // → (tab)
  {0x2190, ".....|..#..|.#...|#####|.#...|..#..|....."},  // ←
  {0x2191, "..#..|.###.|#.#.#|..#..|..#..|..#..|....."},  // ↑
  {0x2193, "..#..|..#..|..#..|#.#.#|.###.|..#..|....."},  // ↓
  {0x03B3, ".....|.....|#...#|#...#|.#.#.|.#.#.|..#..|..#..|..#.."},  // γ
  {0x03A3, "#####|#....|.#...|..#..|.#...|#....|#####"},  // Σ
  {0x2212, ".....|.....|.....|#####|.....|.....|....."},  // − (minus)
  {0x2026, ".....|.....|.....|.....|.....|.....|#.#.#"},  // …
  {0x00D7, ".....|#...#|.#.#.|..#..|.#.#.|#...#|....."},  // ×
  {0x2205, "....#|.###.|#..##|#.#.#|##..#|.###.|#...."},  // ∅ (empty token)
};
// clang-format on
constexpr const char* kBoxGlyph = "#####|#...#|#...#|#...#|#...#|#...#|#####";

// Glyph rows as bit masks (bit 4 = leftmost column), 9 rows.
using GlyphBits = std::array<std::uint8_t, 9>;

GlyphBits parse_glyph(const char* rows) {
  GlyphBits bits{};
  int row = 0, col = 0;
  for (const char* p = rows; *p; ++p) {
    if (*p == '|') {
      ++row;
      col = 0;
      continue;
    }
    if (row < 9 && col < 5 && *p == '#') bits[row] |= static_cast<std::uint8_t>(1u << (4 - col));
    ++col;
  }
  return bits;
}

const std::map<char32_t, GlyphBits>& bitmap_table() {
  static const std::map<char32_t, GlyphBits> table = [] {
    std::map<char32_t, GlyphBits> t;
    for (const BitmapGlyph& g : kGlyphs) t[g.cp] = parse_glyph(g.rows);
    return t;
  }();
  return table;
}

const GlyphBits& bitmap_glyph(char32_t cp) {
  static const GlyphBits box = parse_glyph(kBoxGlyph);
  const auto& table = bitmap_table();
  auto it = table.find(cp);
  return it == table.end() ? box : it->second;
}

std::shared_ptr<TrueTypeFace> open_face(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  auto face = std::make_shared<TrueTypeFace>();
  face->bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (face->bytes.size() < 12) return nullptr;
  int offset = stbtt_GetFontOffsetForIndex(face->bytes.data(), 0);
  if (offset < 0 || !stbtt_InitFont(&face->info, face->bytes.data(), offset)) return nullptr;
  return face;
}

// The face that has the glyph (primary first), or null when neither has it.
const TrueTypeFace* pick_face(const TrueTypeFace* primary, const TrueTypeFace* fallback, char32_t cp, int* glyph) {
  *glyph = stbtt_FindGlyphIndex(&primary->info, static_cast<int>(cp));
  if (*glyph != 0) return primary;
  if (fallback) {
    *glyph = stbtt_FindGlyphIndex(&fallback->info, static_cast<int>(cp));
    if (*glyph != 0) return fallback;
  }
  return nullptr;
}

// A control character would otherwise draw nothing; fonts map them to no glyph, so they get the box.
bool renders_as_box_only(char32_t cp) { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0); }

}  // namespace

std::shared_ptr<const Font> Font::load_truetype(const std::string& path) {
  auto face = open_face(path);
  if (!face) throw_error("Font::load_truetype: cannot read a TrueType font from \"", path, "\"");
  std::shared_ptr<Font> font(new Font());
  font->path_ = path;
  font->face_ = face;
  // DejaVu Sans beside the mono face covers more symbols (arrows, Greek, box drawing).
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos) {
    std::string dir = path.substr(0, slash + 1);
    std::string file = path.substr(slash + 1);
    if (file != "DejaVuSans.ttf") font->fallback_ = open_face(dir + "DejaVuSans.ttf");
    auto dot = file.rfind(".ttf");
    if (dot != std::string::npos && file.find("Bold") == std::string::npos)
      font->bold_ = open_face(dir + file.substr(0, dot) + "-Bold.ttf");
  }
  return font;
}

std::shared_ptr<const Font> Font::bitmap() {
  static const std::shared_ptr<const Font> font(new Font());
  return font;
}

std::vector<std::string> Font::search_folders() {
  std::vector<std::string> folders = {
      "/usr/share/fonts/truetype/dejavu",  // Debian, Ubuntu (fonts-dejavu-core)
      "/usr/share/fonts/dejavu",           // Fedora
      "/usr/share/fonts/TTF",              // Arch
      "/usr/share/fonts/dejavu-sans-mono-fonts",
      "/usr/local/share/fonts",
  };
  // macOS: Homebrew's font casks (brew install --cask font-dejavu) install into ~/Library/Fonts.
  if (const char* home = std::getenv("HOME"); home && *home) folders.push_back(std::string(home) + "/Library/Fonts");
  folders.push_back("/Library/Fonts");
  folders.push_back("/System/Library/Fonts");
  folders.push_back("/opt/homebrew/share/fonts");
  return folders;
}

std::shared_ptr<const Font> Font::find_in(const std::vector<std::string>& folders) {
  for (const std::string& dir : folders) {
    try {
      return load_truetype(dir + "/DejaVuSansMono.ttf");
    } catch (const Error&) {
    }
  }
  return nullptr;
}

std::string Font::missing_font_message(const std::vector<std::string>& folders) {
  std::string where;
  for (const std::string& dir : folders) where += (where.empty() ? "" : ", ") + dir;
  return "gradlab: DejaVuSansMono.ttf is in none of " + where +
         "; figures use the built-in bitmap font. Install DejaVu (Debian/Ubuntu: fonts-dejavu-core; macOS: "
         "brew install --cask font-dejavu) or set GRADLAB_FONT=/path/to/font.ttf";
}

std::shared_ptr<const Font> Font::find_system_font() {
  if (const char* env = std::getenv("GRADLAB_FONT"); env && *env) {
    try {
      return load_truetype(env);
    } catch (const Error&) {
      return bitmap();  // a deliberate choice (GRADLAB_FONT=/nonexistent forces the fallback): no message
    }
  }
  const std::vector<std::string> folders = search_folders();
  if (auto font = find_in(folders)) return font;
  // Said once per process: the labels still draw, but look different from the committed figures.
  static std::once_flag said;
  std::call_once(said, [&] { std::fprintf(stderr, "%s\n", missing_font_message(folders).c_str()); });
  return bitmap();
}

Font::~Font() = default;

std::string Font::family() const {
  if (is_truetype()) return "'DejaVu Sans Mono', Menlo, Consolas, monospace";
  return "monospace";
}

int Font::bitmap_scale(double size) const { return std::max(1, static_cast<int>(std::lround(size / 10.0))); }

double Font::ascent(double size) const {
  if (!face_) return 8.0 * bitmap_scale(size);
  int asc, desc, gap;
  stbtt_GetFontVMetrics(&face_->info, &asc, &desc, &gap);
  return asc * stbtt_ScaleForMappingEmToPixels(&face_->info, static_cast<float>(size));
}

double Font::descent(double size) const {
  if (!face_) return 3.0 * bitmap_scale(size);
  int asc, desc, gap;
  stbtt_GetFontVMetrics(&face_->info, &asc, &desc, &gap);
  return -desc * stbtt_ScaleForMappingEmToPixels(&face_->info, static_cast<float>(size));
}

bool Font::has_glyph(char32_t cp) const {
  if (renders_as_box_only(cp)) return false;
  if (!face_) return bitmap_table().count(cp) != 0;
  int glyph;
  return pick_face(face_.get(), fallback_.get(), cp, &glyph) != nullptr;
}

std::string Font::printable(const std::string& utf8) const {
  std::string out;
  for (char32_t cp : decode_utf8(utf8)) {
    if (has_glyph(cp)) {
      out += encode_utf8(cp);
      continue;
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
    out += buf;
  }
  return out;
}

double Font::measure(const std::string& utf8, double size, bool bold) const {
  std::vector<char32_t> cps = decode_utf8(utf8);
  if (!face_) return 6.0 * bitmap_scale(size) * static_cast<double>(cps.size());
  double width = 0;
  const TrueTypeFace* primary = face_for(bold);
  const float scale_primary = stbtt_ScaleForMappingEmToPixels(&primary->info, static_cast<float>(size));
  int box_advance, lsb;
  stbtt_GetCodepointHMetrics(&primary->info, 'M', &box_advance, &lsb);
  for (char32_t cp : cps) {
    int glyph = 0;
    const TrueTypeFace* f = renders_as_box_only(cp) ? nullptr : pick_face(primary, fallback_.get(), cp, &glyph);
    if (!f) {
      width += box_advance * scale_primary;
      continue;
    }
    int adv;
    stbtt_GetGlyphHMetrics(&f->info, glyph, &adv, &lsb);
    width += adv * stbtt_ScaleForMappingEmToPixels(&f->info, static_cast<float>(size));
  }
  return width;
}

Mask Font::render(const std::string& utf8, double size, int* baseline, bool bold) const {
  std::vector<char32_t> cps = decode_utf8(utf8);
  const int asc = static_cast<int>(std::ceil(ascent(size)));
  const int desc = static_cast<int>(std::ceil(descent(size)));
  const int width = static_cast<int>(std::ceil(measure(utf8, size, bold))) + 2 + (!face_ && bold ? 1 : 0);
  Mask mask(std::max(width, 1), asc + desc + 2);
  const int base = asc + 1;
  *baseline = base;

  if (!face_) {
    // Bitmap: each glyph row r (0..8) sits at baseline - 7 + r (in units of the scale).
    const int s = bitmap_scale(size);
    int pen = 1;
    for (char32_t cp : cps) {
      const GlyphBits& g = renders_as_box_only(cp) ? bitmap_glyph(0xFFFD) : bitmap_glyph(cp);
      for (int r = 0; r < 9; ++r)
        for (int c = 0; c < 5; ++c) {
          if (!(g[r] & (1u << (4 - c)))) continue;
          for (int dy = 0; dy < s; ++dy)
            for (int dx = 0; dx < s + (bold ? 1 : 0); ++dx) {
              int x = pen + c * s + dx, y = base + (r - 7) * s + dy;
              if (x >= 0 && y >= 0 && x < mask.width && y < mask.height) mask.at(x, y) = 255;
            }
        }
      pen += 6 * s;
    }
    return mask;
  }

  const TrueTypeFace* primary = face_for(bold);
  const float scale_primary = stbtt_ScaleForMappingEmToPixels(&primary->info, static_cast<float>(size));
  int box_advance, lsb;
  stbtt_GetCodepointHMetrics(&primary->info, 'M', &box_advance, &lsb);
  double pen = 1.0;
  std::vector<unsigned char> buf;
  for (char32_t cp : cps) {
    int glyph = 0;
    const TrueTypeFace* f = renders_as_box_only(cp) ? nullptr : pick_face(primary, fallback_.get(), cp, &glyph);
    if (!f) {
      // Hollow box, cap height tall, so a missing glyph is visible and keeps its place.
      double adv = box_advance * scale_primary;
      int x0 = static_cast<int>(std::lround(pen + adv * 0.15)), x1 = static_cast<int>(std::lround(pen + adv * 0.85));
      int y0 = base - static_cast<int>(std::lround(size * 0.72)), y1 = base - 1;
      for (int x = x0; x <= x1; ++x)
        for (int y = y0; y <= y1; ++y)
          if ((x == x0 || x == x1 || y == y0 || y == y1) && x >= 0 && x < mask.width && y >= 0 && y < mask.height)
            mask.at(x, y) = 255;
      pen += adv;
      continue;
    }
    const float scale = stbtt_ScaleForMappingEmToPixels(&f->info, static_cast<float>(size));
    const int ix = static_cast<int>(std::floor(pen));
    const float shift = static_cast<float>(pen - ix);
    int x0, y0, x1, y1;
    stbtt_GetGlyphBitmapBoxSubpixel(&f->info, glyph, scale, scale, shift, 0.0f, &x0, &y0, &x1, &y1);
    const int gw = x1 - x0, gh = y1 - y0;
    if (gw > 0 && gh > 0) {
      buf.assign(static_cast<std::size_t>(gw) * gh, 0);
      stbtt_MakeGlyphBitmapSubpixel(&f->info, buf.data(), gw, gh, gw, scale, scale, shift, 0.0f, glyph);
      for (int y = 0; y < gh; ++y)
        for (int x = 0; x < gw; ++x) {
          int mx = ix + x0 + x, my = base + y0 + y;
          if (mx < 0 || my < 0 || mx >= mask.width || my >= mask.height) continue;
          std::uint8_t& m = mask.at(mx, my);
          m = std::max(m, buf[static_cast<std::size_t>(y) * gw + x]);
        }
    }
    int adv;
    stbtt_GetGlyphHMetrics(&f->info, glyph, &adv, &lsb);
    pen += adv * scale;
  }
  return mask;
}

namespace {
std::mutex g_font_mutex;
FontPtr g_default_font;
}  // namespace

FontPtr default_font() {
  std::lock_guard<std::mutex> lock(g_font_mutex);
  if (!g_default_font) g_default_font = Font::find_system_font();
  return g_default_font;
}

void set_default_font(FontPtr font) {
  std::lock_guard<std::mutex> lock(g_font_mutex);
  g_default_font = std::move(font);
}

}  // namespace gradlab::viz
