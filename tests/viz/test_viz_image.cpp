// Raster, canvas, fonts, colour maps, SVG well-formedness, determinism.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tensor/error.h"
#include "viz/canvas.h"
#include "viz/colormap.h"
#include "viz/font.h"
#include "viz/image.h"
#include "viz/text.h"
#include "xml_check.h"

using namespace gradlab::viz;

namespace {
// Counts pixels in a rectangle that differ from white.
int inked(const Image& img, int x0, int y0, int w, int h) {
  int n = 0;
  for (int y = y0; y < y0 + h; ++y)
    for (int x = x0; x < x0 + w; ++x)
      if (img.get(x, y) != colors::white) ++n;
  return n;
}
}  // namespace

TEST_SUITE("viz") {

TEST_CASE("image: rectangles clip at the edges and PNG bytes decode back to the same pixels") {
  Image img(20, 10);
  img.fill_rect(-5, -5, 10, 10, Color{10, 20, 30});  // partly outside: must clip, not crash
  img.fill_rect(15, 5, 100, 100, Color{200, 0, 0});
  CHECK(img.get(0, 0) == Color{10, 20, 30});
  CHECK(img.get(4, 4) == Color{10, 20, 30});
  CHECK(img.get(5, 5) == colors::white);
  CHECK(img.get(19, 9) == Color{200, 0, 0});
  CHECK_THROWS_AS(img.get(20, 0), gradlab::Error);
  CHECK_THROWS_AS(Image(0, 5), gradlab::Error);
  std::vector<std::uint8_t> png = img.encode_png();
  REQUIRE(png.size() > 8);
  CHECK(png[0] == 0x89);
  CHECK(png[1] == 'P');
  Image back = decode_png(png);
  CHECK(back.width() == 20);
  CHECK(back.height() == 10);
  CHECK(back.bytes() == img.bytes());
}

TEST_CASE("image: blend mixes by coverage and hatch repeats with its period") {
  Image img(12, 12);
  img.blend(0, 0, colors::black, 255);
  img.blend(1, 0, colors::black, 0);
  img.blend(2, 0, colors::black, 128);
  CHECK(img.get(0, 0) == colors::black);
  CHECK(img.get(1, 0) == colors::white);
  CHECK(img.get(2, 0).r == 127);
  img.hatch_rect(0, 2, 12, 10, colors::hatch_bg, colors::hatch_fg, 6, 2);
  for (int y = 2; y < 12; ++y)
    for (int x = 0; x < 12; ++x) {
      Color c = img.get(x, y);
      CHECK((c == colors::hatch_bg || c == colors::hatch_fg));
      CHECK(c == ((x + y) % 6 < 2 ? colors::hatch_fg : colors::hatch_bg));
    }
}

TEST_CASE("image: anti-aliased polyline covers its path and nothing far from it") {
  Image img(40, 40);
  stroke_polyline(img, {5, 35}, {20, 20}, colors::black, 3.0);
  CHECK(img.get(20, 20) == colors::black);  // on the line
  CHECK(img.get(20, 25) == colors::white);  // well off it
  CHECK(img.get(20, 10) == colors::white);
  // A dashed line leaves gaps.
  Image dashed(100, 10);
  stroke_polyline(dashed, {0, 100}, {5, 5}, colors::black, 2.0, 8.0);
  int on = 0;
  for (int x = 0; x < 100; ++x) on += dashed.get(x, 5) == colors::black;
  CHECK(on > 30);
  CHECK(on < 80);
}

TEST_CASE("colormap: endpoints are the published colours and lightness rises monotonically") {
  const Colormap& v = Colormap::viridis();
  CHECK(v(0.0) == color_from_hex("#440154"));
  CHECK(v(1.0) == color_from_hex("#fde725"));
  CHECK(v(-3.0) == v(0.0));  // clamped
  CHECK(v(7.0) == v(1.0));
  CHECK(v(std::nan("")) == Colormap::nan_color);
  const Colormap& c = Colormap::cividis();
  CHECK(c(0.0) == color_from_hex("#00204d"));
  CHECK(c(1.0) == color_from_hex("#ffea46"));
  for (const Colormap* m : {&v, &c}) {
    CAPTURE(m->name());
    double prev = -1;
    for (int i = 0; i < 256; ++i) {
      double L = oklab_lightness(m->table()[i]);
      CHECK(L > prev);  // strictly increasing: no plateaus, no reversals
      prev = L;
    }
    CHECK(oklab_lightness(m->table()[255]) - oklab_lightness(m->table()[0]) > 0.5);
  }
  CHECK(&Colormap::by_name("cividis") == &c);
  CHECK_THROWS_AS(Colormap::by_name("jet"), gradlab::Error);
}

TEST_CASE("text: token escapes make whitespace and control bytes visible") {
  CHECK(escape_token(" ") == "\u00b7");
  CHECK(escape_token("\n") == "\u21b5");
  CHECK(escape_token("\t") == "\u2192");
  CHECK(escape_token("\x01") == "\\x01");
  CHECK(escape_token("\x7f") == "\\x7F");
  CHECK(escape_token("\xff") == "\\xFF");  // not UTF-8
  CHECK(escape_token("a b") == "a\u00b7b");
  CHECK(escape_token("\u00e9") == "\u00e9");  // printable non-ASCII stays
  CHECK(escape_token("") == "\u2205");
  CHECK(truncate_label("abcdefghijkl", 5) == "abcd\u2026");
  CHECK(truncate_label("abc", 5) == "abc");
  std::vector<char32_t> cps = decode_utf8("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\xc3");
  REQUIRE(cps.size() == 6);
  CHECK(cps[1] == 0xE9);
  CHECK(cps[2] == 0x20AC);
  CHECK(cps[3] == 0x1F600);
  CHECK(cps[4] == 0xFFFD);
  CHECK(cps[5] == 0xFFFD);  // truncated sequence
  CHECK(xml_escape("<a & \"b\">\x01") == "&lt;a &amp; &quot;b&quot;&gt;\xef\xbf\xbd");
}

TEST_CASE("font: GRADLAB_FONT=/nonexistent falls back to the bitmap font that still draws every label") {
  const char* old = std::getenv("GRADLAB_FONT");
  std::string saved = old ? old : "";
  setenv("GRADLAB_FONT", "/nonexistent/font.ttf", 1);
  FontPtr f = Font::find_system_font();
  if (old) setenv("GRADLAB_FONT", saved.c_str(), 1);
  else unsetenv("GRADLAB_FONT");
  REQUIRE(f);
  CHECK_FALSE(f->is_truetype());
  CHECK(f->has_glyph('A'));
  CHECK(f->has_glyph(0x21B5));        // ↵ has a bitmap glyph
  CHECK_FALSE(f->has_glyph(0x1F600)); // an emoji becomes a box
  CHECK_THROWS_AS(Font::load_truetype("/nonexistent/font.ttf"), gradlab::Error);
  // Every printable ASCII character has ink (no blank glyphs by mistake), except the space.
  for (char ch = 33; ch < 127; ++ch) {
    int base = 0;
    Mask m = f->render(std::string(1, ch), 10, &base);
    int ink = 0;
    for (auto a : m.alpha) ink += a > 0;
    CAPTURE(ch);
    CHECK(ink > 0);
  }
}

TEST_CASE("font: the search covers macOS's font folders after the Linux ones and says where it looked") {
  const char* old_home = std::getenv("HOME");
  const std::string saved = old_home ? old_home : "";
  setenv("HOME", "/Users/student", 1);
  const std::vector<std::string> folders = Font::search_folders();
  if (old_home) setenv("HOME", saved.c_str(), 1);
  else unsetenv("HOME");
  auto at = [&](const std::string& dir) {
    return std::find(folders.begin(), folders.end(), dir) - folders.begin();
  };
  const auto n = static_cast<std::ptrdiff_t>(folders.size());
  CHECK(at("/usr/share/fonts/truetype/dejavu") == 0);  // Debian's stays first
  for (const char* mac : {"/Users/student/Library/Fonts", "/Library/Fonts", "/System/Library/Fonts"}) {
    CAPTURE(mac);
    CHECK(at(mac) < n);
    CHECK(at(mac) > at("/usr/local/share/fonts"));
  }
  const std::string message = Font::missing_font_message({"/a/fonts", "/b/fonts"});
  CHECK(message.find("/a/fonts, /b/fonts") != std::string::npos);
  CHECK(message.find("bitmap font") != std::string::npos);
  CHECK(message.find("GRADLAB_FONT") != std::string::npos);
  CHECK(message.find("brew install --cask font-dejavu") != std::string::npos);
}

TEST_CASE("font: find_in takes the first folder that holds DejaVuSansMono.ttf, and null when none does") {
  CHECK(Font::find_in({"/nonexistent/a", "/nonexistent/b"}) == nullptr);
  const std::string debian = "/usr/share/fonts/truetype/dejavu";
  FontPtr found = Font::find_in({"/nonexistent/a", debian});
  if (!std::ifstream(debian + "/DejaVuSansMono.ttf")) {
    CHECK(found == nullptr);
    return;
  }
  REQUIRE(found);
  CHECK(found->is_truetype());
  CHECK(found->path() == debian + "/DejaVuSansMono.ttf");
}

TEST_CASE("font: odd labels render without crashing with TrueType and bitmap fonts with visible ink") {
  std::vector<FontPtr> fonts = {Font::bitmap()};
  FontPtr system = Font::find_system_font();
  if (system->is_truetype()) fonts.push_back(system);
  else MESSAGE("no TrueType font on this machine; only the bitmap font is tested");
  const std::vector<std::string> labels = {"plain", "new\nline", "tab\there", "ctl\x01", "bad\xff\xfe utf8",
                                           "emoji \xf0\x9f\x98\x80", "\xce\xb3=0.5 \xe2\x86\x92 \xe2\x86\xb5", ""};
  for (const FontPtr& f : fonts) {
    for (const std::string& label : labels) {
      for (bool escaped : {false, true}) {
        std::string text = escaped ? escape_token(label) : label;
        Canvas cv(300, 60, f);
        cv.text(10, 30, text, {14, colors::black});
        cv.text(200, 55, text, {12, colors::black, Anchor::Start, VAlign::Baseline, true});
        if (!text.empty()) CHECK(inked(cv.image(), 0, 0, 300, 60) > 0);
        CHECK(gradlab_test::xml_problem(cv.svg()) == "");
      }
    }
  }
}

TEST_CASE("canvas: text anchors place the ink where asked and vertical text reads upwards") {
  Canvas cv(200, 200, Font::bitmap());
  cv.text(100, 20, "MMMM", {10, colors::black, Anchor::End, VAlign::Top});
  CHECK(inked(cv.image(), 0, 0, 100, 40) > 0);
  CHECK(inked(cv.image(), 101, 0, 99, 40) == 0);  // ends at x = 100
  cv.text(50, 190, "MMMMMMMM", {10, colors::black, Anchor::Start, VAlign::Middle, true});
  // Vertical: 8 glyphs * 6 px = 48 px tall, from y = 190 upwards, centred on x = 50.
  CHECK(inked(cv.image(), 40, 140, 20, 51) > 0);
  CHECK(inked(cv.image(), 40, 60, 20, 70) == 0);
  CHECK(inked(cv.image(), 0, 100, 38, 100) == 0);
}

TEST_CASE("canvas: SVG is well formed and mirrors the calls and output is deterministic") {
  auto draw = [] {
    Canvas cv(120, 80);
    cv.fill_rect(0, 0, 10, 10, Color{1, 2, 3});
    cv.stroke_rect(5, 5, 50, 30, colors::frame, 2);
    cv.hatch({Rect{60, 5, 20, 20}, Rect{60, 25, 10, 10}});
    cv.line(0, 70, 120, 70, colors::black, 1.5, 4);
    cv.circle(100, 50, 4, Color{200, 100, 0});
    cv.begin_group("g<&>");
    cv.text(10, 60, "a<b & \"c\" \xff", {11});
    cv.end_group();
    std::vector<Color> cells(4 * 3, Color{9, 9, 9});
    std::vector<bool> present(12, true);
    present[5] = false;
    cv.cells(70, 40, 3, 3, 4, 3, cells, present);
    return cv;
  };
  Canvas a = draw(), b = draw();
  std::string svg = a.svg();
  CHECK(gradlab_test::xml_problem(svg) == "");
  CHECK(svg.find("url(#gradlab-hatch)") != std::string::npos);
  CHECK(svg.find("<pattern id=\"gradlab-hatch\"") != std::string::npos);
  CHECK(svg.find("fill=\"#010203\"") != std::string::npos);
  CHECK(svg == b.svg());
  CHECK(a.png() == b.png());
  // The checker itself catches broken documents.
  CHECK(gradlab_test::xml_problem("<svg><g></svg>") != "");
  CHECK(gradlab_test::xml_problem("<svg>a & b</svg>") != "");
  CHECK(gradlab_test::xml_problem("<svg x=1/>") != "");
  CHECK_THROWS_AS(a.end_group(), gradlab::Error);
}

TEST_CASE("canvas: large cell grids become one embedded PNG in the SVG") {
  Canvas cv(300, 300);
  std::vector<Color> cells(100 * 100, Color{50, 60, 70});
  cv.cells(0, 0, 3, 3, 100, 100, cells, std::vector<bool>(cells.size(), true));
  std::string svg = cv.svg();
  CHECK(svg.find("data:image/png;base64,") != std::string::npos);
  CHECK(svg.size() < 200000);
  CHECK(gradlab_test::xml_problem(svg) == "");
  CHECK(cv.image().get(299, 299) == Color{50, 60, 70});
  CHECK(base64({'M', 'a', 'n'}) == "TWFu");
  CHECK(base64({'M', 'a'}) == "TWE=");
  CHECK(base64({'M'}) == "TQ==");
}

}  // TEST_SUITE
