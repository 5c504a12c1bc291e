#pragma once
// Plots for the lessons and the command line, drawn on the same Canvas as the heatmaps (PNG + SVG):
//   line_plot  several series with a legend: loss curves of several runs, loss per position, real mass per
//              position for several gamma; optional log y axis.
//   bar_chart  groups x series: accuracy per position encoding and mask, first-token share per layer.
// Axes get "nice" ticks (1, 2, 2.5, 5 x 10^k; decades on a log axis), light grid lines, a title and labels.
// Series colours are the Okabe-Ito palette (distinguishable with colour-vision deficiencies); line plots
// also vary the dash pattern, so curves stay apart in greyscale print.
#include <optional>
#include <string>
#include <vector>

#include "viz/canvas.h"

namespace gradlab::viz {

struct Series {
  std::string name;
  std::vector<double> x;  // empty = 0, 1, 2, ...; else the same length as y
  std::vector<double> y;  // NaN or infinite values (and values <= 0 on a log axis) leave gaps
};

// A horizontal reference line (an entropy floor, a baseline accuracy), dashed grey, named in the legend.
struct RefLine {
  std::string name;
  double y = 0;
};

struct LinePlotOptions {
  std::string title, subtitle, x_label, y_label;
  bool log_y = false;
  bool log_x = false;
  std::size_t smooth = 1;  // > 1: draw each series as its centred running mean over about this many points,
                           // with the raw values faint behind it
  std::vector<RefLine> ref_lines;
  int markers = -1;  // -1 = automatic (when a series has at most 40 points), 0 = never, 1 = always
  bool dashes = true;
  std::optional<double> x_min, x_max, y_min, y_max;  // axis limits; default from the data
  int width = 880, height = 520;  // whole figure, pixels (at least 300 x 200)
  FontPtr font;                   // null = default_font()
};

struct BarChartOptions {
  std::string title, subtitle, x_label, y_label;
  bool value_labels = true;  // print each value above its bar when it fits
  int decimals = 2;          // for the value labels
  std::optional<double> y_min, y_max;  // default: from 0 (or the lowest negative value) to a nice maximum
  int width = 880, height = 520;
  FontPtr font;
};

Canvas line_plot(const std::vector<Series>& series, const LinePlotOptions& opts = {});
// values[g][s] is the value of series s in group g; NaN draws no bar.
Canvas bar_chart(const std::vector<std::string>& groups, const std::vector<std::string>& series,
                 const std::vector<std::vector<double>>& values, const BarChartOptions& opts = {});

// The qualitative palette used for series (cycles after 8).
Color series_color(std::size_t index);

// Tick values for an axis from lo to hi (lo < hi), about `target` of them, at 1/2/2.5/5 x 10^k;
// *step receives the spacing. For the axis limits, nice_limits widens [lo, hi] to whole steps.
std::vector<double> nice_ticks(double lo, double hi, int target, double* step = nullptr);
void nice_limits(double* lo, double* hi, int target);
// Decades (and 2, 5 in between when the range is short) for a log axis over [lo, hi], lo > 0.
std::vector<double> log_ticks(double lo, double hi);
// "0.25", "1e+06" style tick text: as few digits as the step needs.
std::string format_tick(double value, double step);

}  // namespace gradlab::viz
