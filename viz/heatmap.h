#pragma once
// Attention heatmaps: rows are queries i, columns are keys j, one fixed [0, 1] colour scale for every panel
// (StableMask rows sum to less than 1; autoscaling would hide exactly that), future cells (j > i) hatched in
// neutral grey, and for StableMask an extra, separated "sink" column per panel with the pseudo mass
// 1 - sum_j Attn_ij of each row.
//
// Three layouts, all returning a Canvas (PNG + SVG with one layout):
//   heatmap_single   one (layer, head), large;
//   heatmap_grid     layers x heads;
//   heatmap_compare  two attention sets (e.g. causal and StableMask) side by side for the same (layer, head)
//                    list and tokens, one shared colour bar.
// Cell size shrinks as T grows so the image stays within max_width x max_height. Axes carry the tokens
// themselves (escaped: · space, ↵ newline, → tab; U+ codes for characters the font lacks) with the position in
// grey beside each; when cells are smaller than a line of text every 2nd (4th, ...) token is labelled, never a
// smaller font. Very long inputs average blocks of cells and label positions.
#include <cstdint>
#include <string>
#include <vector>

#include "viz/attention.h"
#include "viz/canvas.h"

namespace gradlab::viz {

// Where a panel landed (for tests, and for callers that annotate a figure afterwards).
struct PanelGeometry {
  std::int64_t layer = 0, head = 0;
  std::string mask;
  Rect matrix;        // the cells, without the frame
  Rect sink;          // the pseudo-mass column (w == 0 when the panel has none)
  int cell = 0;       // pixels per displayed cell
  int block = 1;      // tokens per displayed cell along each axis (> 1 only for very long inputs)
  bool token_labels = false;  // tokens as labels (else position numbers)
  std::int64_t label_step = 1;  // every label_step-th token (or position) is labelled
};

struct HeatmapOptions {
  std::vector<std::int64_t> layers;  // which layers to draw; empty = all
  std::vector<std::int64_t> heads;   // which heads; empty = all
  std::int64_t range_begin = 0;      // token range [range_begin, range_end) for both queries and keys
  std::int64_t range_end = -1;       // -1 = T
  std::string colormap = "viridis";  // or "cividis"
  std::string title;                 // figure title; empty = chosen from the layout and masks
  std::string subtitle;              // second line in grey (e.g. the input text); optional
  bool cell_values = true;           // print values inside cells when they are large enough
  // A line under each panel title with the first-token share (raw and normalised by the row's real mass
  // R_i) and the mean R_i, over rows i >= stats_min_row of the whole input (see attention_stats).
  bool panel_stats = true;
  std::int64_t stats_min_row = 8;
  int max_width = 2400;              // bounds in pixels (at least 400)
  int max_height = 2400;
  FontPtr font;                      // null = default_font()
  std::vector<PanelGeometry>* geometry = nullptr;  // when set, receives one entry per panel
};

Canvas heatmap_single(const AttentionMaps& maps, const std::vector<std::string>& tokens, std::int64_t layer,
                      std::int64_t head, const HeatmapOptions& opts = {});
Canvas heatmap_grid(const AttentionMaps& maps, const std::vector<std::string>& tokens, const HeatmapOptions& opts = {});
// Rows of the figure are the selected (layer, head) pairs; columns are `left` then `right`.
Canvas heatmap_compare(const AttentionMaps& left, const AttentionMaps& right, const std::vector<std::string>& tokens,
                       const HeatmapOptions& opts = {});
// One row per model: the same (layer, head) of each of `maps` (several strategies on the same text), stacked
// top to bottom in the given order. Maps that may hold less than 1 per row get the diverted-mass column.
Canvas heatmap_stack(const std::vector<const AttentionMaps*>& maps, const std::vector<std::string>& tokens,
                     std::int64_t layer, std::int64_t head, const HeatmapOptions& opts = {});

// Writes stem.png and stem.svg (the figure), the attention values as .npy (float32, (n_layer, n_head, T, T),
// all layers/heads/tokens, not only the drawn ones) and stem.json (tokens, their escaped labels, what the
// figure shows, and which .npy holds which mask). With one AttentionMaps the array is stem.npy; with several,
// stem.<mask>.npy each. Returns the paths written.
std::vector<std::string> save_attention_figure(const std::string& stem, const Canvas& figure,
                                               const std::vector<const AttentionMaps*>& maps,
                                               const std::vector<std::string>& tokens,
                                               const HeatmapOptions& opts = {});

// Parses "a:b" (either side may be empty: ":b", "a:", ":") into [begin, end) for a sequence of length T;
// negative values count from the end. Throws gradlab::Error on bad syntax or an empty/out-of-bounds range.
void parse_token_range(const std::string& spec, std::int64_t T, std::int64_t* begin, std::int64_t* end);

}  // namespace gradlab::viz
