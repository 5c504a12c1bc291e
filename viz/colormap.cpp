#include "viz/colormap.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace gradlab::viz {

namespace {
struct Lab {
  double L, a, b;
};

double srgb_to_linear(double c) { return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4); }
double linear_to_srgb(double c) { return c <= 0.0031308 ? 12.92 * c : 1.055 * std::pow(c, 1.0 / 2.4) - 0.055; }

// sRGB -> OKLab (Björn Ottosson's published matrices).
Lab to_oklab(Color c) {
  double r = srgb_to_linear(c.r / 255.0), g = srgb_to_linear(c.g / 255.0), b = srgb_to_linear(c.b / 255.0);
  double l = std::cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
  double m = std::cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
  double s = std::cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
  return Lab{0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s,
             1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s,
             0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s};
}

// OKLab -> linear sRGB, unclamped.
void oklab_to_linear(Lab lab, double rgb[3]) {
  double l = lab.L + 0.3963377774 * lab.a + 0.2158037573 * lab.b;
  double m = lab.L - 0.1055613458 * lab.a - 0.0638541728 * lab.b;
  double s = lab.L - 0.0894841775 * lab.a - 1.2914855480 * lab.b;
  l = l * l * l;
  m = m * m * m;
  s = s * s * s;
  rgb[0] = 4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s;
  rgb[1] = -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s;
  rgb[2] = -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s;
}

double distance2(Lab x, Lab y) { return (x.L - y.L) * (x.L - y.L) + (x.a - y.a) * (x.a - y.a) + (x.b - y.b) * (x.b - y.b); }

// The 8-bit colour nearest to `target` among the floor/ceil roundings of each channel, preferring those
// lighter than min_L: rounding to bytes alone can make neighbouring entries dip in lightness.
Color quantize(Lab target, double min_L) {
  double rgb[3];
  oklab_to_linear(target, rgb);
  double srgb[3];
  for (int k = 0; k < 3; ++k) srgb[k] = std::clamp(linear_to_srgb(std::clamp(rgb[k], 0.0, 1.0)), 0.0, 1.0) * 255.0;
  Color best{}, best_any{};
  double best_d = 1e30, best_any_d = 1e30;
  for (int mask = 0; mask < 8; ++mask) {
    std::uint8_t ch[3];
    for (int k = 0; k < 3; ++k)
      ch[k] = static_cast<std::uint8_t>(std::clamp(mask & (1 << k) ? std::ceil(srgb[k]) : std::floor(srgb[k]), 0.0, 255.0));
    Color c{ch[0], ch[1], ch[2]};
    Lab lab = to_oklab(c);
    double d = distance2(lab, target);
    if (d < best_any_d) { best_any_d = d; best_any = c; }
    if (lab.L > min_L && d < best_d) { best_d = d; best = c; }
  }
  return best_d < 1e30 ? best : best_any;
}
}  // namespace

double oklab_lightness(Color c) { return to_oklab(c).L; }

Colormap::Colormap(std::string name, const std::vector<Color>& anchors) : name_(std::move(name)) {
  // anchors are evenly spaced at t = k / (n - 1); the table interpolates them in OKLab.
  std::vector<Lab> labs;
  for (Color c : anchors) labs.push_back(to_oklab(c));
  const std::size_t segments = anchors.size() - 1;
  table_[0] = anchors.front();  // the ends are the anchors exactly
  double prev_L = labs.front().L;
  for (int i = 1; i < 255; ++i) {
    double t = i / 255.0 * segments;
    std::size_t k = std::min(static_cast<std::size_t>(t), segments - 1);
    double f = t - k;
    Lab a = labs[k], b = labs[k + 1];
    table_[i] = quantize(Lab{a.L + (b.L - a.L) * f, a.a + (b.a - a.a) * f, a.b + (b.b - a.b) * f}, prev_L);
    prev_L = to_oklab(table_[i]).L;
  }
  table_[255] = anchors.back();
}

const Colormap& Colormap::viridis() {
  // Nine evenly spaced samples of viridis (van der Walt & Smith, 2015), dark purple to yellow.
  static const Colormap map("viridis", {color_from_hex("#440154"), color_from_hex("#472d7b"),
                                        color_from_hex("#3b528b"), color_from_hex("#2c728e"),
                                        color_from_hex("#21908c"), color_from_hex("#27ad81"),
                                        color_from_hex("#5dc863"), color_from_hex("#aadc32"),
                                        color_from_hex("#fde725")});
  return map;
}

const Colormap& Colormap::cividis() {
  // Ten evenly spaced samples of cividis (Nuñez, Anderton & Renslow, 2018), dark blue to yellow.
  static const Colormap map("cividis", {color_from_hex("#00204d"), color_from_hex("#00336f"),
                                        color_from_hex("#39486b"), color_from_hex("#575c6d"),
                                        color_from_hex("#707173"), color_from_hex("#8a8779"),
                                        color_from_hex("#a69d75"), color_from_hex("#c4b56c"),
                                        color_from_hex("#e4cf5b"), color_from_hex("#ffea46")});
  return map;
}

const Colormap& Colormap::by_name(const std::string& name) {
  if (name == "viridis") return viridis();
  if (name == "cividis") return cividis();
  throw_error("colormap: got \"", name, "\", expected viridis or cividis");
}

Color Colormap::operator()(double t) const {
  if (std::isnan(t)) return nan_color;
  t = std::clamp(t, 0.0, 1.0);
  return table_[static_cast<std::size_t>(std::lround(t * 255.0))];
}

}  // namespace gradlab::viz
