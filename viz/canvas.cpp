#include "viz/canvas.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "tensor/error.h"
#include "viz/text.h"

namespace gradlab::viz {

namespace {
constexpr int kHatchPeriod = 6;     // pixels between hatch lines (measured along x)
constexpr int kHatchThickness = 2;  // pixels per hatch line (measured along x)
constexpr int kMaxVectorCells = 6000;

// Numbers in SVG: at most two decimals, no trailing zeros, "C" formatting whatever the locale.
std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

std::string hex(Color c) { return color_to_hex(c); }
}  // namespace

std::string base64(const std::vector<std::uint8_t>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    unsigned v = bytes[i] << 16;
    if (i + 1 < bytes.size()) v |= bytes[i + 1] << 8;
    if (i + 2 < bytes.size()) v |= bytes[i + 2];
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[v & 63] : '=';
  }
  return out;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw_error("write_file: cannot open \"", path, "\" for writing");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw_error("write_file: writing \"", path, "\" failed");
}

Canvas::Canvas(int width, int height, FontPtr font) : image_(width, height), font_(std::move(font)) {
  if (!font_) font_ = default_font();
}

void Canvas::fill_rect(int x, int y, int w, int h, Color c) {
  if (w <= 0 || h <= 0) return;
  image_.fill_rect(x, y, w, h, c);
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" fill=\"" + hex(c) + "\"/>\n";
}

void Canvas::stroke_rect(int x, int y, int w, int h, Color c, int t) {
  if (w <= 0 || h <= 0 || t <= 0) return;
  image_.fill_rect(x, y, w, t, c);
  image_.fill_rect(x, y + h - t, w, t, c);
  image_.fill_rect(x, y, t, h, c);
  image_.fill_rect(x + w - t, y, t, h, c);
  // SVG strokes are centred on the path: inset by half the thickness to cover the same pixels.
  double half = t / 2.0;
  body_ += "<rect x=\"" + num(x + half) + "\" y=\"" + num(y + half) + "\" width=\"" + num(w - t) + "\" height=\"" +
           num(h - t) + "\" fill=\"none\" stroke=\"" + hex(c) + "\" stroke-width=\"" + num(t) + "\"/>\n";
}

void Canvas::hatch(const std::vector<Rect>& rects) {
  std::string path;
  for (const Rect& r : rects) {
    if (r.w <= 0 || r.h <= 0) continue;
    image_.hatch_rect(r.x, r.y, r.w, r.h, colors::hatch_bg, colors::hatch_fg, kHatchPeriod, kHatchThickness);
    path += 'M';
    path += num(r.x) + " " + num(r.y) + "h" + num(r.w) + "v" + num(r.h) + "h" + num(-r.w) + "z";
  }
  if (path.empty()) return;
  uses_hatch_ = true;
  body_ += "<path d=\"" + path + "\" fill=\"url(#gradlab-hatch)\" shape-rendering=\"crispEdges\"/>\n";
}

void Canvas::line(double x0, double y0, double x1, double y1, Color c, double width, double dash) {
  polyline({x0, x1}, {y0, y1}, c, width, dash);
}

void Canvas::polyline(const std::vector<double>& xs, const std::vector<double>& ys, Color c, double width,
                      double dash) {
  if (xs.size() != ys.size()) throw_error("Canvas::polyline: got ", xs.size(), " x and ", ys.size(), " y values");
  if (xs.size() < 2) return;
  stroke_polyline(image_, xs, ys, c, width, dash);
  std::string pts;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (k) pts += ' ';
    pts += num(xs[k]) + "," + num(ys[k]);
  }
  body_ += "<polyline points=\"" + pts + "\" fill=\"none\" stroke=\"" + hex(c) + "\" stroke-width=\"" + num(width) +
           "\" stroke-linecap=\"round\" stroke-linejoin=\"round\"";
  if (dash > 0) body_ += " stroke-dasharray=\"" + num(dash) + " " + num(dash * 0.7) + "\"";
  body_ += "/>\n";
}

void Canvas::circle(double cx, double cy, double radius, Color c) {
  fill_circle(image_, cx, cy, radius, c);
  body_ += "<circle cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(radius) + "\" fill=\"" + hex(c) + "\"/>\n";
}

void Canvas::cells(int x, int y, int cell_w, int cell_h, int cols, int rows, const std::vector<Color>& colors,
                   const std::vector<bool>& present) {
  // colors, present are (rows, cols) row-major.
  const std::size_t n = static_cast<std::size_t>(rows) * cols;
  if (cols < 0 || rows < 0 || cell_w < 1 || cell_h < 1 || colors.size() != n || present.size() != n)
    throw_error("Canvas::cells: got a ", rows, "x", cols, " grid with ", colors.size(), " colours and ",
                present.size(), " flags, cells ", cell_w, "x", cell_h, "; expected rows*cols of each");
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      std::size_t k = static_cast<std::size_t>(r) * cols + c;
      if (present[k]) image_.fill_rect(x + c * cell_w, y + r * cell_h, cell_w, cell_h, colors[k]);
    }
  if (n <= static_cast<std::size_t>(kMaxVectorCells)) {
    body_ += "<g shape-rendering=\"crispEdges\">\n";
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols;) {
        std::size_t k = static_cast<std::size_t>(r) * cols + c;
        if (!present[k]) {
          ++c;
          continue;
        }
        int run = 1;  // merge equal neighbours into one rect
        while (c + run < cols && present[k + run] && colors[k + run] == colors[k]) ++run;
        body_ += "<rect x=\"" + num(x + c * cell_w) + "\" y=\"" + num(y + r * cell_h) + "\" width=\"" +
                 num(run * cell_w) + "\" height=\"" + num(cell_h) + "\" fill=\"" + hex(colors[k]) + "\"/>\n";
        c += run;
      }
    }
    body_ += "</g>\n";
    return;
  }
  // Large grid: one pixel per cell, transparent where absent, scaled up without smoothing.
  std::vector<std::uint8_t> rgba(n * 4, 0);
  for (std::size_t k = 0; k < n; ++k) {
    if (!present[k]) continue;
    rgba[4 * k] = colors[k].r;
    rgba[4 * k + 1] = colors[k].g;
    rgba[4 * k + 2] = colors[k].b;
    rgba[4 * k + 3] = 255;
  }
  body_ += "<image x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(cols * cell_w) + "\" height=\"" +
           num(rows * cell_h) + "\" preserveAspectRatio=\"none\" image-rendering=\"pixelated\" " +
           "style=\"image-rendering:pixelated\" href=\"data:image/png;base64," +
           base64(encode_png_rgba(cols, rows, rgba)) + "\"/>\n";
}

bool boxes_overlap(const TextBox& a, const TextBox& b, double slack) {
  return std::min(a.x1, b.x1) - std::max(a.x0, b.x0) > slack && std::min(a.y1, b.y1) - std::max(a.y0, b.y0) > slack;
}

std::vector<std::pair<std::size_t, std::size_t>> overlapping_boxes(const std::vector<TextBox>& boxes, double slack) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (std::size_t a = 0; a < boxes.size(); ++a)
    for (std::size_t b = a + 1; b < boxes.size(); ++b)
      if (boxes_overlap(boxes[a], boxes[b], slack)) out.emplace_back(a, b);
  return out;
}

TextBox Canvas::text_box(double x, double y, const std::string& utf8, const TextStyle& st) const {
  const double asc = font_->ascent(st.size), desc = font_->descent(st.size);
  const double w = font_->measure(utf8, st.size, st.bold);
  const double along = st.anchor == Anchor::Start ? 0.0 : st.anchor == Anchor::Middle ? w / 2 : w;
  const double across = st.vertical ? x : y;
  double base = across;  // the baseline's coordinate across the text direction
  if (st.valign == VAlign::Top) base = across + asc;
  if (st.valign == VAlign::Middle) base = across + (asc - desc) / 2;
  if (st.valign == VAlign::Bottom) base = across - desc;
  TextBox b;
  b.text = utf8;
  if (!st.vertical) {
    b.x0 = x - along, b.x1 = x - along + w;
    b.y0 = base - asc, b.y1 = base + desc;
  } else {  // reads upwards: the start is at the bottom, glyph tops point left
    b.x0 = base - asc, b.x1 = base + desc;
    b.y0 = y + along - w, b.y1 = y + along;
  }
  return b;
}

bool Canvas::text_if_free(double x, double y, const std::string& utf8, const TextStyle& st) {
  const TextBox b = text_box(x, y, utf8, st);
  for (const TextBox& o : boxes_)
    if (boxes_overlap(b, o)) return false;
  text(x, y, utf8, st);
  return true;
}

void Canvas::text(double x, double y, const std::string& utf8, const TextStyle& st) {
  if (utf8.empty()) return;
  boxes_.push_back(text_box(x, y, utf8, st));
  const double asc = font_->ascent(st.size), desc = font_->descent(st.size);
  const double w = font_->measure(utf8, st.size, st.bold);
  const double along = st.anchor == Anchor::Start ? 0.0 : st.anchor == Anchor::Middle ? w / 2 : w;
  // The baseline's coordinate across the text direction.
  auto baseline_at = [&](double v) {
    switch (st.valign) {
      case VAlign::Top: return v + asc;
      case VAlign::Middle: return v + (asc - desc) / 2;
      case VAlign::Bottom: return v - desc;
      default: return v;
    }
  };
  int base = 0;
  Mask mask = font_->render(utf8, st.size, &base, st.bold);
  std::string anchor = st.anchor == Anchor::Start ? "start" : st.anchor == Anchor::Middle ? "middle" : "end";
  std::string common = "font-family=\"" + xml_escape(font_->family()) + "\" font-size=\"" + num(st.size) +
                       "\" fill=\"" + hex(st.color) + "\" text-anchor=\"" + anchor + "\"" + (st.bold ? " font-weight=\"bold\"" : "");
  if (!st.vertical) {
    double by = baseline_at(y);
    int left = static_cast<int>(std::lround(x - along)) - 1;
    int top = static_cast<int>(std::lround(by)) - base;
    image_.draw_mask(mask, left, top, st.color, false);
    body_ += "<text x=\"" + num(x) + "\" y=\"" + num(by) + "\" " + common + ">" + xml_escape(utf8) + "</text>\n";
  } else {
    double bx = baseline_at(x);
    // Rotated mask: text position p maps to row top + W - 2 - p; the baseline row becomes column left + base.
    int start_row = static_cast<int>(std::lround(y + along));
    int top = start_row - mask.width + 2;
    int left = static_cast<int>(std::lround(bx)) - base;
    image_.draw_mask(mask, left, top, st.color, true);
    body_ += "<text x=\"" + num(bx) + "\" y=\"" + num(y) + "\" transform=\"rotate(-90 " + num(bx) + " " + num(y) +
             ")\" " + common + ">" + xml_escape(utf8) + "</text>\n";
  }
}

void Canvas::begin_group(const std::string& id) {
  ++open_groups_;
  body_ += "<g id=\"" + xml_escape(id) + "\">\n";
}

void Canvas::end_group() {
  if (open_groups_ == 0) throw_error("Canvas::end_group: no group is open");
  --open_groups_;
  body_ += "</g>\n";
}

std::string Canvas::svg() const {
  const int w = width(), h = height();
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(w) + "\" height=\"" + num(h) +
         "\" viewBox=\"0 0 " + num(w) + " " + num(h) + "\">\n";
  if (uses_hatch_) {
    // Same pattern as the raster: lines where (x + y) mod period < thickness, i.e. running up-right.
    const double p = kHatchPeriod, t = kHatchThickness;
    out += "<defs>\n<pattern id=\"gradlab-hatch\" patternUnits=\"userSpaceOnUse\" width=\"" + num(p) +
           "\" height=\"" + num(p) + "\">\n";
    out += "<rect width=\"" + num(p) + "\" height=\"" + num(p) + "\" fill=\"" + hex(colors::hatch_bg) + "\"/>\n";
    // Two lines x + y = c and x + y = p + c per tile (c = 1.5 is the raster band's centre line).
    const double c = 1.5;
    out += "<path d=\"M-1 " + num(c + 1) + "L" + num(c + 1) + " -1M-1 " + num(p + c + 1) + "L" + num(p + c + 1) +
           " -1\" stroke=\"" + hex(colors::hatch_fg) + "\" stroke-width=\"" + num(t * 0.7071) + "\"/>\n";
    out += "</pattern>\n</defs>\n";
  }
  out += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  out += body_;
  for (int k = 0; k < open_groups_; ++k) out += "</g>\n";
  out += "</svg>\n";
  return out;
}

void Canvas::save(const std::string& stem) const {
  std::vector<std::uint8_t> png_bytes = png();
  write_file(stem + ".png", std::string(png_bytes.begin(), png_bytes.end()));
  write_file(stem + ".svg", svg());
}

}  // namespace gradlab::viz
