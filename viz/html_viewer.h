#pragma once
// The offline attention viewer: one self-contained HTML file (no network: no CDN, fonts or scripts fetched)
// with the attention maps embedded as 16-bit quantized base64, and hand-written JavaScript for four views:
//   head     the tokens as query and key columns; hovering (or tapping) a query draws its attention as lines
//            whose opacity is the weight; a model whose strategy has a sink key (StableMask) sends its pseudo
//            mass to its own "sink" target, never a token; models are labelled by AttentionMaps::mask, which
//            callers fill with the strategy's label (strategy_info(name).label);
//   model    the layers x heads grid of small heatmaps; a click enlarges one with labelled axes, hovering a
//            cell reads query, key and weight;
//   compare  two models (or masks) side by side on the same [0, 1] scale, with A - B on a diverging map in
//            [-1, 1] with its own colour bar;
//   metrics  per-head bar charts of the first-token share (raw and normalised by the real mass), the real mass
//            and any further per-head metrics the caller passes.
// Buttons export the current view as SVG and PNG; arrow keys move the layer (up/down) and head (left/right).
// Opening the file with "#selftest" runs a self-test in the page that writes PASS or FAIL into the DOM.
#include <cstdint>
#include <string>
#include <vector>

#include "viz/attention.h"

namespace gradlab::viz {

// A per-head quantity for the metrics view: values[layer * n_head + head].
struct HeadMetric {
  std::string name;
  std::vector<double> values;
};

struct ViewerModel {
  const AttentionMaps* maps = nullptr;
  std::vector<HeadMetric> extra_metrics;  // beside the first-token statistics, which the viewer always shows
};

struct HtmlViewerOptions {
  std::string title;                 // empty: "gradlab attention viewer"
  std::string text;                  // the input text, shown under the title
  std::string colormap = "viridis";  // same map as the PNG figures
  std::int64_t stats_min_row = 8;    // rows averaged by the first-token statistics (see attention_stats)
  // Leaves a marker line in the page where a test can splice the .npy files in (see viz/README.md).
  bool selftest_marker = true;
};

// Quantization used for the embedded maps: q = round(v * 65535), so a decoded value is within
// kViewerQuantStep / 2 of the float32 value.
inline constexpr double kViewerQuantStep = 1.0 / 65535.0;
// The line in the page before which a test inserts <script type="text/plain" class="gradlab-npy"
// data-model="k">BASE64 of model k's .npy</script> elements; the self-test then checks the decoded data
// against them, value by value.
inline constexpr const char* kViewerNpyMarker = "<!-- gradlab: .npy references go here -->";

// The page. Throws gradlab::Error (naming the problem) for no models, more than two, null maps, maps of
// different T or shape, a token count that is not T, or a metric with the wrong number of values.
std::string html_viewer(const std::vector<ViewerModel>& models, const std::vector<std::string>& tokens,
                        const HtmlViewerOptions& opts = {});
// Writes html_viewer(...) to path; throws gradlab::Error naming the path when it cannot be written.
void write_html_viewer(const std::string& path, const std::vector<ViewerModel>& models,
                       const std::vector<std::string>& tokens, const HtmlViewerOptions& opts = {});

}  // namespace gradlab::viz
