// Attention heatmaps: known matrices give known pixel colours, layout rules, odd labels, raw data files,
// statistics.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor/error.h"
#include "tensor/tensor.h"
#include "viz/attention.h"
#include "viz/colormap.h"
#include "viz/heatmap.h"
#include "xml_check.h"

using namespace gradlab::viz;

namespace {

// (n_layer, n_head, T, T) with row i of head (l, h) = a causal distribution that puts `first` on key 0 and
// spreads the rest evenly over keys 1..i, all scaled by `mass` (< 1 imitates StableMask).
AttentionMaps synthetic(std::int64_t L, std::int64_t H, std::int64_t T, double first, double mass, bool sm) {
  std::vector<float> v(L * H * T * T, 0.0f);
  for (std::int64_t l = 0; l < L; ++l)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t i = 0; i < T; ++i) {
        float* row = &v[((l * H + h) * T + i) * T];
        double m = i == T - 1 ? 1.0 : mass;  // the last row of StableMask has no pseudo slots
        if (i == 0) {
          row[0] = static_cast<float>(m);
          continue;
        }
        row[0] = static_cast<float>(first * m);
        for (std::int64_t j = 1; j <= i; ++j) row[j] = static_cast<float>((1 - first) * m / i);
      }
  return AttentionMaps::from_floats(v.data(), L, H, T, sm ? "StableMask" : "causal", sm);
}

std::vector<std::string> letters(std::int64_t T) {
  std::vector<std::string> t;
  for (std::int64_t i = 0; i < T; ++i) t.push_back(std::string(1, static_cast<char>('a' + i % 26)));
  return t;
}

Color cell_pixel(const Image& img, const PanelGeometry& g, int i, int j) {
  return img.get(g.matrix.x + j * g.cell + g.cell / 2, g.matrix.y + i * g.cell + g.cell / 2);
}

std::string temp_stem(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "gradlab_test_viz";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_SUITE("viz") {

TEST_CASE("heatmap: known values map to the colour map and masked cells are hatched and never colour-of-0") {
  // T = 4, one head: row 0 = [1], row 1 = [0, 1], row 2 = [0.5, 0.25, 0.25], row 3 = [0, 0, 0, 1].
  std::vector<float> A = {1, 0, 0, 0, 0, 1, 0, 0, 0.5f, 0.25f, 0.25f, 0, 0, 0, 0, 1};
  AttentionMaps maps = AttentionMaps::from_floats(A.data(), 1, 1, 4, "causal", false);
  std::vector<PanelGeometry> geo;
  HeatmapOptions opts;
  opts.cell_values = false;
  opts.geometry = &geo;
  Canvas fig = heatmap_single(maps, letters(4), 0, 0, opts);
  REQUIRE(geo.size() == 1);
  const Colormap& cm = Colormap::viridis();
  const Image& img = fig.image();
  CHECK(cell_pixel(img, geo[0], 0, 0) == cm(1.0));
  CHECK(cell_pixel(img, geo[0], 0, 0) == color_from_hex("#fde725"));
  CHECK(cell_pixel(img, geo[0], 1, 0) == color_from_hex("#440154"));  // a real zero is viridis(0)
  CHECK(cell_pixel(img, geo[0], 2, 0) == cm(0.5));
  CHECK(cell_pixel(img, geo[0], 2, 1) == cm(0.25));
  CHECK(cell_pixel(img, geo[0], 3, 3) == cm(1.0));
  CHECK(geo[0].sink.w == 0);  // causal: no sink column
  // Panel statistics line: T = 4 < 8, so rows 1..3; first-token share (0 + 0.5 + 0) / 3.
  CHECK(fig.svg().find("first token 0.167") != std::string::npos);
  // Every pixel of every masked cell is one of the two hatch colours.
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      for (int dy = 0; dy < geo[0].cell; ++dy)
        for (int dx = 0; dx < geo[0].cell; ++dx) {
          Color c = img.get(geo[0].matrix.x + j * geo[0].cell + dx, geo[0].matrix.y + i * geo[0].cell + dy);
          CHECK((c == colors::hatch_bg || c == colors::hatch_fg));
          CHECK(c != cm(0.0));
        }
}

TEST_CASE("heatmap: cividis option and StableMask sink column show 1 - row mass on the same scale") {
  // Rows sum to 0.5, 0.75, 1 (the last row of StableMask always sums to 1).
  std::vector<float> A = {0.5f, 0, 0, 0.25f, 0.5f, 0, 0.2f, 0.3f, 0.5f};
  AttentionMaps sm = AttentionMaps::from_floats(A.data(), 1, 1, 3, "StableMask", true);
  std::vector<PanelGeometry> geo;
  HeatmapOptions opts;
  opts.colormap = "cividis";
  opts.cell_values = false;
  opts.geometry = &geo;
  Canvas fig = heatmap_single(sm, letters(3), 0, 0, opts);
  REQUIRE(geo.size() == 1);
  const PanelGeometry& g = geo[0];
  const Colormap& cm = Colormap::cividis();
  REQUIRE(g.sink.w > 0);
  CHECK(g.sink.x > g.matrix.x + g.matrix.w + 3);  // separated by a gap, cannot pass for a key column
  auto sink_pixel = [&](int i) { return fig.image().get(g.sink.x + g.sink.w / 2, g.sink.y + i * g.cell + g.cell / 2); };
  CHECK(sink_pixel(0) == cm(0.5));
  CHECK(sink_pixel(1) == cm(0.25));
  CHECK(sink_pixel(2) == cm(0.0));
  CHECK(cell_pixel(fig.image(), g, 0, 0) == cm(0.5));
  // The gap between the matrix frame and the sink frame is background.
  CHECK(fig.image().get(g.matrix.x + g.matrix.w + 2, g.matrix.y + 2) == colors::white);
  std::string svg = fig.svg();
  CHECK(svg.find(">sink</text>") != std::string::npos);
}

TEST_CASE("heatmap: layout grows with the grid and stays bounded for long inputs and thins labels") {
  AttentionMaps maps = synthetic(2, 3, 12, 0.6, 1.0, false);
  HeatmapOptions one;
  one.layers = {0};
  one.heads = {0};
  Canvas small = heatmap_grid(maps, letters(12), one);
  Canvas grid = heatmap_grid(maps, letters(12));
  CHECK(grid.width() > small.width());
  CHECK(grid.height() > small.height());

  // Side by side is wider than one panel and has exactly one colour bar.
  AttentionMaps sm = synthetic(2, 3, 12, 0.6, 0.8, true);
  std::vector<PanelGeometry> geo;
  HeatmapOptions cmp;
  cmp.layers = {1};
  cmp.heads = {2};
  cmp.geometry = &geo;
  Canvas side = heatmap_compare(maps, sm, letters(12), cmp);
  REQUIRE(geo.size() == 2);
  CHECK(geo[0].mask == "causal");
  CHECK(geo[1].mask == "StableMask");
  CHECK(geo[0].matrix.y == geo[1].matrix.y);  // same row
  CHECK(geo[0].matrix.w == geo[1].matrix.w);  // same scale
  CHECK(geo[1].matrix.x > geo[0].matrix.x + geo[0].matrix.w);
  CHECK(geo[0].sink.w == 0);
  CHECK(geo[1].sink.w > 0);
  std::string svg = side.svg();
  std::size_t bars = 0;
  for (std::size_t p = svg.find("id=\"colorbar\""); p != std::string::npos; p = svg.find("id=\"colorbar\"", p + 1)) ++bars;
  CHECK(bars == 1);

  // Long input: bounded image; tokens still label the axes, every k-th one, never squeezed below a line.
  AttentionMaps longmaps = synthetic(1, 1, 2000, 0.3, 1.0, false);
  std::vector<PanelGeometry> lg;
  HeatmapOptions lo;
  lo.geometry = &lg;
  Canvas big = heatmap_single(longmaps, letters(2000), 0, 0, lo);
  CHECK(big.width() <= 2400);
  CHECK(big.height() <= 2400);
  REQUIRE(lg.size() == 1);
  CHECK(lg[0].token_labels);
  CHECK(lg[0].cell >= 1);
  CHECK(lg[0].label_step * lg[0].cell >= 12);
  // Tighter bounds force block averaging rather than an oversized image.
  lo.max_width = 800;
  lo.max_height = 800;
  Canvas capped = heatmap_single(longmaps, letters(2000), 0, 0, lo);
  CHECK(capped.width() <= 800);
  CHECK(capped.height() <= 800);
  CHECK(lg[0].block > 1);
  CHECK(gradlab_test::xml_problem(capped.svg()) == "");

  // A short input gets big cells with token labels.
  std::vector<PanelGeometry> sg;
  HeatmapOptions so;
  so.geometry = &sg;
  heatmap_single(synthetic(1, 1, 5, 0.5, 1.0, false), letters(5), 0, 0, so);
  REQUIRE(sg.size() == 1);
  CHECK(sg[0].token_labels);
  CHECK(sg[0].cell >= 30);
}

TEST_CASE("heatmap: token range selects queries and keys and bad options are one-line errors") {
  AttentionMaps maps = synthetic(1, 2, 10, 0.5, 1.0, false);
  std::vector<PanelGeometry> geo;
  HeatmapOptions o;
  o.range_begin = 3;
  o.range_end = 7;
  o.cell_values = false;
  o.geometry = &geo;
  Canvas fig = heatmap_single(maps, letters(10), 0, 1, o);
  REQUIRE(geo.size() == 1);
  CHECK(geo[0].matrix.w == 4 * geo[0].cell);
  // Displayed (0, 0) is query 3, key 3: value (1 - 0.5) / 3.
  CHECK(cell_pixel(fig.image(), geo[0], 0, 0) == Colormap::viridis()((1 - 0.5) / 3));
  // Displayed (1, 0) is query 4, key 3.
  CHECK(cell_pixel(fig.image(), geo[0], 1, 0) == Colormap::viridis()((1 - 0.5) / 4));

  HeatmapOptions bad = o;
  bad.range_end = 11;
  CHECK_THROWS_AS(heatmap_single(maps, letters(10), 0, 0, bad), gradlab::Error);
  bad = HeatmapOptions{};
  CHECK_THROWS_AS(heatmap_single(maps, letters(9), 0, 0, bad), gradlab::Error);  // wrong token count
  CHECK_THROWS_AS(heatmap_single(maps, letters(10), 1, 0, bad), gradlab::Error);  // no layer 1
  bad.heads = {2};
  CHECK_THROWS_AS(heatmap_grid(maps, letters(10), bad), gradlab::Error);
  bad = HeatmapOptions{};
  bad.colormap = "rainbow";
  CHECK_THROWS_AS(heatmap_single(maps, letters(10), 0, 0, bad), gradlab::Error);
  CHECK_THROWS_AS(heatmap_compare(maps, synthetic(1, 2, 9, 0.5, 1.0, true), letters(10)), gradlab::Error);
  // No tokens at all: position numbers.
  CHECK_NOTHROW(heatmap_single(maps, {}, 0, 0));

  std::int64_t a = 0, b = 0;
  parse_token_range("2:5", 10, &a, &b);
  CHECK((a == 2 && b == 5));
  parse_token_range(":", 10, &a, &b);
  CHECK((a == 0 && b == 10));
  parse_token_range("-3:", 10, &a, &b);
  CHECK((a == 7 && b == 10));
  CHECK_THROWS_AS(parse_token_range("5:5", 10, &a, &b), gradlab::Error);
  CHECK_THROWS_AS(parse_token_range("0:11", 10, &a, &b), gradlab::Error);
  CHECK_THROWS_AS(parse_token_range("x:3", 10, &a, &b), gradlab::Error);
  CHECK_THROWS_AS(parse_token_range("3", 10, &a, &b), gradlab::Error);
}

TEST_CASE("heatmap: odd tokens render with both fonts and SVG stays well formed and output is deterministic") {
  std::vector<std::string> toks = {" ", "\n", "\t", "\x01", "\xff", "\xf0\x9f\x98\x80", "<", "&", "\"", "", "abcdefghijklmnop", "\xce\xb3"};
  AttentionMaps c = synthetic(1, 2, static_cast<std::int64_t>(toks.size()), 0.4, 1.0, false);
  AttentionMaps s = synthetic(1, 2, static_cast<std::int64_t>(toks.size()), 0.4, 0.7, true);
  std::vector<FontPtr> fonts = {Font::bitmap()};
  if (Font::find_system_font()->is_truetype()) fonts.push_back(Font::find_system_font());
  for (const FontPtr& f : fonts) {
    CAPTURE(f->is_truetype());
    HeatmapOptions o;
    o.font = f;
    o.subtitle = "text: \" \\n\\t\xff <&>\"";
    Canvas a = heatmap_compare(c, s, toks, o);
    Canvas b = heatmap_compare(c, s, toks, o);
    CHECK(gradlab_test::xml_problem(a.svg()) == "");
    CHECK(a.svg() == b.svg());
    CHECK(a.png() == b.png());
    CHECK(a.svg().find("\xe2\x86\xb5") != std::string::npos);  // ↵ label for the newline token
    CHECK(a.svg().find("\\x01") != std::string::npos);
    CHECK(a.svg().find("\\xFF") != std::string::npos);
  }
}

TEST_CASE("raw data: .npy header is valid v1.0 and the values round-trip and JSON lists tokens and arrays") {
  AttentionMaps c = synthetic(2, 3, 5, 0.4, 1.0, false);
  AttentionMaps s = synthetic(2, 3, 5, 0.4, 0.7, true);
  std::string stem = temp_stem("compare");
  Canvas fig = heatmap_compare(c, s, letters(5));
  std::vector<std::string> paths = save_attention_figure(stem, fig, {&c, &s}, letters(5));
  REQUIRE(paths.size() == 5);
  for (const std::string& p : paths) CHECK(std::filesystem::exists(p));
  std::string bytes = slurp(stem + ".stablemask.npy");
  REQUIRE(bytes.size() > 10);
  CHECK(bytes.substr(0, 6) == "\x93NUMPY");
  CHECK(bytes[6] == 1);
  CHECK(bytes[7] == 0);
  std::size_t hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  CHECK((10 + hlen) % 64 == 0);
  std::string header = bytes.substr(10, hlen);
  CHECK(header.back() == '\n');
  CHECK(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 5, 5), }", 0) == 0);
  CHECK(bytes.size() == 10 + hlen + 4 * 2 * 3 * 5 * 5);
  NpyArray back = read_npy(stem + ".stablemask.npy");
  CHECK(back.shape == std::vector<std::int64_t>{2, 3, 5, 5});
  CHECK(back.values == s.values);
  // Little-endian float32: 0.7 * 1 at [0,0,0,0] (row 0 has all its mass on key 0).
  float first;
  std::memcpy(&first, bytes.data() + 10 + hlen, 4);
  CHECK(first == doctest::Approx(0.7));
  // 1-d shapes use the Python 1-tuple spelling.
  float one[3] = {1, 2, 3};
  std::string v = npy_bytes(one, {3});
  CHECK(v.find("'shape': (3,), }") != std::string::npos);
  CHECK(parse_npy(v).values == std::vector<float>{1, 2, 3});
  CHECK_THROWS_AS(parse_npy("not numpy"), gradlab::Error);

  nlohmann::json doc = nlohmann::json::parse(slurp(stem + ".json"));
  CHECK(doc["tokens"].size() == 5);
  CHECK(doc["T"] == 5);
  REQUIRE(doc["arrays"].size() == 2);
  CHECK(doc["arrays"][0]["file"] == "compare.causal.npy");
  CHECK(doc["arrays"][1]["file"] == "compare.stablemask.npy");
  CHECK(doc["arrays"][1]["stablemask"] == true);
  CHECK(gradlab_test::xml_problem(slurp(stem + ".svg")) == "");
  // One attention set: stem.npy
  std::vector<std::string> single = save_attention_figure(temp_stem("single"), heatmap_single(c, letters(5), 1, 2), {&c}, letters(5));
  CHECK(single[2] == temp_stem("single") + ".npy");
}

TEST_CASE("tensor input: 2-d 3-d and 4-d attention tensors become attention maps") {
  std::vector<float> v(2 * 3 * 4 * 4);
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(k) / v.size();
  gradlab::Tensor t = gradlab::Tensor::from_floats({2, 3, 4, 4}, v);
  AttentionMaps m = AttentionMaps::from_tensor(t, "causal", false);
  CHECK(m.n_layer == 2);
  CHECK(m.n_head == 3);
  CHECK(m.T == 4);
  CHECK(m.values == v);
  AttentionMaps m2 = AttentionMaps::from_tensor(gradlab::Tensor::from_floats({4, 4}, std::vector<float>(16, 0.25f)), "x", true);
  CHECK((m2.n_layer == 1 && m2.n_head == 1 && m2.T == 4 && m2.stablemask));
  CHECK_THROWS_AS(AttentionMaps::from_tensor(gradlab::Tensor::from_floats({4, 3}, std::vector<float>(12)), "x", false), gradlab::Error);
  CHECK_THROWS_AS(AttentionMaps::from_tensor(gradlab::Tensor(), "x", false), gradlab::Error);
}

TEST_CASE("statistics: first-token share raw and normalised by real mass on known matrices") {
  // T = 10, rows 8 and 9 are used (min_row 8). Row 8: first 0.4 of mass 1... build it by hand.
  const std::int64_t T = 10;
  std::vector<float> A(T * T, 0.0f);
  for (std::int64_t i = 0; i < T; ++i) A[i * T + i] = 1.0f;  // rows 0..7: all on the diagonal
  // Row 8: mass 1.0, 0.4 on key 0.  Row 9: mass 0.5, 0.2 on key 0.
  A[8 * T + 8] = 0.6f;
  A[8 * T + 0] = 0.4f;
  A[9 * T + 9] = 0.3f;
  A[9 * T + 0] = 0.2f;
  AttentionMaps m = AttentionMaps::from_floats(A.data(), 1, 1, T, "StableMask", true);
  AttentionStats st = attention_stats(m);
  CHECK(st.first_row == 8);
  CHECK(st.rows == 2);
  REQUIRE(st.heads.size() == 1);
  CHECK(st.heads[0].first_share_raw == doctest::Approx((0.4 + 0.2) / 2));
  CHECK(st.heads[0].first_share_norm == doctest::Approx((0.4 / 1.0 + 0.2 / 0.5) / 2));
  CHECK(st.heads[0].mean_real_mass == doctest::Approx((1.0 + 0.5) / 2));
  // min_row 0 averages every row; row 0 has 1.0 on key 0 (its diagonal).
  AttentionStats all = attention_stats(m, 0);
  CHECK(all.rows == 10);
  CHECK(all.heads[0].first_share_raw == doctest::Approx((1.0 + 0.4 + 0.2) / 10));
  // Short inputs use rows 1..T-1.
  AttentionStats short_st = attention_stats(synthetic(2, 2, 4, 0.25, 0.8, true));
  CHECK(short_st.first_row == 1);
  CHECK(short_st.rows == 3);
  CHECK(short_st.heads.size() == 4);
  CHECK(short_st.heads[3].layer == 1);
  CHECK(short_st.heads[3].head == 1);
  CHECK(short_st.heads[0].first_share_norm == doctest::Approx(0.25));
  CHECK(short_st.heads[0].first_share_raw == doctest::Approx(0.25 * (0.8 + 0.8 + 1.0) / 3));
  CHECK(short_st.heads[0].mean_real_mass == doctest::Approx((0.8 + 0.8 + 1.0) / 3));
  std::string table = format_stats(st);
  CHECK(table.find("0.3000") != std::string::npos);
  CHECK(table.find("0.4000") != std::string::npos);
  std::string cmp = format_stats_comparison(attention_stats(synthetic(1, 1, 12, 0.5, 1, false)), st);
  CHECK(cmp.find("causal") != std::string::npos);
  CHECK(cmp.find("StableMask") != std::string::npos);
  CHECK_THROWS_AS(attention_stats(m, -1), gradlab::Error);
}

TEST_CASE("heatmap_stack: one row per strategy, the same head, the sink column only where rows keep less than 1") {
  AttentionMaps causal = synthetic(2, 3, 12, 0.6, 1.0, false);
  AttentionMaps sm = synthetic(2, 3, 12, 0.3, 0.8, true);
  AttentionMaps other = synthetic(2, 3, 12, 0.2, 0.95, true);
  other.mask = "softmax1";
  std::vector<PanelGeometry> geo;
  HeatmapOptions o;
  o.geometry = &geo;
  Canvas fig = heatmap_stack({&causal, &sm, &other}, letters(12), 1, 2, o);
  REQUIRE(geo.size() == 3);
  CHECK(geo[0].mask == "causal");
  CHECK(geo[1].mask == "StableMask");
  CHECK(geo[2].mask == "softmax1");
  for (int r = 0; r < 3; ++r) {
    CHECK(geo[r].layer == 1);
    CHECK(geo[r].head == 2);
  }
  CHECK(geo[0].matrix.x == geo[1].matrix.x);  // one column
  CHECK(geo[1].matrix.y > geo[0].matrix.y + geo[0].matrix.h);
  CHECK(geo[2].matrix.y > geo[1].matrix.y + geo[1].matrix.h);
  CHECK(geo[0].sink.w == 0);
  CHECK(geo[1].sink.w > 0);
  CHECK(geo[2].sink.w > 0);
  // the pixels are each strategy's own: key 0 of row 5 differs between the rows of the figure
  CHECK_FALSE(cell_pixel(fig.image(), geo[0], 5, 0) == cell_pixel(fig.image(), geo[1], 5, 0));
  CHECK_THROWS_AS(heatmap_stack({}, letters(12), 0, 0), gradlab::Error);
  AttentionMaps short_maps = synthetic(1, 1, 9, 0.5, 1.0, false);
  CHECK_THROWS_AS(heatmap_stack({&causal, &short_maps}, letters(12), 0, 0), gradlab::Error);
  CHECK_THROWS_AS(heatmap_stack({&causal}, letters(12), 2, 0), gradlab::Error);
}

}  // TEST_SUITE
