#include "lessons/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "tensor/error.h"
#include "viz/canvas.h"
#include "viz/colormap.h"
#include "viz/plot.h"

namespace gradlab::lesson {

namespace {

using viz::Anchor;
using viz::Canvas;
using viz::Color;
using viz::TextStyle;
using viz::VAlign;

std::string tick_label(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3))
    std::snprintf(buf, sizeof buf, "%.0e", v);
  else
    std::snprintf(buf, sizeof buf, "%g", std::round(v * 1e6) / 1e6);
  return buf;
}

void draw_title(Canvas& c, const std::string& title) {
  TextStyle ts;
  ts.size = 16;
  ts.anchor = Anchor::Middle;
  ts.valign = VAlign::Top;
  c.text(c.width() / 2.0, 10, title, ts);
}

}  // namespace

std::vector<std::string> save_line_plot(const LinePlot& p, const std::string& stem) {
  if (p.series.empty()) throw_error("save_line_plot: no series to draw for ", stem);
  std::vector<viz::Series> series;
  for (const auto& s : p.series) series.push_back({s.name, s.x, s.y});
  viz::LinePlotOptions o;
  o.title = p.title;
  o.x_label = p.x_label;
  o.y_label = p.y_label;
  o.log_x = p.log_x;
  o.log_y = p.log_y;
  o.smooth = p.smooth;
  for (const auto& h : p.hlines) o.ref_lines.push_back({h.name, h.y});
  o.width = p.width;
  o.height = p.height;
  viz::line_plot(series, o).save(stem);
  return {stem + ".png", stem + ".svg"};
}

std::vector<std::string> save_bar_chart(const BarChart& b, const std::string& stem) {
  viz::BarChartOptions o;
  o.title = b.title;
  o.y_label = b.y_label;
  o.value_labels = b.value_labels;
  o.decimals = 3;
  o.width = b.width;
  o.height = b.height;
  viz::bar_chart(b.groups, b.series, b.values, o).save(stem);
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
  int W = left + cell * static_cast<int>(m.cols) + 130;
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
  if (!m.colorbar_caption.empty()) {
    TextStyle cap;
    cap.size = 12;
    cap.color = viz::colors::muted;
    cap.anchor = Anchor::Middle;
    cap.valign = VAlign::Middle;
    cap.vertical = true;
    const double label_w = std::max(c.text_width(tick_label(hi), 10), c.text_width(tick_label(lo), 10));
    c.text(bx + bar_w + 4 + label_w + 14, by + bh / 2.0, m.colorbar_caption, cap);
  }
  c.save(stem);
  return {stem + ".png", stem + ".svg"};
}

}  // namespace gradlab::lesson
