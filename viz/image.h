#pragma once
// Image: an RGB8 raster with a white background, plus the few pixel operations the figures need.
// Pixel (x, y) lives at data[3 * (y * width + x)]; x grows to the right, y grows downwards.
// Everything here is deterministic: the same drawing calls give the same bytes.
#include <cstdint>
#include <string>
#include <vector>

namespace gradlab::viz {

struct Color {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Color& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Color& o) const { return !(*this == o); }
};

// "#rrggbb" <-> Color. from_hex throws gradlab::Error on anything else.
Color color_from_hex(const std::string& hex);
std::string color_to_hex(Color c);
// Linear mix in sRGB bytes: t = 0 gives a, t = 1 gives b.
Color mix(Color a, Color b, double t);

namespace colors {
inline constexpr Color white{255, 255, 255};
inline constexpr Color black{0, 0, 0};
inline constexpr Color text{34, 34, 34};        // near-black for labels
inline constexpr Color muted{110, 110, 110};    // captions, footnotes
inline constexpr Color frame{60, 60, 60};       // panel borders
inline constexpr Color grid{226, 226, 226};     // plot grid lines
inline constexpr Color hatch_bg{242, 242, 242}; // masked (future) cells: background ...
inline constexpr Color hatch_fg{190, 190, 190}; // ... and diagonal lines
}  // namespace colors

// A coverage mask (0..255) used for text glyphs and anti-aliased strokes before they are blended.
struct Mask {
  int width = 0, height = 0;
  std::vector<std::uint8_t> alpha;  // width*height, row-major
  Mask() = default;
  Mask(int w, int h) : width(w), height(h), alpha(static_cast<std::size_t>(w) * h, 0) {}
  std::uint8_t at(int x, int y) const { return alpha[static_cast<std::size_t>(y) * width + x]; }
  std::uint8_t& at(int x, int y) { return alpha[static_cast<std::size_t>(y) * width + x]; }
};

class Image {
 public:
  Image() = default;
  // width, height in 1..32768; throws gradlab::Error otherwise.
  Image(int width, int height, Color background = colors::white);

  int width() const { return width_; }
  int height() const { return height_; }
  const std::vector<std::uint8_t>& bytes() const { return pixels_; }

  Color get(int x, int y) const;   // throws when (x, y) is outside
  void set(int x, int y, Color c);  // silently clipped: drawing past the edge is not an error
  // Blends c over the pixel with coverage alpha in [0, 255] (clipped like set).
  void blend(int x, int y, Color c, int alpha);

  void fill_rect(int x, int y, int w, int h, Color c);
  // Hatch: background bg with diagonal lines of colour fg. The pattern is anchored to image coordinates
  // (a pixel is a line pixel when (x + y) mod period < thickness), so neighbouring hatched rectangles join
  // into one seamless pattern.
  void hatch_rect(int x, int y, int w, int h, Color bg, Color fg, int period, int thickness);
  // Draws mask with its top-left corner at (x, y) in colour c. rotate_ccw turns it 90 degrees
  // counter-clockwise first (for text that reads bottom-to-top).
  void draw_mask(const Mask& m, int x, int y, Color c, bool rotate_ccw = false);

  // PNG bytes via stb_image_write (compression level fixed, so the bytes are deterministic).
  std::vector<std::uint8_t> encode_png() const;
  void write_png(const std::string& path) const;  // throws gradlab::Error when the file cannot be written
  // Raw pixel access for decoders and tests (3 bytes per pixel, row-major).
  std::uint8_t* raw() { return pixels_.data(); }

 private:
  int width_ = 0, height_ = 0;
  std::vector<std::uint8_t> pixels_;
};

// Decodes PNG bytes (any colour type) into an RGB image; throws gradlab::Error on bad data. For tests and
// for reading figures back.
Image decode_png(const std::vector<std::uint8_t>& png);

// RGBA8 PNG encoding of a small image (used to embed large heatmaps inside SVG files).
std::vector<std::uint8_t> encode_png_rgba(int width, int height, const std::vector<std::uint8_t>& rgba);

// Anti-aliased strokes rendered into a coverage mask covering the whole image, then blended once, so
// joints of a polyline are not drawn twice. Width is in pixels; caps are round.
void stroke_polyline(Image& img, const std::vector<double>& xs, const std::vector<double>& ys, Color c,
                     double width, double dash = 0.0);
void fill_circle(Image& img, double cx, double cy, double radius, Color c);

}  // namespace gradlab::viz
