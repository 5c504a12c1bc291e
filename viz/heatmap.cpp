#include "viz/heatmap.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "tensor/error.h"
#include "viz/colormap.h"
#include "viz/text.h"

namespace gradlab::viz {

namespace {

// ---- Fixed style --------------------------------------------------------------------------------------
constexpr int kMargin = 20;
constexpr double kFigTitleSize = 16;
constexpr double kSubtitleSize = 12;
constexpr double kPanelTitleSize = 13;
constexpr double kCaptionSize = 12;
constexpr double kSmallSize = 11;
constexpr double kStatsSize = 10.5;
constexpr int kMaxCell = 64;
constexpr std::size_t kMaxLabelChars = 10;
constexpr double kMinLabelSize = 10;  // token labels never get smaller than this: they thin out instead
constexpr double kPosLabelSize = 9;   // the position beside each token label, in grey

struct PanelSpec {
  const AttentionMaps* maps;
  std::int64_t layer, head;
  int row, col;
};

struct FigureSpec {
  std::vector<PanelSpec> panels;
  int rows = 1, cols = 1;
  std::vector<int> gap_after_col;  // pixels after each grid column (last unused)
  double target_matrix = 600;      // preferred matrix side in pixels
  std::string title;
};

// Everything that depends on the chosen cell size.
struct Layout {
  int cell = 1, ds = 1, n_disp = 1;
  bool token_labels = false;
  double label_size = 10;
  std::int64_t num_step = 1;    // token step between numeric labels
  std::int64_t label_step = 1;  // token labels: every label_step-th token (1, 2, 4, ...)
  int label_w = 0;              // widest axis label in pixels
  int pos_w = 0;                // widest position label beside a token label
  int rl_w = 0, kl_h = 0, cap_w = 0, cap_h = 0;
  int title_h = 0, header_h = 0;
  int matrix = 0, sink_gap = 0, sink_w = 0, sink_over = 0;
  std::vector<int> col_w, row_h, col_x, row_y;
  int grid_x = 0, grid_y = 0, grid_w = 0, grid_h = 0;
  int right_w = 0, bar_h = 0, top_h = 0;
  std::vector<std::string> footnotes;
  int title_variant = 0;  // panel title form, one for the whole figure (see panel_title)
  int stats_form = 0;     // statistics line: 0 long, 1 short, 2 none
  int W = 0, H = 0;
};

int ceil_int(double v) { return static_cast<int>(std::ceil(v - 1e-9)); }

// 2 -> "2nd", 4 -> "4th", 32 -> "32nd", 13 -> "13th".
std::string ordinal(std::int64_t n) {
  const std::int64_t tens = n % 100, ones = n % 10;
  const char* suffix = tens >= 11 && tens <= 13 ? "th" : ones == 1 ? "st" : ones == 2 ? "nd" : ones == 3 ? "rd" : "th";
  return std::to_string(n) + suffix;
}

std::string fmt_tick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Value printed in a cell: "1", ".42", ".05", "0".
std::string fmt_cell(double v) {
  if (std::isnan(v)) return "nan";
  if (v >= 0.995) return "1";
  if (v < 0.005) return "0";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf + 1;  // drop the leading 0
}

// "StableMask" -> "SM", "causal" -> "C": the first character and every later capital, upper-cased.
std::string mask_abbrev(const std::string& mask) {
  std::string out;
  for (std::size_t k = 0; k < mask.size(); ++k) {
    char ch = mask[k];
    if (k == 0 && ch >= 'a' && ch <= 'z') out += static_cast<char>(ch - 'a' + 'A');
    else if (k == 0 || (ch >= 'A' && ch <= 'Z')) out += ch;
  }
  return out;
}

// Smallest "nice" step (1, 2, 5 x 10^k) that is >= min_step.
std::int64_t nice_step(std::int64_t min_step) {
  std::int64_t base = 1;
  while (true) {
    for (std::int64_t m : {1, 2, 5})
      if (m * base >= min_step) return m * base;
    base *= 10;
  }
}

class HeatmapRenderer {
 public:
  HeatmapRenderer(FigureSpec spec, const std::vector<std::string>& tokens, const HeatmapOptions& opts)
      : spec_(std::move(spec)), tokens_(tokens), opts_(opts), cmap_(Colormap::by_name(opts.colormap)) {
    font_ = opts.font ? opts.font : default_font();
    const AttentionMaps& first = *spec_.panels.front().maps;
    T_ = first.T;
    if (!tokens_.empty() && static_cast<std::int64_t>(tokens_.size()) != T_)
      throw_error("heatmap: got ", tokens_.size(), " tokens for T=", T_, ", expected one token per position (or none)");
    begin_ = opts.range_begin;
    end_ = opts.range_end < 0 ? T_ : opts.range_end;
    if (begin_ < 0 || end_ > T_ || begin_ >= end_)
      throw_error("heatmap: got token range ", begin_, ":", end_, " for T=", T_, ", expected 0 <= a < b <= ", T_);
    if (opts.max_width < 400 || opts.max_height < 400)
      throw_error("heatmap: got max size ", opts.max_width, "x", opts.max_height, ", expected at least 400x400");
    n_ = end_ - begin_;
    for (const PanelSpec& p : spec_.panels) {
      has_sink_ = has_sink_ || p.maps->stablemask;
      if (opts.panel_stats && !stats_.count(p.maps)) stats_[p.maps] = attention_stats(*p.maps, opts.stats_min_row);
    }
    layout_ = choose_layout();
  }

  Canvas draw() const;

 private:
  FigureSpec spec_;
  const std::vector<std::string>& tokens_;
  HeatmapOptions opts_;
  const Colormap& cmap_;
  FontPtr font_;
  std::int64_t T_ = 0, begin_ = 0, end_ = 0, n_ = 0;
  bool has_sink_ = false;
  std::map<const AttentionMaps*, AttentionStats> stats_;
  Layout layout_;

  double lh(double size) const { return font_->line_height(size); }
  double tw(const std::string& s, double size) const { return font_->measure(s, size); }
  bool row_labels(int col) const { return spec_.cols <= 2 || col == 0; }
  // Keys are labelled under every panel in small figures, else under the lowest panel of each column.
  bool key_labels(int row) const { return spec_.rows <= 2 || row == spec_.rows - 1; }

  std::string token_label(std::int64_t pos) const {
    return truncate_label(font_->printable(escape_token(tokens_[static_cast<std::size_t>(pos)])), kMaxLabelChars);
  }

  Layout compute(int cell, int ds) const;
  Layout choose_layout() const;
  std::string panel_title(const PanelSpec& p, int variant) const;  // 0 = longest ... 2 = shortest
  int panel_content_w(const Layout& L, const PanelSpec& p) const;
  std::string stats_line(const PanelSpec& p, bool long_form) const;
  // title_variant and stats_form (0 long, 1 short, 2 none) are chosen once per figure so panels agree.
  void draw_panel(Canvas& cv, const PanelSpec& p, int title_variant, int stats_form) const;
  void draw_colorbar(Canvas& cv) const;
};

Layout HeatmapRenderer::compute(int cell, int ds) const {
  Layout L;
  L.cell = cell;
  L.ds = ds;
  L.n_disp = static_cast<int>((n_ + ds - 1) / ds);
  L.matrix = L.n_disp * cell;
  // Axis labels: the tokens (with their positions in grey) whenever cells are single tokens; where a cell is
  // too small for a line of text, every 2nd (4th, ...) token is labelled instead of shrinking the text.
  L.token_labels = !tokens_.empty() && ds == 1;
  if (L.token_labels) {
    L.label_size = std::clamp(cell * 0.75, kMinLabelSize, 13.0);
    const double need = std::max(lh(L.label_size), lh(kPosLabelSize)) + 1;
    while (L.label_step * cell < need) L.label_step *= 2;
    double w = 0;
    for (std::int64_t p = begin_; p < end_; p += L.label_step) w = std::max(w, tw(token_label(p), L.label_size));
    L.label_w = ceil_int(w);
    L.pos_w = ceil_int(tw(std::to_string(end_ - 1), kPosLabelSize));
  } else {
    L.label_size = 10;
    double px_per_token = static_cast<double>(cell) / ds;
    L.num_step = nice_step(std::max<std::int64_t>(1, ceil_int((lh(L.label_size) + 4) / px_per_token)));
    L.label_w = ceil_int(tw(std::to_string(end_ - 1), L.label_size));
  }
  L.cap_w = ceil_int(lh(kCaptionSize)) + 6;
  L.cap_h = ceil_int(lh(kCaptionSize)) + 4;
  L.rl_w = L.label_w + (L.token_labels ? 8 + L.pos_w + 6 : 10);
  L.kl_h = L.label_w + (L.token_labels ? 8 + L.pos_w + 6 : 10);
  L.title_h = ceil_int(lh(kPanelTitleSize)) + 8 + (opts_.panel_stats ? ceil_int(lh(kStatsSize)) + 2 : 0);
  if (has_sink_) {
    L.sink_gap = std::max(8, cell / 2);
    L.sink_w = std::max(cell, 14);
    L.header_h = ceil_int(lh(kSmallSize)) + 3;
    L.sink_over = std::max(0, ceil_int(tw("sink", kSmallSize) / 2 - L.sink_w / 2.0));
  }
  // Grid columns and rows.
  L.col_w.assign(spec_.cols, 0);
  L.row_h.assign(spec_.rows, 0);
  for (int c = 0; c < spec_.cols; ++c)
    L.col_w[c] = (row_labels(c) ? L.cap_w + L.rl_w : 0) + L.matrix + (has_sink_ ? L.sink_gap + L.sink_w + L.sink_over : 0);
  if (spec_.cols <= 2) {
    // One or two columns: make room for the full panel title and statistics rather than abbreviating.
    for (const PanelSpec& p : spec_.panels) {
      int need = ceil_int(tw(panel_title(p, 0), kPanelTitleSize));
      if (opts_.panel_stats) need = std::max(need, ceil_int(tw(stats_line(p, true), kStatsSize)));
      L.col_w[p.col] = std::max(L.col_w[p.col], need);
    }
  }
  // Panel titles and statistics lines: the longest form every panel has room for.
  for (const PanelSpec& p : spec_.panels) {
    while (L.title_variant < 2 && tw(panel_title(p, L.title_variant), kPanelTitleSize) > panel_content_w(L, p)) ++L.title_variant;
    if (opts_.panel_stats)
      while (L.stats_form < 2 && tw(stats_line(p, L.stats_form == 0), kStatsSize) > L.col_w[p.col]) ++L.stats_form;
  }
  if (L.stats_form == 2) L.title_h = ceil_int(lh(kPanelTitleSize)) + 8;  // no statistics line after all
  for (int r = 0; r < spec_.rows; ++r)
    L.row_h[r] = L.title_h + L.header_h + L.matrix + (key_labels(r) ? L.kl_h + L.cap_h : 6);
  // Figure: title block on top, grid, colour bar on the right, footnotes below.
  L.top_h = ceil_int(lh(kFigTitleSize)) + 6 + (opts_.subtitle.empty() ? 0 : ceil_int(lh(kSubtitleSize)) + 4) + 10;
  L.grid_x = kMargin;
  L.grid_y = kMargin + L.top_h;
  L.col_x.assign(spec_.cols, 0);
  L.row_y.assign(spec_.rows, 0);
  int x = L.grid_x;
  for (int c = 0; c < spec_.cols; ++c) {
    L.col_x[c] = x;
    x += L.col_w[c] + (c + 1 < spec_.cols ? spec_.gap_after_col[c] : 0);
  }
  L.grid_w = x - L.grid_x;
  int y = L.grid_y;
  for (int r = 0; r < spec_.rows; ++r) {
    L.row_y[r] = y;
    y += L.row_h[r] + (r + 1 < spec_.rows ? 16 : 0);
  }
  L.grid_h = y - L.grid_y;
  // Colour bar block: gap, bar, ticks and labels, rotated caption; legend swatch below it.
  int bar_block = 28 + 16 + 4 + 4 + ceil_int(tw("0.75", kSmallSize)) + 10 + ceil_int(lh(kCaptionSize));
  int legend_block = 28 + 16 + 6 + ceil_int(tw("masked (j > i)", kSmallSize));
  L.right_w = std::max(bar_block, legend_block);
  L.bar_h = std::clamp(L.matrix, 150, 400);
  if (L.title_variant == 2) {  // abbreviated masks in the titles: spell them out once
    std::vector<std::string> seen;
    std::string legend;
    for (const PanelSpec& p : spec_.panels)
      if (std::find(seen.begin(), seen.end(), p.maps->mask) == seen.end()) {
        seen.push_back(p.maps->mask);
        legend += (legend.empty() ? "" : ", ") + mask_abbrev(p.maps->mask) + " = " + p.maps->mask;
      }
    L.footnotes.push_back("panel titles: L = layer, H = head, " + legend);
  }
  if (has_sink_) {
    // Only null-kv's extra key carries a value (a learned v0); the others' value is 0, so say which is drawn.
    bool null_kv = false;
    for (const PanelSpec& p : spec_.panels)
      null_kv = null_kv || (p.maps->stablemask && p.maps->mask.find("null") != std::string::npos);
    L.footnotes.push_back(std::string("sink = 1 \u2212 \u03a3_j Attn_ij: the share of row i taken by the extra key (value 0") +
                          (null_kv ? ", or for the null key/value its learned value v0" : "") +
                          "; StableMask: its pseudo keys) (same colour scale)");
  }
  if (opts_.panel_stats && L.stats_form < 2)
    L.footnotes.push_back("first token: mean of Attn_i0 over rows i \u2265 " + std::to_string(stats_.begin()->second.first_row) +
                          "; \u00f7R: the same normalised by the row's real mass R_i = \u03a3_j Attn_ij");
  if (L.token_labels)
    L.footnotes.push_back(std::string("axes: each token (\u00b7 space, \u21b5 newline, \u2192 tab) with its position in grey") +
                          (L.label_step > 1 ? "; every " + ordinal(L.label_step) + " token labelled" : ""));
  if (ds > 1)
    L.footnotes.push_back("long input: each cell shows the mean of a " + std::to_string(ds) + "\u00d7" + std::to_string(ds) +
                          " block of attention weights");
  int foot_h = 0, foot_w = 0;
  for (const std::string& f : L.footnotes) {
    foot_h += ceil_int(lh(kSmallSize)) + 3;
    foot_w = std::max(foot_w, ceil_int(tw(f, kSmallSize)));
  }
  int legend_bottom = L.grid_y + L.title_h + L.header_h + L.bar_h + 50;
  L.W = kMargin + std::max({L.grid_w + L.right_w, foot_w, ceil_int(font_->measure(spec_.title, kFigTitleSize, true)),
                            ceil_int(tw(opts_.subtitle, kSubtitleSize))}) + kMargin;
  L.H = std::max(L.grid_y + L.grid_h, legend_bottom) + (foot_h ? foot_h + 10 : 0) + kMargin;
  return L;
}

Layout HeatmapRenderer::choose_layout() const {
  // Largest cell up to the preferred size that fits; when even one pixel per token is too much, average
  // ds x ds blocks.
  int cell_max = std::clamp(static_cast<int>(spec_.target_matrix / static_cast<double>(n_)), 1, kMaxCell);
  for (int ds = 1;; ++ds) {
    int n_disp = static_cast<int>((n_ + ds - 1) / ds);
    int start = ds == 1 ? cell_max : 1;
    for (int cell = start; cell >= 1; --cell) {
      Layout L = compute(cell, ds);
      if (L.W <= opts_.max_width && L.H <= opts_.max_height) return L;
    }
    if (n_disp <= 1) throw_error("heatmap: cannot fit ", spec_.panels.size(), " panels into ", opts_.max_width, "x",
                                 opts_.max_height, " pixels; choose fewer layers or heads");
  }
}

std::string HeatmapRenderer::stats_line(const PanelSpec& p, bool long_form) const {
  const AttentionStats& st = stats_.at(p.maps);
  const HeadStats& hs = st.heads[static_cast<std::size_t>(p.layer * p.maps->n_head + p.head)];
  char buf[160];
  if (long_form)
    std::snprintf(buf, sizeof buf, "first token %.3f \u00b7 \u00f7R %.3f \u00b7 mean R %.3f (rows \u2265 %lld)",
                  hs.first_share_raw, hs.first_share_norm, hs.mean_real_mass, static_cast<long long>(st.first_row));
  else
    std::snprintf(buf, sizeof buf, "1st %.2f \u00b7 \u00f7R %.2f \u00b7 R %.2f", hs.first_share_raw, hs.first_share_norm,
                  hs.mean_real_mass);
  return buf;
}

std::string HeatmapRenderer::panel_title(const PanelSpec& p, int variant) const {
  std::string l = std::to_string(p.layer), h = std::to_string(p.head);
  const std::string sep = " \u00b7 ";
  if (variant <= 0) return "layer " + l + sep + "head " + h + sep + p.maps->mask;
  if (variant == 1) return "L" + l + " H" + h + sep + p.maps->mask;
  return "L" + l + " H" + h + " " + mask_abbrev(p.maps->mask);
}

int HeatmapRenderer::panel_content_w(const Layout& L, const PanelSpec& p) const {
  return std::max(L.col_w[p.col] - (row_labels(p.col) ? L.cap_w + L.rl_w : 0), L.matrix);
}

void HeatmapRenderer::draw_panel(Canvas& cv, const PanelSpec& p, int title_variant, int stats_form) const {
  const Layout& L = layout_;
  const AttentionMaps& m = *p.maps;
  const int c = L.cell, nd = L.n_disp, ds = L.ds;
  const int px0 = L.col_x[p.col], py0 = L.row_y[p.row];
  const int mx = px0 + (row_labels(p.col) ? L.cap_w + L.rl_w : 0);
  const int my = py0 + L.title_h + L.header_h;
  const float* A = m.matrix(p.layer, p.head);
  cv.begin_group("panel-L" + std::to_string(p.layer) + "-H" + std::to_string(p.head) + "-" + m.mask);

  // Title, centred over the matrix (or the whole panel when it is wider than the matrix).
  std::string title = panel_title(p, title_variant);
  double title_x = mx + L.matrix / 2.0;
  double half = tw(title, kPanelTitleSize) / 2;
  title_x = std::clamp(title_x, px0 + half, px0 + L.col_w[p.col] - half);
  cv.text(title_x, py0, title, {kPanelTitleSize, colors::text, Anchor::Middle, VAlign::Top});
  if (opts_.panel_stats && stats_form < 2) {
    std::string line = stats_line(p, stats_form == 0);
    double half_line = tw(line, kStatsSize) / 2;
    double x = std::clamp(mx + L.matrix / 2.0, px0 + half_line, px0 + L.col_w[p.col] - half_line);
    cv.text(x, py0 + lh(kPanelTitleSize) + 3, line, {kStatsSize, colors::muted, Anchor::Middle, VAlign::Top});
  }

  // Displayed block (bi, bj) covers rows/keys begin + [b*ds, min(b*ds + ds, n)).
  auto block_lo = [&](int b) { return begin_ + static_cast<std::int64_t>(b) * ds; };
  auto block_hi = [&](int b) { return std::min(end_, begin_ + static_cast<std::int64_t>(b + 1) * ds); };

  // Masked region first: in displayed row bi, blocks whose every key is after every query are future.
  std::vector<Rect> hatch;
  for (int bi = 0; bi < nd; ++bi) {
    std::int64_t last_query = block_hi(bi) - 1;
    int first_masked = static_cast<int>((last_query + 1 - begin_ + ds - 1) / ds);
    if (first_masked < nd) hatch.push_back(Rect{mx + first_masked * c, my + bi * c, (nd - first_masked) * c, c});
  }
  cv.hatch(hatch);

  std::vector<Color> cols(static_cast<std::size_t>(nd) * nd);
  std::vector<bool> present(cols.size(), false);
  std::vector<double> shown(cols.size(), 0.0);
  for (int bi = 0; bi < nd; ++bi)
    for (int bj = 0; bj < nd; ++bj) {
      double sum = 0;
      int count = 0;
      for (std::int64_t i = block_lo(bi); i < block_hi(bi); ++i)
        for (std::int64_t j = block_lo(bj); j < block_hi(bj) && j <= i; ++j) {
          sum += A[i * T_ + j];
          ++count;
        }
      if (count == 0) continue;
      std::size_t k = static_cast<std::size_t>(bi) * nd + bj;
      shown[k] = sum / count;
      cols[k] = cmap_(shown[k]);
      present[k] = true;
    }
  cv.cells(mx, my, c, c, nd, nd, cols, present);
  cv.stroke_rect(mx - 1, my - 1, L.matrix + 2, L.matrix + 2, colors::frame, 1);
  PanelGeometry geo;
  geo.layer = p.layer;
  geo.head = p.head;
  geo.mask = m.mask;
  geo.matrix = Rect{mx, my, L.matrix, L.matrix};
  geo.cell = c;
  geo.block = ds;
  geo.token_labels = L.token_labels;
  geo.label_step = L.token_labels ? L.label_step : L.num_step;

  // Values inside large cells, dark or light to contrast with the cell colour.
  const bool values = opts_.cell_values && ds == 1 && c >= 30;
  const double value_size = std::clamp(c * 0.3, 9.0, 13.0);
  auto value_text = [&](double x, double y, double v, Color bg) {
    Color fg = oklab_lightness(bg) > 0.62 ? colors::text : colors::white;
    cv.text(x, y, fmt_cell(v), {value_size, fg, Anchor::Middle, VAlign::Middle});
  };
  if (values)
    for (int bi = 0; bi < nd; ++bi)
      for (int bj = 0; bj < nd; ++bj) {
        std::size_t k = static_cast<std::size_t>(bi) * nd + bj;
        if (present[k]) value_text(mx + (bj + 0.5) * c, my + (bi + 0.5) * c, shown[k], cols[k]);
      }

  // StableMask: the pseudo mass of each row, in its own framed column after a gap.
  if (m.stablemask) {
    const int sx = mx + L.matrix + L.sink_gap;
    std::vector<Color> scol(nd);
    std::vector<double> sval(nd);
    for (int bi = 0; bi < nd; ++bi) {
      double sum = 0;
      for (std::int64_t i = block_lo(bi); i < block_hi(bi); ++i) sum += std::clamp(1.0 - m.row_mass(p.layer, p.head, i), 0.0, 1.0);
      sval[bi] = sum / static_cast<double>(block_hi(bi) - block_lo(bi));
      scol[bi] = cmap_(sval[bi]);
    }
    cv.cells(sx, my, L.sink_w, c, 1, nd, scol, std::vector<bool>(nd, true));
    cv.stroke_rect(sx - 1, my - 1, L.sink_w + 2, L.matrix + 2, colors::frame, 1);
    geo.sink = Rect{sx, my, L.sink_w, L.matrix};
    cv.text(sx + L.sink_w / 2.0, my - 4, "sink", {kSmallSize, colors::muted, Anchor::Middle, VAlign::Bottom});
    if (values && L.sink_w >= 30)
      for (int bi = 0; bi < nd; ++bi) value_text(sx + L.sink_w / 2.0, my + (bi + 0.5) * c, sval[bi], scol[bi]);
  }

  // Axis labels: tokens (every row/column) or position numbers at a nice step with tick marks.
  auto centre_of = [&](std::int64_t pos) { return (static_cast<double>(pos - begin_) / ds + 0.5 * (ds == 1)) * c; };
  const TextStyle row_style{L.label_size, colors::text, Anchor::End, VAlign::Middle};
  const TextStyle key_style{L.label_size, colors::text, Anchor::End, VAlign::Middle, true};
  std::vector<std::int64_t> positions;
  if (L.token_labels) {
    for (std::int64_t p2 = begin_; p2 < end_; p2 += L.label_step) positions.push_back(p2);
  } else {
    for (std::int64_t p2 = (begin_ + L.num_step - 1) / L.num_step * L.num_step; p2 < end_; p2 += L.num_step) positions.push_back(p2);
  }
  auto label_of = [&](std::int64_t pos) { return L.token_labels ? token_label(pos) : std::to_string(pos); };
  // Tick marks where not every row/column has its own label, so a label points at its cell.
  const bool ticks = !L.token_labels || L.label_step > 1;
  const int label_gap = ticks ? 6 : 5;
  const TextStyle pos_row{kPosLabelSize, colors::muted, Anchor::End, VAlign::Middle};
  const TextStyle pos_key{kPosLabelSize, colors::muted, Anchor::End, VAlign::Middle, true};
  if (row_labels(p.col)) {
    for (std::int64_t pos : positions) {
      double y = my + centre_of(pos);
      if (ticks) cv.line(mx - 4, y, mx - 1, y, colors::frame, 1);
      cv.text(mx - label_gap, y, label_of(pos), row_style);
      if (L.token_labels) cv.text(mx - label_gap - L.label_w - 6, y, std::to_string(pos), pos_row);
    }
    TextStyle cap{kCaptionSize, colors::muted, Anchor::Middle, VAlign::Middle, true};
    cv.text(px0 + L.cap_w / 2.0, my + L.matrix / 2.0, L.token_labels ? "query" : "query position", cap);
  }
  if (key_labels(p.row)) {
    for (std::int64_t pos : positions) {
      double x = mx + centre_of(pos);
      if (ticks) cv.line(x, my + L.matrix + 1, x, my + L.matrix + 4, colors::frame, 1);
      cv.text(x, my + L.matrix + label_gap, label_of(pos), key_style);
      if (L.token_labels) cv.text(x, my + L.matrix + label_gap + L.label_w + 6, std::to_string(pos), pos_key);
    }
    cv.text(mx + L.matrix / 2.0, my + L.matrix + L.kl_h + L.cap_h / 2.0, L.token_labels ? "key" : "key position",
            {kCaptionSize, colors::muted, Anchor::Middle, VAlign::Middle});
  }
  if (opts_.geometry) opts_.geometry->push_back(geo);
  cv.end_group();
}

void HeatmapRenderer::draw_colorbar(Canvas& cv) const {
  const Layout& L = layout_;
  const int bx = L.grid_x + L.grid_w + 28, by = L.grid_y + L.title_h + L.header_h, bw = 16, bh = L.bar_h;
  cv.begin_group("colorbar");
  std::vector<Color> ramp(bh);
  for (int k = 0; k < bh; ++k) ramp[k] = cmap_(1.0 - (k + 0.5) / bh);  // top is 1
  cv.cells(bx, by, bw, 1, 1, bh, ramp, std::vector<bool>(bh, true));
  cv.stroke_rect(bx - 1, by - 1, bw + 2, bh + 2, colors::frame, 1);
  for (double t : {0.0, 0.25, 0.5, 0.75, 1.0}) {
    double y = by + (1.0 - t) * bh;
    cv.line(bx + bw + 1, y, bx + bw + 5, y, colors::frame, 1);
    cv.text(bx + bw + 8, y, fmt_tick(t), {kSmallSize, colors::text, Anchor::Start, VAlign::Middle});
  }
  double cap_x = bx + bw + 8 + tw("0.75", kSmallSize) + 10 + lh(kCaptionSize) / 2;
  cv.text(cap_x, by + bh / 2.0, "attention weight", {kCaptionSize, colors::muted, Anchor::Middle, VAlign::Middle, true});
  // Legend for the hatch.
  int ly = by + bh + 18;
  cv.hatch({Rect{bx, ly, bw, bw}});
  cv.stroke_rect(bx - 1, ly - 1, bw + 2, bw + 2, colors::frame, 1);
  cv.text(bx + bw + 6, ly + bw / 2.0, "masked (j > i)", {kSmallSize, colors::text, Anchor::Start, VAlign::Middle});
  cv.end_group();
}

Canvas HeatmapRenderer::draw() const {
  const Layout& L = layout_;
  Canvas cv(L.W, L.H, font_);
  if (opts_.geometry) opts_.geometry->clear();
  TextStyle title_style{kFigTitleSize, colors::text, Anchor::Start, VAlign::Top};
  title_style.bold = true;
  cv.text(kMargin, kMargin, spec_.title, title_style);
  if (!opts_.subtitle.empty())
    cv.text(kMargin, kMargin + lh(kFigTitleSize) + 4, opts_.subtitle, {kSubtitleSize, colors::muted, Anchor::Start, VAlign::Top});
  for (const PanelSpec& p : spec_.panels) draw_panel(cv, p, L.title_variant, L.stats_form);

  draw_colorbar(cv);
  double y = L.H - kMargin - (lh(kSmallSize) + 3) * static_cast<double>(L.footnotes.size());
  for (const std::string& f : L.footnotes) {
    cv.text(kMargin, y, f, {kSmallSize, colors::muted, Anchor::Start, VAlign::Top});
    y += lh(kSmallSize) + 3;
  }
  return cv;
}

std::vector<std::int64_t> pick(const std::vector<std::int64_t>& wanted, std::int64_t n, const char* what) {
  std::vector<std::int64_t> out = wanted;
  if (out.empty())
    for (std::int64_t k = 0; k < n; ++k) out.push_back(k);
  for (std::int64_t k : out)
    if (k < 0 || k >= n) throw_error("heatmap: got ", what, " ", k, ", expected 0..", n - 1);
  return out;
}

}  // namespace

Canvas heatmap_single(const AttentionMaps& maps, const std::vector<std::string>& tokens, std::int64_t layer,
                      std::int64_t head, const HeatmapOptions& opts) {
  maps.validate("heatmap_single");
  pick({layer}, maps.n_layer, "layer");
  pick({head}, maps.n_head, "head");
  FigureSpec spec;
  spec.panels.push_back(PanelSpec{&maps, layer, head, 0, 0});
  spec.gap_after_col = {0};
  spec.target_matrix = 720;
  spec.title = opts.title.empty() ? "Attention weights \u00b7 " + maps.mask : opts.title;
  return HeatmapRenderer(spec, tokens, opts).draw();
}

Canvas heatmap_grid(const AttentionMaps& maps, const std::vector<std::string>& tokens, const HeatmapOptions& opts) {
  maps.validate("heatmap_grid");
  std::vector<std::int64_t> layers = pick(opts.layers, maps.n_layer, "layer");
  std::vector<std::int64_t> heads = pick(opts.heads, maps.n_head, "head");
  FigureSpec spec;
  spec.rows = static_cast<int>(layers.size());
  spec.cols = static_cast<int>(heads.size());
  for (int r = 0; r < spec.rows; ++r)
    for (int c = 0; c < spec.cols; ++c) spec.panels.push_back(PanelSpec{&maps, layers[r], heads[c], r, c});
  spec.gap_after_col.assign(spec.cols, 22);
  spec.target_matrix = 320;  // per panel; heatmap_single is the large one
  spec.title = opts.title.empty() ? "Attention weights \u00b7 " + maps.mask + " \u00b7 " + std::to_string(layers.size()) +
                                        " layer" + (layers.size() > 1 ? "s" : "") + " \u00d7 " +
                                        std::to_string(heads.size()) + " head" + (heads.size() > 1 ? "s" : "")
                                  : opts.title;
  return HeatmapRenderer(spec, tokens, opts).draw();
}

Canvas heatmap_compare(const AttentionMaps& left, const AttentionMaps& right, const std::vector<std::string>& tokens,
                       const HeatmapOptions& opts) {
  left.validate("heatmap_compare");
  right.validate("heatmap_compare");
  if (left.T != right.T)
    throw_error("heatmap_compare: got T=", left.T, " and T=", right.T, ", expected the same tokens on both sides");
  std::vector<std::int64_t> layers = pick(opts.layers, std::min(left.n_layer, right.n_layer), "layer");
  std::vector<std::int64_t> heads = pick(opts.heads, std::min(left.n_head, right.n_head), "head");
  FigureSpec spec;
  const int pairs = static_cast<int>(layers.size() * heads.size());
  // One layer: its heads stack vertically, one pair per row. Several layers: rows are layers and each head
  // is a (left, right) pair of columns, so the figure reads like the layers x heads grid.
  const int pair_cols = layers.size() > 1 ? static_cast<int>(heads.size()) : 1;
  spec.cols = 2 * pair_cols;
  spec.rows = (pairs + pair_cols - 1) / pair_cols;
  int k = 0;
  for (std::int64_t l : layers)
    for (std::int64_t h : heads) {
      int r = k / pair_cols, pc = k % pair_cols;
      spec.panels.push_back(PanelSpec{&left, l, h, r, 2 * pc});
      spec.panels.push_back(PanelSpec{&right, l, h, r, 2 * pc + 1});
      ++k;
    }
  for (int c = 0; c < spec.cols; ++c) spec.gap_after_col.push_back(c % 2 == 0 ? 26 : 52);
  spec.target_matrix = pairs == 1 ? 520 : 360;
  spec.title = opts.title.empty() ? "Attention weights \u00b7 " + left.mask + " vs " + right.mask : opts.title;
  return HeatmapRenderer(spec, tokens, opts).draw();
}

Canvas heatmap_stack(const std::vector<const AttentionMaps*>& maps, const std::vector<std::string>& tokens,
                     std::int64_t layer, std::int64_t head, const HeatmapOptions& opts) {
  if (maps.empty()) throw_error("heatmap_stack: got no maps, expected one per row");
  FigureSpec spec;
  spec.cols = 1;
  spec.rows = static_cast<int>(maps.size());
  for (std::size_t r = 0; r < maps.size(); ++r) {
    const AttentionMaps& m = *maps[r];
    m.validate("heatmap_stack");
    if (m.T != maps[0]->T)
      throw_error("heatmap_stack: got T=", m.T, " in row ", r, " and T=", maps[0]->T, " in row 0, expected the same tokens");
    if (layer < 0 || layer >= m.n_layer || head < 0 || head >= m.n_head)
      throw_error("heatmap_stack: got layer ", layer, ", head ", head, " for ", m.mask, " with ", m.n_layer,
                  " layers and ", m.n_head, " heads, expected one that every row has");
    spec.panels.push_back(PanelSpec{&m, layer, head, static_cast<int>(r), 0});
  }
  spec.gap_after_col = {26};
  spec.target_matrix = 360;
  spec.title = opts.title.empty() ? "Attention weights, one row per strategy" : opts.title;
  return HeatmapRenderer(spec, tokens, opts).draw();
}

namespace {
std::string file_part(const std::string& mask) {
  std::string out;
  for (char ch : mask) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) out += ch;
    else if (ch >= 'A' && ch <= 'Z') out += static_cast<char>(ch - 'A' + 'a');
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "attn" : out;
}
std::string basename_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
}  // namespace

std::vector<std::string> save_attention_figure(const std::string& stem, const Canvas& figure,
                                               const std::vector<const AttentionMaps*>& maps,
                                               const std::vector<std::string>& tokens, const HeatmapOptions& opts) {
  if (maps.empty()) throw_error("save_attention_figure: got no attention maps, expected at least one");
  std::vector<std::string> written;
  figure.save(stem);
  written.push_back(stem + ".png");
  written.push_back(stem + ".svg");
  nlohmann::json arrays = nlohmann::json::array();
  std::vector<std::string> used;
  for (const AttentionMaps* m : maps) {
    if (!m) throw_error("save_attention_figure: got a null AttentionMaps pointer");
    m->validate("save_attention_figure");
    std::string part = file_part(m->mask);
    while (std::find(used.begin(), used.end(), part) != used.end()) part += "-2";
    used.push_back(part);
    std::string path = maps.size() == 1 ? stem + ".npy" : stem + "." + part + ".npy";
    write_npy(path, m->values.data(), {m->n_layer, m->n_head, m->T, m->T});
    written.push_back(path);
    arrays.push_back({{"file", basename_of(path)},
                      {"mask", m->mask},
                      {"stablemask", m->stablemask},
                      {"dtype", "float32"},
                      {"shape", {m->n_layer, m->n_head, m->T, m->T}},
                      {"axes", {"layer", "head", "query", "key"}}});
  }
  nlohmann::json labels = nlohmann::json::array();
  for (const std::string& t : tokens) labels.push_back(escape_token(t));
  std::int64_t T = maps.front()->T;
  nlohmann::json doc = {
      {"format", "gradlab attention figure, version 1"},
      {"about", "attention weights Attn[layer, head, query i, key j]; keys j > i are masked (future); "
                "under StableMask rows sum to less than 1 and 1 - sum_j Attn_ij is the pseudo mass"},
      {"tokens", tokens},
      {"token_labels", labels},
      {"T", T},
      {"range", {opts.range_begin, opts.range_end < 0 ? T : opts.range_end}},
      {"layers_shown", opts.layers},
      {"heads_shown", opts.heads},
      {"colormap", opts.colormap},
      {"scale", {0.0, 1.0}},
      {"image", basename_of(stem + ".png")},
      {"svg", basename_of(stem + ".svg")},
      {"arrays", arrays},
  };
  // Tokens that are not valid UTF-8 are stored with U+FFFD; their labels keep the \xNN escapes.
  write_file(stem + ".json", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  written.push_back(stem + ".json");
  return written;
}

void parse_token_range(const std::string& spec, std::int64_t T, std::int64_t* begin, std::int64_t* end) {
  auto colon = spec.find(':');
  if (colon == std::string::npos || spec.find(':', colon + 1) != std::string::npos)
    throw_error("token range: got \"", spec, "\", expected a:b");
  auto parse_side = [&](const std::string& s, std::int64_t fallback) -> std::int64_t {
    if (s.empty()) return fallback;
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      throw_error("token range: got \"", spec, "\", expected integers a:b");
    }
    if (used != s.size()) throw_error("token range: got \"", spec, "\", expected integers a:b");
    return v < 0 ? T + v : v;
  };
  std::int64_t a = parse_side(spec.substr(0, colon), 0), b = parse_side(spec.substr(colon + 1), T);
  if (a < 0 || b > T || a >= b)
    throw_error("token range: got \"", spec, "\" for ", T, " tokens, expected 0 <= a < b <= ", T);
  *begin = a;
  *end = b;
}

}  // namespace gradlab::viz
