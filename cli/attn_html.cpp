#include "cli/attn_html.h"

#include <algorithm>

#include "viz/html_viewer.h"

namespace gradlab::cli {

void write_attn_html(const std::string& path, const std::vector<viz::AttentionMaps>& maps,
                     const std::vector<std::string>& tokens, const std::string& text, const nlohmann::json& stats,
                     const std::string& colormap) {
  static const char* const kBuiltIn[] = {"layer", "head", "first_share_raw", "first_share_norm", "mean_real_mass"};
  std::vector<viz::ViewerModel> models;
  for (std::size_t k = 0; k < maps.size(); ++k) {
    viz::ViewerModel vm;
    vm.maps = &maps[k];
    const nlohmann::json* heads = stats.is_array() && k < stats.size() && stats[k].contains("heads") ? &stats[k]["heads"] : nullptr;
    if (heads && heads->is_array() && static_cast<std::int64_t>(heads->size()) == maps[k].n_layer * maps[k].n_head) {
      // One metric per numeric field that every head has, in the order the first head lists them.
      for (const auto& [name, first] : heads->front().items()) {
        if (!first.is_number() || std::find(std::begin(kBuiltIn), std::end(kBuiltIn), name) != std::end(kBuiltIn)) continue;
        viz::HeadMetric metric{name, {}};
        for (const auto& h : *heads)
          if (h.contains(name) && h[name].is_number()) metric.values.push_back(h[name].get<double>());
        if (metric.values.size() == heads->size()) vm.extra_metrics.push_back(metric);
      }
    }
    models.push_back(vm);
  }
  viz::HtmlViewerOptions o;
  o.title = "gradlab attention \u00b7 " + maps.front().mask + (maps.size() == 2 ? " vs " + maps[1].mask : "");
  o.text = text;
  o.colormap = colormap;
  viz::write_html_viewer(path, models, tokens, o);
}

}  // namespace gradlab::cli
