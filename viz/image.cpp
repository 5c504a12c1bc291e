#include "viz/image.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "tensor/error.h"

namespace gradlab::viz {

Color color_from_hex(const std::string& hex) {
  if (hex.size() != 7 || hex[0] != '#') throw_error("color_from_hex: got \"", hex, "\", expected \"#rrggbb\"");
  unsigned v[3];
  for (int k = 0; k < 3; ++k) {
    v[k] = 0;
    for (int d = 0; d < 2; ++d) {
      char ch = hex[1 + 2 * k + d];
      unsigned nib;
      if (ch >= '0' && ch <= '9') nib = ch - '0';
      else if (ch >= 'a' && ch <= 'f') nib = ch - 'a' + 10;
      else if (ch >= 'A' && ch <= 'F') nib = ch - 'A' + 10;
      else throw_error("color_from_hex: got \"", hex, "\", expected hexadecimal digits");
      v[k] = v[k] * 16 + nib;
    }
  }
  return Color{static_cast<std::uint8_t>(v[0]), static_cast<std::uint8_t>(v[1]), static_cast<std::uint8_t>(v[2])};
}

std::string color_to_hex(Color c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
  return buf;
}

Color mix(Color a, Color b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  auto lerp = [t](std::uint8_t x, std::uint8_t y) {
    return static_cast<std::uint8_t>(std::lround(x + (y - x) * t));
  };
  return Color{lerp(a.r, b.r), lerp(a.g, b.g), lerp(a.b, b.b)};
}

Image::Image(int width, int height, Color background) : width_(width), height_(height) {
  if (width < 1 || height < 1 || width > 32768 || height > 32768)
    throw_error("Image: got size ", width, "x", height, ", expected 1..32768 in each direction");
  pixels_.resize(static_cast<std::size_t>(width) * height * 3);
  for (std::size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Color Image::get(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_)
    throw_error("Image::get: pixel (", x, ", ", y, ") outside a ", width_, "x", height_, " image");
  const std::uint8_t* p = &pixels_[3 * (static_cast<std::size_t>(y) * width_ + x)];
  return Color{p[0], p[1], p[2]};
}

void Image::set(int x, int y, Color c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  std::uint8_t* p = &pixels_[3 * (static_cast<std::size_t>(y) * width_ + x)];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

void Image::blend(int x, int y, Color c, int alpha) {
  if (alpha <= 0 || x < 0 || y < 0 || x >= width_ || y >= height_) return;
  if (alpha >= 255) return set(x, y, c);
  std::uint8_t* p = &pixels_[3 * (static_cast<std::size_t>(y) * width_ + x)];
  // Integer blend with rounding: dst + (src - dst) * a / 255.
  auto one = [alpha](std::uint8_t dst, std::uint8_t src) {
    int v = dst * (255 - alpha) + src * alpha;
    return static_cast<std::uint8_t>((v + 127) / 255);
  };
  p[0] = one(p[0], c.r);
  p[1] = one(p[1], c.g);
  p[2] = one(p[2], c.b);
}

void Image::fill_rect(int x, int y, int w, int h, Color c) {
  int x0 = std::max(x, 0), y0 = std::max(y, 0);
  int x1 = std::min(x + w, width_), y1 = std::min(y + h, height_);
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx) set(xx, yy, c);
}

void Image::hatch_rect(int x, int y, int w, int h, Color bg, Color fg, int period, int thickness) {
  period = std::max(period, 2);
  int x0 = std::max(x, 0), y0 = std::max(y, 0);
  int x1 = std::min(x + w, width_), y1 = std::min(y + h, height_);
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx) set(xx, yy, ((xx + yy) % period) < thickness ? fg : bg);
}

void Image::draw_mask(const Mask& m, int x, int y, Color c, bool rotate_ccw) {
  if (!rotate_ccw) {
    for (int my = 0; my < m.height; ++my)
      for (int mx = 0; mx < m.width; ++mx) blend(x + mx, y + my, c, m.at(mx, my));
    return;
  }
  // Rotated 90 degrees counter-clockwise: the mask's column mx becomes destination row (W-1-mx),
  // its row my becomes destination column my. The result is m.height wide and m.width tall.
  for (int my = 0; my < m.height; ++my)
    for (int mx = 0; mx < m.width; ++mx) blend(x + my, y + (m.width - 1 - mx), c, m.at(mx, my));
}

namespace {
void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(context);
  auto* bytes = static_cast<const std::uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

std::vector<std::uint8_t> encode(int w, int h, int comp, const std::uint8_t* data) {
  // stb's encoder has no time stamps or random state; fixing the level fixes the bytes.
  stbi_write_png_compression_level = 8;
  std::vector<std::uint8_t> out;
  if (!stbi_write_png_to_func(append_bytes, &out, w, h, comp, data, w * comp))
    throw_error("encode_png: stb_image_write failed for a ", w, "x", h, " image");
  return out;
}
}  // namespace

std::vector<std::uint8_t> Image::encode_png() const {
  if (width_ == 0) throw_error("encode_png: the image is empty");
  return encode(width_, height_, 3, pixels_.data());
}

std::vector<std::uint8_t> encode_png_rgba(int width, int height, const std::vector<std::uint8_t>& rgba) {
  if (width < 1 || height < 1 || rgba.size() != static_cast<std::size_t>(width) * height * 4)
    throw_error("encode_png_rgba: got ", width, "x", height, " with ", rgba.size(), " bytes, expected 4 per pixel");
  return encode(width, height, 4, rgba.data());
}

Image decode_png(const std::vector<std::uint8_t>& png) {
  int w = 0, h = 0, comp = 0;
  unsigned char* data = stbi_load_from_memory(png.data(), static_cast<int>(png.size()), &w, &h, &comp, 3);
  if (!data) throw_error("decode_png: cannot decode ", png.size(), " bytes: ", stbi_failure_reason());
  Image img(w, h);
  std::copy(data, data + static_cast<std::size_t>(w) * h * 3, img.raw());
  stbi_image_free(data);
  return img;
}

void Image::write_png(const std::string& path) const {
  std::vector<std::uint8_t> png = encode_png();
  std::ofstream out(path, std::ios::binary);
  if (!out) throw_error("write_png: cannot open \"", path, "\" for writing");
  out.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  if (!out) throw_error("write_png: writing \"", path, "\" failed");
}

void stroke_polyline(Image& img, const std::vector<double>& xs, const std::vector<double>& ys, Color c,
                     double width, double dash) {
  // xs, ys are the vertices (n,); each segment contributes coverage max(., .) to one mask over the bbox.
  if (xs.size() != ys.size()) throw_error("stroke_polyline: got ", xs.size(), " x and ", ys.size(), " y values");
  if (xs.empty()) return;
  const double hw = std::max(width, 0.5) / 2.0;
  double minx = xs[0], maxx = xs[0], miny = ys[0], maxy = ys[0];
  for (std::size_t k = 0; k < xs.size(); ++k) {
    if (!std::isfinite(xs[k]) || !std::isfinite(ys[k])) return;  // callers clip NaN away; never draw garbage
    minx = std::min(minx, xs[k]); maxx = std::max(maxx, xs[k]);
    miny = std::min(miny, ys[k]); maxy = std::max(maxy, ys[k]);
  }
  int bx0 = std::max(0, static_cast<int>(std::floor(minx - hw - 1)));
  int by0 = std::max(0, static_cast<int>(std::floor(miny - hw - 1)));
  int bx1 = std::min(img.width(), static_cast<int>(std::ceil(maxx + hw + 2)));
  int by1 = std::min(img.height(), static_cast<int>(std::ceil(maxy + hw + 2)));
  if (bx1 <= bx0 || by1 <= by0) return;
  Mask cover(bx1 - bx0, by1 - by0);
  const double period = dash * 1.7;  // dash on, 0.7 * dash off
  double arc = 0.0;                  // arc length at the segment's start, for dashes
  const std::size_t nseg = xs.size() == 1 ? 1 : xs.size() - 1;
  for (std::size_t k = 0; k < nseg; ++k) {
    double ax = xs[k], ay = ys[k];
    double bx = xs.size() == 1 ? ax : xs[k + 1], by = ys.size() == 1 ? ay : ys[k + 1];
    double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, len = std::sqrt(len2);
    int sx0 = std::max(bx0, static_cast<int>(std::floor(std::min(ax, bx) - hw - 1)));
    int sy0 = std::max(by0, static_cast<int>(std::floor(std::min(ay, by) - hw - 1)));
    int sx1 = std::min(bx1, static_cast<int>(std::ceil(std::max(ax, bx) + hw + 2)));
    int sy1 = std::min(by1, static_cast<int>(std::ceil(std::max(ay, by) + hw + 2)));
    for (int y = sy0; y < sy1; ++y) {
      for (int x = sx0; x < sx1; ++x) {
        double px = x + 0.5 - ax, py = y + 0.5 - ay;
        double t = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.0, 1.0) : 0.0;
        double ex = px - t * dx, ey = py - t * dy;
        double d = std::sqrt(ex * ex + ey * ey);
        double cov = std::clamp(hw + 0.5 - d, 0.0, 1.0);
        if (cov <= 0) continue;
        if (dash > 0 && std::fmod(arc + t * len, period) > dash) continue;
        std::uint8_t a = static_cast<std::uint8_t>(std::lround(cov * 255));
        std::uint8_t& m = cover.at(x - bx0, y - by0);
        m = std::max(m, a);
      }
    }
    arc += len;
  }
  img.draw_mask(cover, bx0, by0, c);
}

void fill_circle(Image& img, double cx, double cy, double radius, Color c) {
  int x0 = static_cast<int>(std::floor(cx - radius - 1)), x1 = static_cast<int>(std::ceil(cx + radius + 1));
  int y0 = static_cast<int>(std::floor(cy - radius - 1)), y1 = static_cast<int>(std::ceil(cy + radius + 1));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
      double cov = std::clamp(radius + 0.5 - d, 0.0, 1.0);
      img.blend(x, y, c, static_cast<int>(std::lround(cov * 255)));
    }
}

}  // namespace gradlab::viz
