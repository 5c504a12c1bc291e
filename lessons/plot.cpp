#include "lessons/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "tensor/error.h"
#include "viz/canvas.h"
#include "viz/colormap.h"

namespace gradlab::lesson {

namespace {

using viz::Anchor;
using viz::Canvas;
using viz::Color;
using viz::TextStyle;
using viz::VAlign;

// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const Color kPalette[] = {{0, 114, 178}, {213, 94, 0}, {0, 158, 115}, {204, 121, 167},
                          {230, 159, 0}, {86, 180, 233}, {240, 228, 66}, {0, 0, 0}};
Color palette(std::size_t i) { return kPalette[i % (sizeof kPalette / sizeof kPalette[0])]; }

std::string tick_label(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3))
    std::snprintf(buf, sizeof buf, "%.0e", v);
  else
    std::snprintf(buf, sizeof buf, "%g", std::round(v * 1e6) / 1e6);
  return buf;
}

// About n "nice" tick values covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int n) {
  std::vector<double> t;
  if (!(hi > lo)) {
    t.push_back(lo);
    return t;
  }
  const double raw = (hi - lo) / n;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

struct Frame {
  int x0, y0, x1, y1;  // plot area in pixels (x1, y1 exclusive)
  double lo_x, hi_x, lo_y, hi_y;
  bool log_x, log_y;
  double px(double x) const {
    double u = log_x ? (std::log10(x) - lo_x) / (hi_x - lo_x) : (x - lo_x) / (hi_x - lo_x);
    return x0 + u * (x1 - x0);
  }
  double py(double y) const {
    double u = log_y ? (std::log10(y) - lo_y) / (hi_y - lo_y) : (y - lo_y) / (hi_y - lo_y);
    return y1 - u * (y1 - y0);
  }
};

void draw_title(Canvas& c, const std::string& title) {
  TextStyle ts;
  ts.size = 16;
  ts.anchor = Anchor::Middle;
  ts.valign = VAlign::Top;
  c.text(c.width() / 2.0, 10, title, ts);
}

void draw_y_axis(Canvas& c, const Frame& f, const std::string& label, bool log_axis) {
  TextStyle ts;
  ts.size = 11;
  ts.anchor = Anchor::End;
  ts.valign = VAlign::Middle;
  std::vector<double> ticks;
  if (log_axis) {
    for (double e = std::ceil(f.lo_y); e <= f.hi_y + 1e-9; e += 1) ticks.push_back(std::pow(10.0, e));
  } else {
    ticks = nice_ticks(f.lo_y, f.hi_y, 6);
  }
  for (double v : ticks) {
    const double y = f.py(v);
    c.line(f.x0, y, f.x1, y, viz::colors::grid);
    c.text(f.x0 - 6, y, tick_label(v), ts);
  }
  TextStyle lv;
  lv.size = 12;
  lv.vertical = true;
  lv.anchor = Anchor::Middle;
  lv.valign = VAlign::Top;
  c.text(8, (f.y0 + f.y1) / 2.0, label, lv);
}

}  // namespace

std::vector<std::string> save_line_plot(const LinePlot& p, const std::string& stem) {
  if (p.series.empty()) throw_error("save_line_plot: no series to draw for ", stem);
  Canvas c(p.width, p.height);
  // the legend sits right of the plot and is as wide as its longest entry
  double legend_w = 0;
  for (const auto& s : p.series) legend_w = std::max(legend_w, c.text_width(s.name, 12));
  for (const auto& h : p.hlines) legend_w = std::max(legend_w, c.text_width(h.name, 12));
  if (p.smooth > 1) legend_w = std::max(legend_w, c.text_width("faint: raw; bold: running", 10) - 30);
  Frame f{};
  f.x0 = 70;
  f.y0 = 44;
  f.x1 = p.width - 60 - static_cast<int>(std::min(legend_w, p.width * 0.4));
  f.y1 = p.height - 50;
  f.log_x = p.log_x;
  f.log_y = p.log_y;
  double lx = std::numeric_limits<double>::infinity(), hx = -lx, ly = lx, hy = -lx;
  auto xs_of = [](const Series& s, std::size_t i) { return s.x.empty() ? static_cast<double>(i) : s.x[i]; };
  for (const auto& s : p.series)
    for (std::size_t i = 0; i < s.y.size(); ++i) {
      const double x = xs_of(s, i), y = s.y[i];
      if (!std::isfinite(y) || (p.log_y && y <= 0) || (p.log_x && x <= 0)) continue;
      lx = std::min(lx, x), hx = std::max(hx, x), ly = std::min(ly, y), hy = std::max(hy, y);
    }
  for (const auto& h : p.hlines) ly = std::min(ly, h.y), hy = std::max(hy, h.y);
  if (!std::isfinite(lx)) throw_error("save_line_plot: no finite point to draw for ", stem);
  if (p.log_x) lx = std::log10(lx), hx = std::log10(hx);
  if (p.log_y) {
    ly = std::floor(std::log10(ly)), hy = std::ceil(std::log10(hy));
  } else {
    const double pad = (hy - ly) * 0.05 + 1e-12;
    ly -= pad, hy += pad;
  }
  if (hx <= lx) hx = lx + 1;
  if (hy <= ly) hy = ly + 1;
  f.lo_x = lx, f.hi_x = hx, f.lo_y = ly, f.hi_y = hy;

  draw_title(c, p.title);
  draw_y_axis(c, f, p.y_label, p.log_y);
  {
    TextStyle ts;
    ts.size = 11;
    ts.anchor = Anchor::Middle;
    ts.valign = VAlign::Top;
    std::vector<double> ticks;
    if (p.log_x)
      for (double e = std::ceil(lx); e <= hx + 1e-9; e += 1) ticks.push_back(std::pow(10.0, e));
    else
      ticks = nice_ticks(lx, hx, 8);
    for (double v : ticks) {
      const double x = f.px(v);
      c.line(x, f.y0, x, f.y1, viz::colors::grid);
      c.text(x, f.y1 + 6, tick_label(v), ts);
    }
    TextStyle lt = ts;
    lt.size = 12;
    c.text((f.x0 + f.x1) / 2.0, p.height - 22, p.x_label, lt);
  }
  c.stroke_rect(f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0, viz::colors::frame);

  int legend_y = f.y0 + 6;
  TextStyle lg;
  lg.size = 12;
  lg.valign = VAlign::Middle;
  for (std::size_t k = 0; k < p.hlines.size(); ++k) {
    const double y = f.py(p.hlines[k].y);
    c.line(f.x0, y, f.x1, y, viz::colors::muted, 1.5, 6);
    c.line(f.x1 + 12, legend_y, f.x1 + 36, legend_y, viz::colors::muted, 1.5, 6);
    c.text(f.x1 + 42, legend_y, p.hlines[k].name, lg);
    legend_y += 20;
  }
  for (std::size_t k = 0; k < p.series.size(); ++k) {
    const Series& s = p.series[k];
    const Color col = palette(k);
    auto draw = [&](const std::vector<double>& ys, Color color, double width) {
      std::vector<double> px, py;
      for (std::size_t i = 0; i < ys.size(); ++i) {
        const double x = xs_of(s, i), y = ys[i];
        if (!std::isfinite(y) || (p.log_y && y <= 0) || (p.log_x && x <= 0)) continue;
        px.push_back(f.px(x));
        py.push_back(f.py(y));
      }
      if (px.size() == 1) c.circle(px[0], py[0], 3, color);
      if (px.size() > 1) c.polyline(px, py, color, width);
    };
    if (p.smooth > 1 && s.y.size() > p.smooth) {
      draw(s.y, viz::mix(col, viz::colors::white, 0.7), 1.0);
      std::vector<double> m(s.y.size(), NAN);
      double acc = 0;
      std::size_t n = 0;
      for (std::size_t i = 0; i < s.y.size(); ++i) {
        if (std::isfinite(s.y[i])) acc += s.y[i], ++n;
        if (i >= p.smooth && std::isfinite(s.y[i - p.smooth])) acc -= s.y[i - p.smooth], --n;
        if (n > 0) m[i] = acc / static_cast<double>(n);
      }
      draw(m, col, 2.0);
    } else {
      draw(s.y, col, 2.0);
      if (s.y.size() <= 40)
        for (std::size_t i = 0; i < s.y.size(); ++i)
          if (std::isfinite(s.y[i])) c.circle(f.px(xs_of(s, i)), f.py(s.y[i]), 3, col);
    }
    c.line(f.x1 + 12, legend_y, f.x1 + 36, legend_y, col, 3);
    c.text(f.x1 + 42, legend_y, s.name, lg);
    legend_y += 20;
  }
  if (p.smooth > 1) {
    TextStyle note;
    note.size = 10;
    note.color = viz::colors::muted;
    c.text(f.x1 + 12, legend_y + 4, "faint: raw; bold: running", note);
    c.text(f.x1 + 12, legend_y + 17, "mean of " + std::to_string(p.smooth) + " points", note);
  }
  c.save(stem);
  return {stem + ".png", stem + ".svg"};
}

std::vector<std::string> save_bar_chart(const BarChart& b, const std::string& stem) {
  if (b.groups.empty() || b.series.empty() || b.values.size() != b.groups.size())
    throw_error("save_bar_chart: got ", b.groups.size(), " groups, ", b.series.size(), " series and ", b.values.size(),
                " value rows for ", stem, ", expected one row per group and at least one of each");
  double hi = 0, lo = 0;
  for (const auto& row : b.values) {
    if (row.size() != b.series.size())
      throw_error("save_bar_chart: a value row has ", row.size(), " values, expected ", b.series.size());
    for (double v : row)
      if (std::isfinite(v)) hi = std::max(hi, v), lo = std::min(lo, v);
  }
  if (hi <= lo) hi = lo + 1;
  Canvas c(b.width, b.height);
  double legend_w = 0;
  for (const auto& s : b.series) legend_w = std::max(legend_w, c.text_width(s, 12));
  Frame f{};
  f.x0 = 70;
  f.y0 = 44;
  f.x1 = b.width - 50 - static_cast<int>(std::min(legend_w, b.width * 0.4));
  f.y1 = b.height - 50;
  f.lo_x = 0, f.hi_x = 1, f.lo_y = lo, f.hi_y = hi * 1.12;
  draw_title(c, b.title);
  draw_y_axis(c, f, b.y_label, false);
  const double group_w = static_cast<double>(f.x1 - f.x0) / static_cast<double>(b.groups.size());
  const double bar_w = group_w * 0.8 / static_cast<double>(b.series.size());
  TextStyle gl;
  gl.size = 11;
  gl.anchor = Anchor::Middle;
  gl.valign = VAlign::Top;
  TextStyle vl;
  vl.size = bar_w >= 34 ? 10 : 8;
  vl.anchor = Anchor::Middle;
  vl.valign = VAlign::Bottom;
  for (std::size_t g = 0; g < b.groups.size(); ++g) {
    const double gx = f.x0 + g * group_w + group_w * 0.1;
    for (std::size_t s = 0; s < b.series.size(); ++s) {
      const double v = b.values[g][s];
      if (!std::isfinite(v)) continue;
      const double x = gx + s * bar_w;
      const double y = f.py(std::max(v, 0.0)), y0 = f.py(std::min(v, 0.0));
      c.fill_rect(static_cast<int>(std::lround(x + 1)), static_cast<int>(std::lround(y)),
                  std::max(1, static_cast<int>(std::lround(bar_w - 2))), std::max(1, static_cast<int>(std::lround(y0 - y))),
                  palette(s));
      if (b.value_labels && bar_w >= 18) c.text(x + bar_w / 2, y - 2, tick_label(std::round(v * 1000) / 1000), vl);
    }
    c.text(f.x0 + (g + 0.5) * group_w, f.y1 + 6, b.groups[g], gl);
  }
  c.stroke_rect(f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0, viz::colors::frame);
  TextStyle lg;
  lg.size = 12;
  lg.valign = VAlign::Middle;
  for (std::size_t s = 0; s < b.series.size(); ++s) {
    const int y = f.y0 + 8 + static_cast<int>(s) * 20;
    c.fill_rect(f.x1 + 12, y - 6, 14, 12, palette(s));
    c.text(f.x1 + 32, y, b.series[s], lg);
  }
  c.save(stem);
  return {stem + ".png", stem + ".svg"};
}

}  // namespace gradlab::lesson

namespace gradlab::lesson {

std::vector<std::string> save_matrix_figure(const MatrixFigure& m, const std::string& stem) {
  // values is (rows, cols)
  if (m.rows < 1 || m.cols < 1 || static_cast<std::int64_t>(m.values.size()) != m.rows * m.cols)
    throw_error("save_matrix_figure: got ", m.values.size(), " values for a ", m.rows, " x ", m.cols, " matrix (", stem,
                "), expected rows*cols");
  if (!m.masked.empty() && static_cast<std::int64_t>(m.masked.size()) != m.rows * m.cols)
    throw_error("save_matrix_figure: masked has ", m.masked.size(), " entries, expected ", m.rows * m.cols);
  auto is_masked = [&](std::int64_t k) {
    return (!m.masked.empty() && m.masked[static_cast<std::size_t>(k)]) || !std::isfinite(m.values[static_cast<std::size_t>(k)]);
  };
  double lo = m.lo, hi = m.hi;
  if (std::isnan(lo) || std::isnan(hi)) {
    double a = INFINITY, b = -INFINITY;
    for (std::int64_t k = 0; k < m.rows * m.cols; ++k)
      if (!is_masked(k)) a = std::min(a, m.values[k]), b = std::max(b, m.values[k]);
    if (!std::isfinite(a)) a = 0, b = 1;
    if (std::isnan(lo)) lo = a;
    if (std::isnan(hi)) hi = b;
  }
  if (hi <= lo) hi = lo + 1;
  const viz::Colormap& cmap = viz::Colormap::by_name(m.colormap);
  const int cell = m.cell;
  const int left = 90, top = m.subtitle.empty() ? 50 : 70, bar_w = 16;
  int W = left + cell * static_cast<int>(m.cols) + 110;
  const int H = top + cell * static_cast<int>(m.rows) + 60;
  {
    // wide enough for the title lines
    Canvas probe(8, 8);
    W = std::max({W, 360, static_cast<int>(probe.text_width(m.title, 16)) + 40,
                  static_cast<int>(probe.text_width(m.subtitle, 12)) + 40});
  }
  Canvas c(W, H);
  draw_title(c, m.title);
  if (!m.subtitle.empty()) {
    TextStyle st;
    st.size = 12;
    st.color = viz::colors::muted;
    st.anchor = Anchor::Middle;
    st.valign = VAlign::Top;
    c.text(c.width() / 2.0, 32, m.subtitle, st);
  }
  std::vector<Color> colors(static_cast<std::size_t>(m.rows * m.cols));
  std::vector<bool> present(colors.size());
  std::vector<viz::Rect> hatched;
  for (std::int64_t k = 0; k < m.rows * m.cols; ++k) {
    const bool masked = is_masked(k);
    present[k] = !masked;
    colors[k] = masked ? viz::colors::white : cmap((m.values[k] - lo) / (hi - lo));
    if (masked)
      hatched.push_back({left + static_cast<int>(k % m.cols) * cell, top + static_cast<int>(k / m.cols) * cell, cell, cell});
  }
  if (!hatched.empty()) c.hatch(hatched);
  c.cells(left, top, cell, cell, static_cast<int>(m.cols), static_cast<int>(m.rows), colors, present);
  if (m.value_format && *m.value_format && cell >= 26) {
    TextStyle vt;
    vt.size = cell >= 40 ? 11 : 9;
    vt.anchor = Anchor::Middle;
    vt.valign = VAlign::Middle;
    for (std::int64_t k = 0; k < m.rows * m.cols; ++k) {
      if (is_masked(k)) continue;
      char buf[32];
      std::snprintf(buf, sizeof buf, m.value_format, m.values[k]);
      vt.color = viz::oklab_lightness(colors[k]) > 0.6 ? viz::colors::text : viz::colors::white;
      c.text(left + (k % m.cols + 0.5) * cell, top + (k / m.cols + 0.5) * cell, buf, vt);
    }
  }
  c.stroke_rect(left - 1, top - 1, cell * static_cast<int>(m.cols) + 2, cell * static_cast<int>(m.rows) + 2,
                viz::colors::frame);
  if (m.staircase) {
    std::vector<double> xs, ys;
    for (std::int64_t i = 0; i < std::min(m.rows, m.cols); ++i) {
      xs.push_back(left + (i + 1.0) * cell), ys.push_back(top + i * 1.0 * cell);
      xs.push_back(left + (i + 1.0) * cell), ys.push_back(top + (i + 1.0) * cell);
    }
    c.polyline(xs, ys, Color{230, 60, 60}, 2.5);
  }
  TextStyle rl;
  rl.size = 11;
  rl.anchor = Anchor::End;
  rl.valign = VAlign::Middle;
  for (std::int64_t i = 0; i < m.rows; ++i)
    c.text(left - 6, top + (i + 0.5) * cell,
           i < static_cast<std::int64_t>(m.row_labels.size()) ? m.row_labels[i] : std::to_string(i), rl);
  TextStyle cl = rl;
  cl.anchor = Anchor::Middle;
  cl.valign = VAlign::Top;
  for (std::int64_t j = 0; j < m.cols; ++j)
    c.text(left + (j + 0.5) * cell, top + cell * m.rows + 5,
           j < static_cast<std::int64_t>(m.col_labels.size()) ? m.col_labels[j] : std::to_string(j), cl);
  TextStyle at;
  at.size = 12;
  at.color = viz::colors::muted;
  at.anchor = Anchor::Middle;
  at.valign = VAlign::Top;
  c.text(left + cell * m.cols / 2.0, top + cell * m.rows + 24, m.col_title, at);
  TextStyle av = at;
  av.vertical = true;
  c.text(8, top + cell * m.rows / 2.0, m.row_title, av);
  // colour bar
  const int bx = left + cell * static_cast<int>(m.cols) + 24, by = top, bh = cell * static_cast<int>(m.rows);
  std::vector<Color> ramp(static_cast<std::size_t>(bh));
  for (int y = 0; y < bh; ++y) ramp[y] = cmap(1.0 - (y + 0.5) / bh);
  c.cells(bx, by, bar_w, 1, 1, bh, ramp, std::vector<bool>(static_cast<std::size_t>(bh), true));
  c.stroke_rect(bx, by, bar_w, bh, viz::colors::frame);
  TextStyle bt;
  bt.size = 10;
  bt.valign = VAlign::Middle;
  c.text(bx + bar_w + 4, by, tick_label(hi), bt);
  c.text(bx + bar_w + 4, by + bh, tick_label(lo), bt);
  c.save(stem);
  return {stem + ".png", stem + ".svg"};
}

}  // namespace gradlab::lesson
