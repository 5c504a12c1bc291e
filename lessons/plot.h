#pragma once
// The figures the lessons write, each as stem.png + stem.svg: line plots and bar charts (thin wrappers over
// viz/plot.h) and a small annotated matrix (scores, masks, the P matrix), drawn here on a viz::Canvas.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace gradlab::lesson {

struct Series {
  std::string name;
  std::vector<double> x;  // empty: 0, 1, 2, ...
  std::vector<double> y;  // NaN points are skipped
};

struct HLine {
  std::string name;
  double y = 0;
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::vector<HLine> hlines;  // dashed reference lines (e.g. an entropy floor)
  std::size_t smooth = 1;     // > 1: each series drawn as its running mean over this many points (raw faint)
  bool log_x = false, log_y = false;
  int width = 900, height = 520;
};

struct BarChart {
  std::string title, y_label;
  std::vector<std::string> groups;          // along x
  std::vector<std::string> series;          // one bar per series in each group
  std::vector<std::vector<double>> values;  // values[group][series]
  bool value_labels = true;                 // print each bar's value above it
  int width = 900, height = 520;
};

// A small annotated matrix (scores, masks, the P matrix): one coloured cell per entry with its value printed,
// cells where `masked` is true hatched grey, labels along both axes and a colour bar.
struct MatrixFigure {
  std::string title, subtitle;
  std::int64_t rows = 0, cols = 0;
  std::vector<double> values;             // rows*cols, row-major; -inf/NaN cells drawn as masked
  std::vector<bool> masked;               // rows*cols or empty
  std::vector<std::string> row_labels, col_labels;  // or empty (indices)
  std::string row_title = "query i", col_title = "key j";
  double lo = NAN, hi = NAN;              // colour range; NaN = the finite min/max
  std::string colormap = "viridis";
  const char* value_format = "%.2f";      // printf format of the printed values ("" = none)
  int cell = 44;                          // pixels per cell
  bool staircase = false;                 // outline the causal boundary (between j <= i and j > i)
  std::string colorbar_caption;  // what the colour bar measures, written along it (empty: none)
};

// Write stem.png and stem.svg; return both paths.
std::vector<std::string> save_line_plot(const LinePlot& plot, const std::string& stem);
std::vector<std::string> save_bar_chart(const BarChart& chart, const std::string& stem);
std::vector<std::string> save_matrix_figure(const MatrixFigure& fig, const std::string& stem);

}  // namespace gradlab::lesson
