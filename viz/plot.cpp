#include "viz/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "tensor/error.h"

namespace gradlab::viz {

namespace {
constexpr int kMargin = 20;
constexpr double kTitleSize = 16;
constexpr double kSubtitleSize = 12;
constexpr double kLabelSize = 12;
constexpr double kTickSize = 11;
constexpr double kLegendSize = 11;

int ceil_int(double v) { return static_cast<int>(std::ceil(v - 1e-9)); }
bool finite(double v) { return std::isfinite(v); }

// The parts every plot shares: title block, plot rectangle, y axis with labels and grid.
struct Frame {
  int W = 0, H = 0;
  int px = 0, py = 0, pw = 0, ph = 0;  // plot area
  int title_h = 0;
};

int title_block_height(const Font& f, const std::string& title, const std::string& subtitle) {
  int h = 0;
  if (!title.empty()) h += ceil_int(f.line_height(kTitleSize)) + 4;
  if (!subtitle.empty()) h += ceil_int(f.line_height(kSubtitleSize)) + 4;
  return h ? h + 10 : 0;
}

void draw_title_block(Canvas& cv, const std::string& title, const std::string& subtitle) {
  double y = kMargin;
  if (!title.empty()) {
    TextStyle st{kTitleSize, colors::text, Anchor::Start, VAlign::Top};
    st.bold = true;
    cv.text(kMargin, y, title, st);
    y += cv.font().line_height(kTitleSize) + 4;
  }
  if (!subtitle.empty()) cv.text(kMargin, y, subtitle, {kSubtitleSize, colors::muted, Anchor::Start, VAlign::Top});
}

// Liang-Barsky: clips the segment to the rectangle; false when nothing is left.
bool clip_segment(double& x0, double& y0, double& x1, double& y1, double left, double top, double right, double bottom) {
  double t0 = 0, t1 = 1, dx = x1 - x0, dy = y1 - y0;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {x0 - left, right - x0, y0 - top, bottom - y0};
  for (int k = 0; k < 4; ++k) {
    if (p[k] == 0) {
      if (q[k] < 0) return false;
      continue;
    }
    double t = q[k] / p[k];
    if (p[k] < 0) t0 = std::max(t0, t);
    else t1 = std::min(t1, t);
    if (t0 > t1) return false;
  }
  double nx0 = x0 + t0 * dx, ny0 = y0 + t0 * dy, nx1 = x0 + t1 * dx, ny1 = y0 + t1 * dy;
  x0 = nx0; y0 = ny0; x1 = nx1; y1 = ny1;
  return true;
}

// Smallest k such that keeping every k-th label (0, k, 2k, ...) leaves at least `gap` pixels between the
// neighbours' extents along the axis; centres ascend or descend, extents are the labels' lengths.
std::size_t label_stride(const std::vector<double>& centres, const std::vector<double>& extents, double gap) {
  for (std::size_t k = 1; k < centres.size(); ++k) {
    bool fits = true;
    for (std::size_t a = 0; a + k < centres.size() && fits; a += k)
      fits = std::fabs(centres[a + k] - centres[a]) >= (extents[a] + extents[a + k]) / 2 + gap;
    if (fits) return k;
  }
  return std::max<std::size_t>(1, centres.size());
}

// Decade labels on a log axis: "1e-5" style for every label once any needs it, so the axis reads evenly.
std::vector<std::string> log_labels(const std::vector<double>& ticks) {
  bool exponent = false;
  for (double v : ticks) exponent = exponent || v < 1e-3 || v >= 1e4;
  std::vector<std::string> out;
  for (double v : ticks) {
    char buf[32];
    if (exponent) {
      int e = static_cast<int>(std::floor(std::log10(v) + 1e-9));
      double m = v / std::pow(10.0, e);
      if (std::fabs(m - 1) < 1e-6) std::snprintf(buf, sizeof buf, "1e%d", e);
      else std::snprintf(buf, sizeof buf, "%.0fe%d", m, e);
      out.push_back(buf);
    } else {
      out.push_back(format_tick(v, std::pow(10.0, std::floor(std::log10(v) + 1e-9))));
    }
  }
  return out;
}

// Ticks on a log axis thinned to fit: first only the decades, then every k-th decade.
void thin_log_ticks(std::vector<double>* ticks, const std::function<double(const std::string&)>& extent_of,
                    const std::function<double(double)>& pos, double gap) {
  auto stride_of = [&](const std::vector<double>& t) {
    std::vector<double> c, e;
    std::vector<std::string> labels = log_labels(t);
    for (std::size_t k = 0; k < t.size(); ++k) c.push_back(pos(t[k])), e.push_back(extent_of(labels[k]));
    return label_stride(c, e, gap);
  };
  if (ticks->size() < 2 || stride_of(*ticks) == 1) return;
  std::vector<double> decades;
  for (double v : *ticks) {
    double l = std::log10(v);
    if (std::fabs(l - std::round(l)) < 1e-9) decades.push_back(v);
  }
  if (decades.size() >= 2) *ticks = decades;
  std::size_t k = stride_of(*ticks);
  std::vector<double> kept;
  for (std::size_t a = 0; a < ticks->size(); a += k) kept.push_back((*ticks)[a]);
  *ticks = kept;
}

// Keeps every stride-th entry of both vectors.
template <typename A, typename B>
void keep_every(std::size_t stride, std::vector<A>* a, std::vector<B>* b) {
  if (stride <= 1) return;
  std::vector<A> ka;
  std::vector<B> kb;
  for (std::size_t k = 0; k < a->size(); k += stride) ka.push_back((*a)[k]), kb.push_back((*b)[k]);
  *a = ka;
  *b = kb;
}

double dash_for(std::size_t index) {
  static const double dashes[] = {0, 8, 2.5, 14, 5};
  return dashes[index % 5];
}
}  // namespace

Color series_color(std::size_t index) {
  // Okabe & Ito (2008): blue, vermillion, bluish green, reddish purple, orange, sky blue, black, yellow.
  static const Color palette[] = {{0, 114, 178}, {213, 94, 0},   {0, 158, 115}, {204, 121, 167},
                                  {230, 159, 0}, {86, 180, 233}, {0, 0, 0},     {240, 228, 66}};
  return palette[index % 8];
}

std::vector<double> nice_ticks(double lo, double hi, int target, double* step_out) {
  if (!(hi > lo) || !finite(lo) || !finite(hi)) throw_error("nice_ticks: got range [", lo, ", ", hi, "], expected lo < hi");
  target = std::max(target, 2);
  double raw = (hi - lo) / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw * 0.999) {
      step = m * mag;
      break;
    }
  if (step_out) *step_out = step;
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) {
    double v = k * step;
    if (std::fabs(v) < step * 1e-9) v = 0;  // no "-0" or 1e-17
    ticks.push_back(v);
  }
  return ticks;
}

void nice_limits(double* lo, double* hi, int target) {
  double step = 1;
  nice_ticks(*lo, *hi, target, &step);
  *lo = std::floor(*lo / step + 1e-9) * step;
  *hi = std::ceil(*hi / step - 1e-9) * step;
}

std::vector<double> log_ticks(double lo, double hi) {
  if (!(lo > 0) || !(hi > lo)) throw_error("log_ticks: got range [", lo, ", ", hi, "], expected 0 < lo < hi");
  int d0 = static_cast<int>(std::floor(std::log10(lo))), d1 = static_cast<int>(std::ceil(std::log10(hi)));
  std::vector<double> ticks;
  const bool fine = d1 - d0 <= 2;
  for (int d = d0; d <= d1; ++d)
    for (double m : {1.0, 2.0, 5.0}) {
      if (m != 1.0 && !fine) continue;
      double v = m * std::pow(10.0, d);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
    }
  if (ticks.size() < 4 && d1 - d0 <= 1) {  // within about a decade: plain nice values read better
    ticks.clear();
    for (double v : nice_ticks(lo, hi, 5))
      if (v > 0) ticks.push_back(v);
  }
  return ticks;
}

std::string format_tick(double value, double step) {
  char buf[48];
  if (value == 0) return "0";
  double a = std::fabs(value);
  if (a >= 1e6 || a < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.3g", value);
    return buf;
  }
  int decimals = 0;
  if (step > 0 && finite(step)) {
    decimals = std::clamp(ceil_int(-std::log10(step)), 0, 8);
    // 2.5, 0.25, ... need one more digit than their magnitude says
    double scaled = step * std::pow(10.0, decimals);
    if (std::fabs(scaled - std::round(scaled)) > 1e-6) ++decimals;
  } else {
    decimals = a >= 100 ? 0 : a >= 1 ? 2 : 3;
  }
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

Canvas line_plot(const std::vector<Series>& series, const LinePlotOptions& opts) {
  if (opts.width < 300 || opts.height < 200)
    throw_error("line_plot: got size ", opts.width, "x", opts.height, ", expected at least 300x200");
  for (const Series& s : series)
    if (!s.x.empty() && s.x.size() != s.y.size())
      throw_error("line_plot: series \"", s.name, "\" has ", s.x.size(), " x values and ", s.y.size(), " y values");
  FontPtr font = opts.font ? opts.font : default_font();
  auto xs_of = [](const Series& s, std::size_t k) { return s.x.empty() ? static_cast<double>(k) : s.x[k]; };
  auto usable = [&](double y) { return finite(y) && (!opts.log_y || y > 0); };
  auto usable_x = [&](double x) { return finite(x) && (!opts.log_x || x > 0); };

  // Data ranges.
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  std::size_t max_points = 0;
  for (const Series& s : series) {
    max_points = std::max(max_points, s.y.size());
    for (std::size_t k = 0; k < s.y.size(); ++k) {
      double x = xs_of(s, k);
      if (!usable_x(x) || !usable(s.y[k])) continue;
      xlo = std::min(xlo, x); xhi = std::max(xhi, x);
      ylo = std::min(ylo, s.y[k]); yhi = std::max(yhi, s.y[k]);
    }
  }
  for (const RefLine& r : opts.ref_lines)
    if (usable(r.y)) {
      ylo = std::min(ylo, r.y);
      yhi = std::max(yhi, r.y);
    }
  if (!(xlo <= xhi)) { xlo = opts.log_x ? 1 : 0; xhi = opts.log_x ? 10 : 1; }
  if (!(ylo <= yhi)) { ylo = opts.log_y ? 1 : 0; yhi = opts.log_y ? 10 : 1; }
  if (opts.x_min) xlo = *opts.x_min;
  if (opts.x_max) xhi = *opts.x_max;
  if (xhi <= xlo) {
    if (opts.log_x) { xlo /= 2; xhi *= 2; }
    else { xlo -= 0.5; xhi += 0.5; }
  }
  if (opts.log_x && !(xlo > 0)) throw_error("line_plot: log x axis needs 0 < x_min < x_max, got ", xlo, " and ", xhi);
  if (opts.log_y) {
    if (yhi <= ylo) { ylo /= 2; yhi *= 2; }
    if (!opts.y_min) ylo = std::log10(yhi / ylo) >= 1 ? std::pow(10.0, std::floor(std::log10(ylo))) : ylo / 1.15;
    if (!opts.y_max) yhi = std::log10(yhi / ylo) >= 1 ? std::pow(10.0, std::ceil(std::log10(yhi))) : yhi * 1.15;
    if (opts.y_min) ylo = *opts.y_min;
    if (opts.y_max) yhi = *opts.y_max;
    if (!(ylo > 0) || !(yhi > ylo)) throw_error("line_plot: log axis needs 0 < y_min < y_max, got ", ylo, " and ", yhi);
  } else {
    if (yhi <= ylo) { ylo -= 1; yhi += 1; }
    if (!opts.y_min || !opts.y_max) {
      double a = ylo, b = yhi;
      nice_limits(&a, &b, 6);
      if (!opts.y_min) ylo = a;
      if (!opts.y_max) yhi = b;
    }
    if (opts.y_min) ylo = *opts.y_min;
    if (opts.y_max) yhi = *opts.y_max;
    if (!(yhi > ylo)) throw_error("line_plot: got y limits ", ylo, " and ", yhi, ", expected y_min < y_max");
  }
  double ystep = 0, xstep = 0;
  std::vector<double> yt = opts.log_y ? log_ticks(ylo, yhi) : nice_ticks(ylo, yhi, 6, &ystep);
  std::vector<double> xt = opts.log_x ? log_ticks(xlo, xhi) : nice_ticks(xlo, xhi, 7, &xstep);

  // Layout.
  std::vector<std::string> ylabels;
  int ylab_w = 0;
  if (opts.log_y) {
    ylabels = log_labels(yt);
  } else {
    for (double v : yt) ylabels.push_back(format_tick(v, ystep));
  }
  for (const std::string& l : ylabels) ylab_w = std::max(ylab_w, ceil_int(font->measure(l, kTickSize)));
  bool legend = false;
  int legend_w = 0;
  for (const Series& s : series)
    if (!s.name.empty()) {
      legend = true;
      legend_w = std::max(legend_w, ceil_int(font->measure(s.name, kLegendSize)));
    }
  for (const RefLine& r : opts.ref_lines)
    if (!r.name.empty()) {
      legend = true;
      legend_w = std::max(legend_w, ceil_int(font->measure(r.name, kLegendSize)));
    }
  if (legend) legend_w += 20 + 38 + 10;
  const int title_h = title_block_height(*font, opts.title, opts.subtitle);
  const int left = kMargin + (opts.y_label.empty() ? 0 : ceil_int(font->line_height(kLabelSize)) + 8) + ylab_w + 10;
  const int bottom = 6 + ceil_int(font->line_height(kTickSize)) + 4 +
                     (opts.x_label.empty() ? 0 : ceil_int(font->line_height(kLabelSize)) + 6) + kMargin;
  const int top = kMargin + title_h + 6;
  const int right = kMargin + (legend ? legend_w + 10 : 10);
  const int W = opts.width, H = opts.height;
  const int px = left, py = top, pw = W - left - right, ph = H - top - bottom;
  if (pw < 60 || ph < 60) throw_error("line_plot: ", W, "x", H, " leaves no room for the plot; make it larger");

  auto X = [&](double x) {
    double t = opts.log_x ? (std::log10(x) - std::log10(xlo)) / (std::log10(xhi) - std::log10(xlo)) : (x - xlo) / (xhi - xlo);
    return px + t * pw;
  };
  auto Y = [&](double y) {
    double t = opts.log_y ? (std::log10(y) - std::log10(ylo)) / (std::log10(yhi) - std::log10(ylo)) : (y - ylo) / (yhi - ylo);
    return py + ph - t * ph;
  };

  // Tick labels never touch: x labels keep 8 px between them, y labels 2 px; crowded axes keep every k-th.
  const double tick_h = font->line_height(kTickSize);
  auto x_extent = [&](const std::string& l) { return font->measure(l, kTickSize); };
  if (opts.log_x) {
    thin_log_ticks(&xt, x_extent, X, 8);
  } else {
    std::vector<double> c, e;
    for (double v : xt) c.push_back(X(v)), e.push_back(x_extent(format_tick(v, xstep)));
    std::size_t k = label_stride(c, e, 8);
    std::vector<double> kept;
    for (std::size_t a = 0; a < xt.size(); a += k) kept.push_back(xt[a]);
    xt = kept;
  }
  std::vector<std::string> xlabels = opts.log_x ? log_labels(xt) : std::vector<std::string>{};
  if (!opts.log_x)
    for (double v : xt) xlabels.push_back(format_tick(v, xstep));
  {
    std::vector<double> c, e;
    for (double v : yt) c.push_back(Y(v)), e.push_back(tick_h);
    keep_every(label_stride(c, e, 2), &yt, &ylabels);
  }

  Canvas cv(W, H, font);
  draw_title_block(cv, opts.title, opts.subtitle);
  cv.begin_group("axes");
  for (std::size_t k = 0; k < yt.size(); ++k) {
    double y = std::round(Y(yt[k])) + 0.5;
    cv.line(px, y, px + pw, y, colors::grid, 1);
    cv.line(px - 4, y, px, y, colors::frame, 1);
    cv.text(px - 7, y, ylabels[k], {kTickSize, colors::text, Anchor::End, VAlign::Middle});
  }
  for (std::size_t k = 0; k < xt.size(); ++k) {
    double x = std::round(X(xt[k])) + 0.5;
    cv.line(x, py, x, py + ph, colors::grid, 1);
    cv.line(x, py + ph, x, py + ph + 4, colors::frame, 1);
    cv.text(x, py + ph + 7, xlabels[k], {kTickSize, colors::text, Anchor::Middle, VAlign::Top});
  }
  cv.line(px + 0.5, py, px + 0.5, py + ph + 0.5, colors::frame, 1);        // left spine
  cv.line(px, py + ph + 0.5, px + pw, py + ph + 0.5, colors::frame, 1);    // bottom spine
  if (!opts.y_label.empty())
    cv.text(kMargin, py + ph / 2.0, opts.y_label, {kLabelSize, colors::text, Anchor::Middle, VAlign::Top, true});
  if (!opts.x_label.empty())
    cv.text(px + pw / 2.0, H - kMargin, opts.x_label, {kLabelSize, colors::text, Anchor::Middle, VAlign::Bottom});
  cv.end_group();

  const bool markers = opts.markers == 1 || (opts.markers == -1 && max_points <= 40 && opts.smooth <= 1);
  // One curve: polylines split at gaps and clipped to the plot area, markers (or lone points) on top.
  auto draw_curve = [&](const Series& s, const std::vector<double>& ys, Color color, double width, double dash,
                        bool with_markers) {
    std::vector<double> lx, ly;
    auto flush = [&] {
      if (lx.size() >= 2) cv.polyline(lx, ly, color, width, dash);
      lx.clear();
      ly.clear();
    };
    for (std::size_t k = 0; k + 1 < ys.size(); ++k) {
      double x0 = xs_of(s, k), x1 = xs_of(s, k + 1), y0 = ys[k], y1 = ys[k + 1];
      if (!usable_x(x0) || !usable_x(x1) || !usable(y0) || !usable(y1)) {
        flush();
        continue;
      }
      double ax = X(x0), ay = Y(y0), bx = X(x1), by = Y(y1);
      double cx0 = ax, cy0 = ay;
      if (!clip_segment(ax, ay, bx, by, px, py, px + pw, py + ph)) {
        flush();
        continue;
      }
      bool continues = !lx.empty() && ax == cx0 && ay == cy0 && lx.back() == ax && ly.back() == ay;
      if (!continues) {
        flush();
        lx.push_back(ax);
        ly.push_back(ay);
      }
      lx.push_back(bx);
      ly.push_back(by);
      if (bx != X(x1) || by != Y(y1)) flush();  // left the plot area
    }
    flush();
    for (std::size_t k = 0; k < ys.size(); ++k) {
      double x = xs_of(s, k), y = ys[k];
      if (!usable_x(x) || !usable(y)) continue;
      double mx = X(x), my = Y(y);
      bool isolated = (k == 0 || !usable(ys[k - 1])) && (k + 1 >= ys.size() || !usable(ys[k + 1]));
      if ((with_markers || isolated) && mx >= px - 0.5 && mx <= px + pw + 0.5 && my >= py - 0.5 && my <= py + ph + 0.5)
        cv.circle(mx, my, with_markers ? 3.2 : width, color);
    }
  };
  for (const RefLine& r : opts.ref_lines) {
    if (!usable(r.y) || Y(r.y) < py - 0.5 || Y(r.y) > py + ph + 0.5) continue;
    cv.line(px, Y(r.y), px + pw, Y(r.y), colors::muted, 1.5, 6);
  }
  for (std::size_t si = 0; si < series.size(); ++si) {
    const Series& s = series[si];
    const Color color = series_color(si);
    const double dash = opts.dashes ? dash_for(si) : 0.0;
    cv.begin_group("series-" + std::to_string(si));
    if (opts.smooth > 1) {
      // Raw values faint and thin, then a centred running mean (no lag) over the usable points nearby;
      // the window shrinks at the ends.
      draw_curve(s, s.y, mix(color, colors::white, 0.7), 1.0, 0.0, false);
      std::vector<double> smooth(s.y.size(), NAN);
      const std::size_t half = opts.smooth / 2;
      for (std::size_t k = 0; k < s.y.size(); ++k) {
        if (!usable(s.y[k])) continue;
        double sum = 0;
        std::size_t count = 0;
        for (std::size_t j = k >= half ? k - half : 0; j <= std::min(s.y.size() - 1, k + half); ++j)
          if (usable(s.y[j])) {
            sum += s.y[j];
            ++count;
          }
        smooth[k] = sum / static_cast<double>(count);
      }
      draw_curve(s, smooth, color, 2.0, dash, false);
    } else {
      draw_curve(s, s.y, color, 2.0, dash, markers);
    }
    cv.end_group();
  }

  if (legend) {
    cv.begin_group("legend");
    const int lx = px + pw + 20;
    double ly = py + 4;
    const double row = font->line_height(kLegendSize) + 8;
    for (std::size_t si = 0; si < series.size(); ++si) {
      if (series[si].name.empty()) continue;
      double yc = ly + row / 2;
      cv.line(lx, yc, lx + 30, yc, series_color(si), 2.0, opts.dashes ? dash_for(si) : 0.0);
      if (markers) cv.circle(lx + 15, yc, 3.2, series_color(si));
      cv.text(lx + 38, yc, series[si].name, {kLegendSize, colors::text, Anchor::Start, VAlign::Middle});
      ly += row;
    }
    for (const RefLine& r : opts.ref_lines) {
      if (r.name.empty()) continue;
      double yc = ly + row / 2;
      cv.line(lx, yc, lx + 30, yc, colors::muted, 1.5, 6);
      cv.text(lx + 38, yc, r.name, {kLegendSize, colors::text, Anchor::Start, VAlign::Middle});
      ly += row;
    }
    cv.end_group();
  }
  return cv;
}

Canvas bar_chart(const std::vector<std::string>& groups, const std::vector<std::string>& series,
                 const std::vector<std::vector<double>>& values, const BarChartOptions& opts) {
  // values is (groups, series)
  if (groups.empty() || series.empty()) throw_error("bar_chart: got ", groups.size(), " groups and ", series.size(), " series, expected at least one of each");
  if (values.size() != groups.size()) throw_error("bar_chart: got ", values.size(), " rows of values for ", groups.size(), " groups");
  for (std::size_t g = 0; g < values.size(); ++g)
    if (values[g].size() != series.size())
      throw_error("bar_chart: group \"", groups[g], "\" has ", values[g].size(), " values, expected ", series.size());
  if (opts.width < 300 || opts.height < 200)
    throw_error("bar_chart: got size ", opts.width, "x", opts.height, ", expected at least 300x200");
  FontPtr font = opts.font ? opts.font : default_font();
  const std::size_t G = groups.size(), S = series.size();

  double lo = 0, hi = 0;
  for (const auto& row : values)
    for (double v : row)
      if (finite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
  if (hi <= lo) hi = lo + 1;
  nice_limits(&lo, &hi, 5);
  if (opts.y_min) lo = *opts.y_min;
  if (opts.y_max) hi = *opts.y_max;
  if (!(hi > lo)) throw_error("bar_chart: got y limits ", lo, " and ", hi, ", expected y_min < y_max");
  double ystep = 0;
  std::vector<double> yt = nice_ticks(lo, hi, 5, &ystep);

  std::vector<std::string> ylabels;
  int ylab_w = 0;
  for (double v : yt) {
    ylabels.push_back(format_tick(v, ystep));
    ylab_w = std::max(ylab_w, ceil_int(font->measure(ylabels.back(), kTickSize)));
  }
  const bool legend = S > 1 || !series[0].empty();
  int legend_w = 0;
  for (const std::string& s : series) legend_w = std::max(legend_w, ceil_int(font->measure(s, kLegendSize)));
  if (legend) legend_w += 14 + 18 + 10;
  int group_label_w = 0;
  for (const std::string& g : groups) group_label_w = std::max(group_label_w, ceil_int(font->measure(g, kTickSize)));

  const int title_h = title_block_height(*font, opts.title, opts.subtitle);
  const int W = opts.width, H = opts.height;
  const int left = kMargin + (opts.y_label.empty() ? 0 : ceil_int(font->line_height(kLabelSize)) + 8) + ylab_w + 10;
  const int right = kMargin + (legend ? legend_w + 10 : 10);
  const int pw = W - left - right;
  const double gw = static_cast<double>(pw) / G;
  const bool vertical_groups = group_label_w > gw - 6;
  const int group_band = vertical_groups ? std::min(group_label_w, H / 3) + 8 : ceil_int(font->line_height(kTickSize)) + 8;
  const int bottom = group_band + (opts.x_label.empty() ? 0 : ceil_int(font->line_height(kLabelSize)) + 8) + kMargin;
  const int top = kMargin + title_h + 6;
  const int px = left, py = top, ph = H - top - bottom;
  if (pw < 60 || ph < 60) throw_error("bar_chart: ", W, "x", H, " leaves no room for the plot; make it larger");
  auto Y = [&](double y) { return py + ph - (std::clamp(y, lo, hi) - lo) / (hi - lo) * ph; };
  // Headroom for the value labels above the tallest bars: raise the axis by whole steps (unless the caller
  // fixed it) until every label fits under the top of the plot.
  const double value_size = 10;
  const double bar_w = gw * 0.8 / S;
  if (opts.value_labels && !opts.y_max) {
    auto label_need = [&](double v) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.*f", std::clamp(opts.decimals, 0, 6), v);
      const double w = font->measure(buf, value_size);
      return w + 2 <= bar_w ? font->line_height(value_size) + 3 : w + 4;
    };
    bool raised = false;
    for (int guard = 0; guard < 20; ++guard) {
      bool fits = true;
      for (const auto& row : values)
        for (double v : row)
          if (finite(v) && v > 0 && Y(v) - label_need(v) < py) fits = false;
      if (fits) break;
      hi += ystep;
      raised = true;
    }
    if (raised) {
      yt = nice_ticks(lo, hi, 5, &ystep);
      ylabels.clear();
      for (double v : yt) ylabels.push_back(format_tick(v, ystep));
    }
  }

  {
    std::vector<double> c, e;
    for (double v : yt) c.push_back(Y(v)), e.push_back(font->line_height(kTickSize));
    keep_every(label_stride(c, e, 2), &yt, &ylabels);
  }
  // Group labels: every k-th when even vertical labels would touch.
  std::size_t group_stride = 1;
  {
    std::vector<double> c, e;
    for (std::size_t g = 0; g < G; ++g)
      c.push_back(px + (g + 0.5) * gw), e.push_back(vertical_groups ? font->line_height(kTickSize) : font->measure(groups[g], kTickSize));
    group_stride = label_stride(c, e, 4);
  }

  Canvas cv(W, H, font);
  draw_title_block(cv, opts.title, opts.subtitle);
  cv.begin_group("axes");
  for (std::size_t k = 0; k < yt.size(); ++k) {
    double y = std::round(Y(yt[k])) + 0.5;
    cv.line(px, y, px + pw, y, colors::grid, 1);
    cv.line(px - 4, y, px, y, colors::frame, 1);
    cv.text(px - 7, y, ylabels[k], {kTickSize, colors::text, Anchor::End, VAlign::Middle});
  }
  cv.line(px + 0.5, py, px + 0.5, py + ph + 0.5, colors::frame, 1);
  if (!opts.y_label.empty())
    cv.text(kMargin, py + ph / 2.0, opts.y_label, {kLabelSize, colors::text, Anchor::Middle, VAlign::Top, true});
  if (!opts.x_label.empty())
    cv.text(px + pw / 2.0, H - kMargin, opts.x_label, {kLabelSize, colors::text, Anchor::Middle, VAlign::Bottom});
  cv.end_group();

  const double zero_y = Y(std::clamp(0.0, lo, hi));
  for (std::size_t g = 0; g < G; ++g) {
    cv.begin_group("group-" + std::to_string(g));
    for (std::size_t s = 0; s < S; ++s) {
      double v = values[g][s];
      double x0 = px + g * gw + gw * 0.1 + s * bar_w;
      int bx = static_cast<int>(std::lround(x0)), bx1 = static_cast<int>(std::lround(x0 + bar_w)) - (S > 1 ? 1 : 0);
      if (!finite(v)) continue;
      double yv = Y(v);
      int y0 = static_cast<int>(std::lround(std::min(yv, zero_y))), y1 = static_cast<int>(std::lround(std::max(yv, zero_y)));
      cv.fill_rect(bx, y0, std::max(1, bx1 - bx), std::max(1, y1 - y0), series_color(s));
      if (opts.value_labels) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.*f", std::clamp(opts.decimals, 0, 6), v);
        // Horizontal when it fits the bar's slot, else upright along the bar; a label that would touch
        // another (a neighbour's, the title, the legend) is left out rather than drawn over it.
        double w = font->measure(buf, value_size);
        if (w + 2 <= bar_w) {
          if (v >= 0) cv.text_if_free((bx + bx1) / 2.0, y0 - 3, buf, {value_size, colors::text, Anchor::Middle, VAlign::Bottom});
          else cv.text_if_free((bx + bx1) / 2.0, y1 + 3, buf, {value_size, colors::text, Anchor::Middle, VAlign::Top});
        } else if (w <= ph / 3.0 && bar_w >= font->line_height(value_size) + 1) {
          cv.text_if_free((bx + bx1) / 2.0, v >= 0 ? y0 - 4 : y1 + 4 + w, buf,
                          {value_size, colors::text, Anchor::Start, VAlign::Middle, true});
        }
      }
    }
    double gx = px + (g + 0.5) * gw;
    if (g % group_stride == 0) {
      if (vertical_groups)
        cv.text(gx, py + ph + 6, groups[g], {kTickSize, colors::text, Anchor::End, VAlign::Middle, true});
      else
        cv.text(gx, py + ph + 6, groups[g], {kTickSize, colors::text, Anchor::Middle, VAlign::Top});
    }
    cv.end_group();
  }
  cv.line(px, std::round(zero_y) + 0.5, px + pw, std::round(zero_y) + 0.5, colors::frame, 1);  // baseline

  if (legend) {
    cv.begin_group("legend");
    const int lx = px + pw + 20;
    double ly = py + 4;
    const double row = font->line_height(kLegendSize) + 8;
    for (std::size_t s = 0; s < S; ++s) {
      double yc = ly + row / 2;
      cv.fill_rect(lx, static_cast<int>(std::lround(yc - 6)), 12, 12, series_color(s));
      cv.text(lx + 18, yc, series[s], {kLegendSize, colors::text, Anchor::Start, VAlign::Middle});
      ly += row;
    }
    cv.end_group();
  }
  return cv;
}

}  // namespace gradlab::viz
