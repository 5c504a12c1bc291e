#pragma once
// Canvas: one set of drawing calls, two outputs. Every call paints the RGB raster (for PNG) and appends the
// same primitive to an SVG document, so the .png and the .svg of a figure always share one layout.
// Coordinates are pixels, origin top-left, y down.
#include <string>
#include <utility>
#include <vector>

#include "viz/font.h"
#include "viz/image.h"

namespace gradlab::viz {

enum class Anchor { Start, Middle, End };             // along the text direction
enum class VAlign { Baseline, Top, Middle, Bottom };  // across it

struct TextStyle {
  double size = 12.0;  // em size in pixels
  Color color = colors::text;
  Anchor anchor = Anchor::Start;
  VAlign valign = VAlign::Baseline;
  // Vertical text reads bottom-to-top (rotated 90 degrees counter-clockwise); then "start" is the bottom
  // end and the VAlign offsets move left/right (the glyph tops point left).
  bool vertical = false;
  bool bold = false;
};

struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
};

// The box a drawn text occupies (ascent to descent across, advance width along), in pixels.
struct TextBox {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  std::string text;
};
// True when the two boxes share area (touching edges do not count; `slack` pixels of overlap are forgiven).
bool boxes_overlap(const TextBox& a, const TextBox& b, double slack = 0.5);
// Index pairs (a < b) of boxes that overlap: the test every figure must pass (empty = no label collides).
std::vector<std::pair<std::size_t, std::size_t>> overlapping_boxes(const std::vector<TextBox>& boxes, double slack = 0.5);

class Canvas {
 public:
  Canvas(int width, int height, FontPtr font = default_font());

  int width() const { return image_.width(); }
  int height() const { return image_.height(); }
  const Font& font() const { return *font_; }
  const Image& image() const { return image_; }

  void fill_rect(int x, int y, int w, int h, Color c);
  // Outline drawn inside the rectangle, thickness pixels wide.
  void stroke_rect(int x, int y, int w, int h, Color c, int thickness = 1);
  // The neutral "masked" pattern (light grey with diagonal lines) over a union of rectangles.
  void hatch(const std::vector<Rect>& rects);
  void line(double x0, double y0, double x1, double y1, Color c, double width = 1.0, double dash = 0.0);
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys, Color c, double width = 1.0,
                double dash = 0.0);
  void circle(double cx, double cy, double radius, Color c);
  // A cols x rows grid of coloured cells, each cell_w x cell_h pixels, top-left at (x, y); colors is
  // row-major (rows*cols); cells with present[k] == false are left untouched. In the SVG, small grids become
  // one <rect> per run of equal cells, large ones one embedded pixelated PNG (so files stay small).
  void cells(int x, int y, int cell_w, int cell_h, int cols, int rows, const std::vector<Color>& colors,
             const std::vector<bool>& present);

  double text_width(const std::string& utf8, double size, bool bold = false) const {
    return font_->measure(utf8, size, bold);
  }
  void text(double x, double y, const std::string& utf8, const TextStyle& style);
  // Where text(x, y, utf8, style) would put its box, without drawing.
  TextBox text_box(double x, double y, const std::string& utf8, const TextStyle& style) const;
  // Draws the text only when its box overlaps no text drawn so far; returns whether it was drawn. For
  // optional labels (bar values) whose neighbours may leave no room.
  bool text_if_free(double x, double y, const std::string& utf8, const TextStyle& style);
  // Every text drawn so far, in order.
  const std::vector<TextBox>& text_boxes() const { return boxes_; }

  // Named SVG groups (<g id=...>) so a figure can be edited by parts; no effect on the raster.
  void begin_group(const std::string& id);
  void end_group();

  std::string svg() const;  // the complete SVG document
  std::vector<std::uint8_t> png() const { return image_.encode_png(); }
  // Writes stem + ".png" and stem + ".svg"; throws gradlab::Error when a file cannot be written.
  void save(const std::string& stem) const;

 private:
  Image image_;
  FontPtr font_;
  std::string body_;  // SVG elements so far
  std::vector<TextBox> boxes_;
  int open_groups_ = 0;
  bool uses_hatch_ = false;
};

// Writes bytes to a file; throws gradlab::Error naming the path on failure.
void write_file(const std::string& path, const std::string& bytes);
std::string base64(const std::vector<std::uint8_t>& bytes);

}  // namespace gradlab::viz
