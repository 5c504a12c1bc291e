#include "viz/html_viewer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tensor/error.h"
#include "viz/canvas.h"
#include "viz/colormap.h"
#include "viz/text.h"
#include "viz/viewer_assets.h"

namespace gradlab::viz {

namespace {

std::uint16_t quantize(double v) {
  return static_cast<std::uint16_t>(std::lround(std::clamp(v, 0.0, 1.0) * 65535.0));
}

// Little-endian uint16 bytes of q, as base64.
std::string pack16(const std::vector<std::uint16_t>& q) {
  std::vector<std::uint8_t> bytes;
  bytes.reserve(q.size() * 2);
  for (std::uint16_t v : q) {
    bytes.push_back(static_cast<std::uint8_t>(v & 0xFF));
    bytes.push_back(static_cast<std::uint8_t>(v >> 8));
  }
  return base64(bytes);
}

nlohmann::json model_json(const ViewerModel& vm, std::int64_t min_row) {
  const AttentionMaps& m = *vm.maps;
  // Only j <= i is stored: row i of each (layer, head) holds i + 1 values, the future is 0 by definition.
  std::vector<std::uint16_t> lower, sink;
  double sum = 0, sink_sum = 0;
  for (std::int64_t l = 0; l < m.n_layer; ++l)
    for (std::int64_t h = 0; h < m.n_head; ++h)
      for (std::int64_t i = 0; i < m.T; ++i) {
        for (std::int64_t j = 0; j <= i; ++j) {
          lower.push_back(quantize(m.at(l, h, i, j)));
          sum += m.at(l, h, i, j);
        }
        const double pseudo = m.stablemask ? std::clamp(1.0 - m.row_mass(l, h, i), 0.0, 1.0) : 0.0;
        sink.push_back(quantize(pseudo));
        sink_sum += pseudo;
      }
  const AttentionStats st = attention_stats(m, min_row);
  std::vector<HeadMetric> metrics(3);
  metrics[0].name = "first-token share (raw)";
  metrics[1].name = "first-token share \u00f7 real mass";
  metrics[2].name = "mean real mass R";
  for (const HeadStats& hs : st.heads) {
    metrics[0].values.push_back(hs.first_share_raw);
    metrics[1].values.push_back(hs.first_share_norm);
    metrics[2].values.push_back(hs.mean_real_mass);
  }
  for (const HeadMetric& e : vm.extra_metrics) {
    if (static_cast<std::int64_t>(e.values.size()) != m.n_layer * m.n_head)
      throw_error("html_viewer: metric \"", e.name, "\" of ", m.mask, " has ", e.values.size(), " values, expected one per head (",
                  m.n_layer * m.n_head, ")");
    metrics.push_back(e);
  }
  nlohmann::json mj = nlohmann::json::array();
  for (const HeadMetric& e : metrics) {
    nlohmann::json vals = nlohmann::json::array();
    for (double v : e.values) vals.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
    mj.push_back({{"name", e.name}, {"values", vals}});
  }
  return {{"name", m.mask},
          {"has_sink", m.stablemask},
          {"n_layer", m.n_layer},
          {"n_head", m.n_head},
          {"attn", pack16(lower)},
          {"sink", pack16(sink)},
          {"sum", sum},
          {"sink_sum", sink_sum},
          {"stats_rows", {st.first_row, m.T - 1}},
          {"metrics", mj}};
}

std::string colormap_hex(const Colormap& c) {
  std::string out;
  for (const Color& col : c.table()) out += color_to_hex(col).substr(1);
  return out;
}

// Fills {{name}} slots of the template in one pass, so inserted text is never scanned again.
std::string fill(const std::string& tpl, const std::vector<std::pair<std::string, std::string>>& slots) {
  std::string out;
  std::size_t at = 0;
  while (true) {
    std::size_t open = tpl.find("{{", at);
    if (open == std::string::npos) break;
    std::size_t close = tpl.find("}}", open);
    if (close == std::string::npos) break;
    const std::string key = tpl.substr(open + 2, close - open - 2);
    auto it = std::find_if(slots.begin(), slots.end(), [&](const auto& s) { return s.first == key; });
    if (it == slots.end()) throw_error("html_viewer: the page template has an unknown slot {{", key, "}}");
    out.append(tpl, at, open - at);
    out += it->second;
    at = close + 2;
  }
  out.append(tpl, at, std::string::npos);
  return out;
}

}  // namespace

std::string html_viewer(const std::vector<ViewerModel>& models, const std::vector<std::string>& tokens,
                        const HtmlViewerOptions& opts) {
  if (models.empty() || models.size() > 2)
    throw_error("html_viewer: got ", models.size(), " models, expected 1 or 2");
  for (const ViewerModel& vm : models) {
    if (!vm.maps) throw_error("html_viewer: got a null AttentionMaps pointer");
    vm.maps->validate("html_viewer");
  }
  const AttentionMaps& a = *models[0].maps;
  if (models.size() == 2) {
    const AttentionMaps& b = *models[1].maps;
    if (b.T != a.T || b.n_layer != a.n_layer || b.n_head != a.n_head)
      throw_error("html_viewer: got shapes (", a.n_layer, ", ", a.n_head, ", ", a.T, ", ", a.T, ") and (", b.n_layer, ", ",
                  b.n_head, ", ", b.T, ", ", b.T, "), expected the same layers, heads and tokens");
  }
  if (static_cast<std::int64_t>(tokens.size()) != a.T)
    throw_error("html_viewer: got ", tokens.size(), " tokens for T=", a.T, ", expected one per position");
  nlohmann::json labels = nlohmann::json::array();
  for (const std::string& t : tokens) labels.push_back(escape_token(t));
  nlohmann::json ms = nlohmann::json::array();
  for (const ViewerModel& vm : models) ms.push_back(model_json(vm, opts.stats_min_row));
  const std::string title = opts.title.empty() ? "gradlab attention viewer" : opts.title;
  nlohmann::json data = {{"format", "gradlab attention viewer, version 1"},
                         {"title", title},
                         {"text", opts.text},
                         {"tokens", labels},
                         {"T", a.T},
                         {"quant_step", kViewerQuantStep},
                         {"colormap", Colormap::by_name(opts.colormap).name()},
                         {"lut", colormap_hex(Colormap::by_name(opts.colormap))},
                         {"models", ms}};
  std::string json = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Inside <script>: no "</script>" or "<!--" can appear once every '<' is an escape.
  std::string safe;
  safe.reserve(json.size());
  for (char ch : json) safe += ch == '<' ? std::string("\\u003c") : std::string(1, ch);
  return fill(viewer_assets::kHtml, {{"title", xml_escape(title)},
                                     {"css", viewer_assets::kCss},
                                     {"data", safe},
                                     {"npy_marker", opts.selftest_marker ? kViewerNpyMarker : ""},
                                     {"js", viewer_assets::kJs}});
}

void write_html_viewer(const std::string& path, const std::vector<ViewerModel>& models,
                       const std::vector<std::string>& tokens, const HtmlViewerOptions& opts) {
  write_file(path, html_viewer(models, tokens, opts));
}

}  // namespace gradlab::viz
