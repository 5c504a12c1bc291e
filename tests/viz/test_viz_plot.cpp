// Line plots and grouped bar charts: ticks, colours, gaps, clipping, errors, determinism.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tensor/error.h"
#include "viz/plot.h"
#include "xml_check.h"

using namespace gradlab::viz;

namespace {
int count_color(const Image& img, Color c) {
  int n = 0;
  for (int y = 0; y < img.height(); ++y)
    for (int x = 0; x < img.width(); ++x) n += img.get(x, y) == c;
  return n;
}
}  // namespace

TEST_SUITE("viz") {

TEST_CASE("plot ticks: nice steps and limits and log decades and tick text") {
  double step = 0;
  std::vector<double> t = nice_ticks(0, 1, 5, &step);
  CHECK(step == doctest::Approx(0.2));
  REQUIRE(t.size() == 6);
  CHECK(t.front() == 0);
  CHECK(t.back() == doctest::Approx(1.0));
  t = nice_ticks(0.13, 4.7, 6, &step);
  CHECK(step == doctest::Approx(1.0));
  CHECK(t == std::vector<double>{1, 2, 3, 4});
  t = nice_ticks(-1, 1, 4, &step);
  CHECK(step == doctest::Approx(0.5));
  CHECK(t[2] == 0.0);  // exactly zero, not 1e-17
  double lo = 1.27, hi = 4.61;
  nice_limits(&lo, &hi, 6);
  CHECK(lo == doctest::Approx(1.0));
  CHECK(hi == doctest::Approx(5.0));
  std::vector<double> lt = log_ticks(0.01, 100);
  REQUIRE(lt.size() == 5);
  CHECK(lt[0] == doctest::Approx(0.01));
  CHECK(lt[4] == doctest::Approx(100));
  lt = log_ticks(1, 50);
  CHECK(lt.size() == 6);  // 1 2 5 10 20 50
  CHECK(format_tick(0.25, 0.25) == "0.25");
  CHECK(format_tick(2, 0.5) == "2.0");
  CHECK(format_tick(1500, 500) == "1500");
  CHECK(format_tick(0, 0.1) == "0");
  CHECK(format_tick(2e-7, 1e-7) == "2e-07");
  CHECK_THROWS_AS(nice_ticks(1, 1, 5), gradlab::Error);
  CHECK_THROWS_AS(log_ticks(0, 1), gradlab::Error);
}

TEST_CASE("line plot: series are drawn in their palette colour and gaps and clipping work") {
  Series a{"a", {}, {0.5, 0.5, 0.5, 0.5}};
  LinePlotOptions o;
  o.y_min = 0;
  o.y_max = 1;
  o.markers = 0;
  Canvas fig = line_plot({a}, o);
  CHECK(count_color(fig.image(), series_color(0)) > 100);
  // Entirely above the axis range: clipped away, nothing of its colour is drawn.
  Series high{"", {}, {5, 6, 7}};  // no name: no legend sample either
  Canvas clipped = line_plot({high}, o);
  CHECK(count_color(clipped.image(), series_color(0)) == 0);
  // A NaN splits the line: fewer series pixels than the unbroken line.
  Series gap{"", {0, 1, 2, 3, 4}, {0.5, 0.5, NAN, 0.5, 0.5}};
  Series full{"", {0, 1, 2, 3, 4}, {0.5, 0.5, 0.5, 0.5, 0.5}};
  int with_gap = count_color(line_plot({gap}, o).image(), series_color(0));
  int without = count_color(line_plot({full}, o).image(), series_color(0));
  CHECK(with_gap < without * 0.8);
  // Log axis: non-positive values are gaps, limits must be positive.
  LinePlotOptions lo;
  lo.log_y = true;
  Series logs{"loss", {}, {10, 1, 0, -1, 0.1, 0.01}};
  Canvas lf = line_plot({logs}, lo);
  CHECK(gradlab_test::xml_problem(lf.svg()) == "");
  lo.y_min = 0;
  CHECK_THROWS_AS(line_plot({logs}, lo), gradlab::Error);
  CHECK_THROWS_AS(line_plot({Series{"bad", {1, 2}, {1, 2, 3}}}), gradlab::Error);
  LinePlotOptions tiny;
  tiny.width = 100;
  CHECK_THROWS_AS(line_plot({a}, tiny), gradlab::Error);
  CHECK_NOTHROW(line_plot({}));  // empty plot: axes only
}

TEST_CASE("line plot: several series with legend are deterministic and well-formed SVG") {
  std::vector<Series> s;
  for (int r = 0; r < 9; ++r) {  // more series than palette colours
    Series x;
    x.name = "run " + std::to_string(r) + " \xce\xb3=0.5 <&>";
    for (int k = 0; k < 100; ++k) {
      x.x.push_back(k * 10);
      x.y.push_back(3 * std::exp(-k / 30.0) + 0.1 * r);
    }
    s.push_back(x);
  }
  LinePlotOptions o;
  o.title = "Loss";
  o.subtitle = "seeds 0..8";
  o.x_label = "step";
  o.y_label = "loss";
  Canvas a = line_plot(s, o), b = line_plot(s, o);
  CHECK(a.png() == b.png());
  CHECK(a.svg() == b.svg());
  CHECK(gradlab_test::xml_problem(a.svg()) == "");
  CHECK(a.width() == 880);
  CHECK(a.height() == 520);
  for (int k = 0; k < 6; ++k) CHECK(count_color(a.image(), series_color(k)) > 50);
}

TEST_CASE("line plot: smoothing and reference lines and log x axis") {
  Series noisy{"noisy", {}, {}};
  for (int k = 0; k < 200; ++k) noisy.y.push_back(1.0 + (k % 2 ? 0.4 : -0.4));
  LinePlotOptions o;
  o.smooth = 20;
  o.ref_lines = {RefLine{"floor", 0.5}};
  o.y_min = 0;
  o.y_max = 2;
  Canvas fig = line_plot({noisy}, o);
  CHECK(count_color(fig.image(), mix(series_color(0), colors::white, 0.7)) > 100);  // raw values, faint
  CHECK(count_color(fig.image(), series_color(0)) > 100);                           // running mean
  std::string svg = fig.svg();
  CHECK(svg.find(">floor</text>") != std::string::npos);
  CHECK(gradlab_test::xml_problem(svg) == "");
  LinePlotOptions lx;
  lx.log_x = true;
  Series pw{"power law", {1, 10, 100, 1000, 0, -5}, {1, 0.5, 0.25, 0.125, 9, 9}};  // x <= 0: gaps
  Canvas lf = line_plot({pw}, lx);
  CHECK(lf.svg().find(">1000</text>") != std::string::npos);
  lx.x_min = 0;
  CHECK_THROWS_AS(line_plot({pw}, lx), gradlab::Error);
}

TEST_CASE("bar chart: bar areas follow the values and labels and errors behave") {
  BarChartOptions o;
  o.value_labels = false;
  o.y_min = 0;
  o.y_max = 1;
  Canvas fig = bar_chart({"g0", "g1"}, {"causal", "StableMask"}, {{1.0, 0.5}, {0.25, NAN}}, o);
  int c0 = count_color(fig.image(), series_color(0));
  int c1 = count_color(fig.image(), series_color(1));
  // Same bar width: series 0 has 1.0 + 0.25, series 1 has 0.5 (NaN draws nothing); legend squares add 144 each.
  double ratio = (c0 - 144.0) / (c1 - 144.0);
  CHECK(ratio == doctest::Approx(2.5).epsilon(0.05));
  o.value_labels = true;
  Canvas labelled = bar_chart({"learned", "RoPE"}, {"acc"}, {{0.97}, {0.25}}, o);
  CHECK(labelled.svg().find(">0.97</text>") != std::string::npos);
  CHECK(gradlab_test::xml_problem(labelled.svg()) == "");
  // Negative values grow downwards from the zero line.
  CHECK_NOTHROW(bar_chart({"a", "b"}, {"delta"}, {{-0.3}, {0.2}}));
  // Many long group names turn vertical instead of overlapping.
  std::vector<std::string> groups;
  std::vector<std::vector<double>> values;
  for (int g = 0; g < 12; ++g) {
    groups.push_back("layer " + std::to_string(g) + " long name");
    values.push_back({0.1 * g});
  }
  CHECK(gradlab_test::xml_problem(bar_chart(groups, {"share"}, values).svg()) == "");
  CHECK_THROWS_AS(bar_chart({"a"}, {"x", "y"}, {{1.0}}), gradlab::Error);
  CHECK_THROWS_AS(bar_chart({"a", "b"}, {"x"}, {{1.0}}), gradlab::Error);
  CHECK_THROWS_AS(bar_chart({}, {"x"}, {}), gradlab::Error);
}

}  // TEST_SUITE
