// Label placement: no two texts of a figure share pixels (ticks, bar values, legends, token axes), token
// axes carry the tokens themselves, and crowded axes drop labels instead of shrinking them.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "viz/heatmap.h"
#include "viz/plot.h"

using namespace gradlab::viz;

namespace {

// Fails with the first colliding pair named, so a broken layout says which labels ran into each other.
void check_no_overlap(const Canvas& cv, const char* what) {
  const auto& boxes = cv.text_boxes();
  const auto pairs = overlapping_boxes(boxes);
  INFO(what, ": ", boxes.size(), " texts");
  if (!pairs.empty()) {
    const TextBox &a = boxes[pairs[0].first], &b = boxes[pairs[0].second];
    INFO("\"", a.text, "\" [", a.x0, ",", a.y0, " - ", a.x1, ",", a.y1, "] overlaps \"", b.text, "\" [", b.x0, ",", b.y0,
         " - ", b.x1, ",", b.y1, "]");
    CHECK(pairs.empty());
  }
  CHECK(boxes.size() > 3);
}

// A causal attention set whose rows put most weight on the first token.
AttentionMaps sink_like(std::int64_t L, std::int64_t H, std::int64_t T, bool stablemask) {
  AttentionMaps m;
  m.n_layer = L, m.n_head = H, m.T = T;
  m.mask = stablemask ? "StableMask" : "causal";
  m.stablemask = stablemask;
  m.values.assign(static_cast<std::size_t>(L * H * T * T), 0.0f);
  for (std::int64_t lh = 0; lh < L * H; ++lh)
    for (std::int64_t i = 0; i < T; ++i) {
      float* row = m.values.data() + (lh * T + i) * T;
      const float mass = stablemask ? 0.8f : 1.0f;
      row[0] = i == 0 ? mass : 0.5f * mass;
      for (std::int64_t j = 1; j <= i; ++j) row[j] = 0.5f * mass / static_cast<float>(i);
    }
  return m;
}

std::vector<std::string> mixed_tokens(std::int64_t T) {
  const char* pool[] = {"a", " ", "\n", "\t", "Z", ".", "\xc3\xa9", "\xf0\x9f\x98\x80", "k", "o"};
  std::vector<std::string> t;
  for (std::int64_t k = 0; k < T; ++k) t.push_back(pool[(k / 8) % 10]);  // runs of 8: seen at any label step <= 8
  return t;
}

}  // namespace

TEST_SUITE("viz") {

TEST_CASE("labels: the overlap check finds colliding texts and text_if_free refuses to draw over one") {
  Canvas cv(300, 100);
  cv.text(10, 10, "first label", {12, colors::text, Anchor::Start, VAlign::Top});
  cv.text(200, 10, "far away", {12, colors::text, Anchor::Start, VAlign::Top});
  CHECK(overlapping_boxes(cv.text_boxes()).empty());
  cv.text(30, 12, "on top", {12, colors::text, Anchor::Start, VAlign::Top});
  auto pairs = overlapping_boxes(cv.text_boxes());
  REQUIRE(pairs.size() == 1);
  CHECK(pairs[0] == std::pair<std::size_t, std::size_t>{0, 2});
  CHECK_FALSE(cv.text_if_free(12, 14, "again", {12, colors::text, Anchor::Start, VAlign::Top}));
  CHECK(cv.text_if_free(10, 60, "free spot", {12, colors::text, Anchor::Start, VAlign::Top}));
  // A vertical label's box is tall and narrow and ends where its anchor says.
  TextBox v = cv.text_box(50, 90, "upright", {12, colors::text, Anchor::Start, VAlign::Middle, true});
  CHECK(v.y1 == doctest::Approx(90));
  CHECK(v.y1 - v.y0 > v.x1 - v.x0);
}

TEST_CASE("labels: a log x axis over 14 decades (lesson 02) keeps its tick labels apart") {
  std::vector<double> hs, err;
  for (int e = 1; e <= 15; ++e) hs.push_back(std::pow(10.0, -e)), err.push_back(std::pow(10.0, -e / 2.0));
  LinePlotOptions o;
  o.title = "Error of the numerical derivative";
  o.x_label = "step h";
  o.y_label = "|error|";
  o.log_x = o.log_y = true;
  for (int width : {900, 600, 440}) {
    o.width = width;
    Canvas cv = line_plot({{"forward (f(x+h)-f(x))/h", hs, err}, {"central", hs, err}}, o);
    check_no_overlap(cv, "log-log line plot");
    bool exponent_form = false;  // every decade label in one style once any needs an exponent
    for (const TextBox& b : cv.text_boxes()) exponent_form = exponent_form || b.text == "1e-5" || b.text == "1e-6";
    CHECK(exponent_form);
  }
  // Linear axes with many ticks in a small plot.
  LinePlotOptions small;
  small.width = 300, small.height = 200;
  std::vector<double> big;
  for (int k = 0; k < 50; ++k) big.push_back(123456.0 * k);
  check_no_overlap(line_plot({{"", big, big}}, small), "small linear plot");
}

TEST_CASE("labels: bar charts with narrow bars, many groups and legends never print over each other") {
  // Lesson 09's first-token chart: four series of close values in narrow bars.
  std::vector<std::string> groups;
  std::vector<std::vector<double>> values;
  for (int l = 0; l < 4; ++l) {
    groups.push_back("layer " + std::to_string(l));
    values.push_back({0.008, 0.008, 0.0080, 0.0079});
  }
  BarChartOptions o;
  o.decimals = 3;
  o.title = "first-token share";
  Canvas cv = bar_chart(groups, {"causal raw", "causal normalised", "StableMask raw", "StableMask normalised"}, values, o);
  check_no_overlap(cv, "first-token bars");
  int value_labels = 0;  // the axis makes headroom, so none of the 16 is left out for touching the title
  for (const TextBox& b : cv.text_boxes())
    value_labels += b.text == "0.008" && b.y1 - b.y0 > b.x1 - b.x0;  // upright value labels, not the y ticks
  CHECK(value_labels == 16);
  // 40 groups with long names in a narrow chart.
  groups.clear();
  values.clear();
  for (int g = 0; g < 40; ++g) {
    groups.push_back("configuration " + std::to_string(g));
    values.push_back({0.5 + 0.01 * g, -0.2});
  }
  o.width = 400;
  check_no_overlap(bar_chart(groups, {"a", "b"}, values, o), "40 groups");
}

TEST_CASE("labels: a 256-token heatmap labels tokens (not numbers) at a legible size and none overlap") {
  const std::int64_t T = 256;
  AttentionMaps m = sink_like(1, 1, T, true);
  std::vector<PanelGeometry> geo;
  HeatmapOptions o;
  o.geometry = &geo;
  o.font = Font::bitmap();  // the emoji has no glyph there: it must come out as its U+ code
  Canvas cv = heatmap_single(m, mixed_tokens(T), 0, 0, o);
  REQUIRE(geo.size() == 1);
  CHECK(geo[0].token_labels);
  CHECK(geo[0].label_step >= 2);
  CHECK(geo[0].label_step * geo[0].cell >= 10);
  check_no_overlap(cv, "256-token heatmap");
  int spaces = 0, codes = 0, small = 0;
  const double min_h = o.font->line_height(9) - 1e-9;
  for (const TextBox& b : cv.text_boxes()) {
    spaces += b.text == "\u00b7";
    codes += b.text == "U+1F600";
    small += b.y1 - b.y0 < min_h && b.x1 - b.x0 < min_h;  // across the text direction, for both orientations
  }
  CHECK(spaces > 0);
  CHECK(codes > 0);
  CHECK(small == 0);
  // With a TrueType font too, and as a 4 x 4 grid and a side-by-side comparison grid at T = 64.
  o.font = nullptr;
  check_no_overlap(heatmap_single(m, mixed_tokens(T), 0, 0, o), "256 tokens, default font");
  AttentionMaps g = sink_like(4, 4, 64, false), s = sink_like(4, 4, 64, true);
  Canvas grid = heatmap_grid(g, mixed_tokens(64), o);
  check_no_overlap(grid, "4 x 4 grid");
  CHECK(geo.size() == 16);
  for (const PanelGeometry& p : geo) CHECK(p.token_labels);
  check_no_overlap(heatmap_compare(g, s, mixed_tokens(64), o), "comparison grid");
}

TEST_CASE("labels: characters a font lacks become U+ codes") {
  FontPtr bm = Font::bitmap();
  CHECK(bm->printable("a\xf0\x9f\x98\x80" "b") == "aU+1F600b");
  CHECK(bm->printable("\u00b7") == "\u00b7");  // the space escape is in the bitmap font
}

}  // TEST_SUITE
