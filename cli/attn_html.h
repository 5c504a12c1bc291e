#pragma once
// `gradlab attn --html FILE.html`: the offline viewer (viz/html_viewer.h) for the maps the command drew, with
// every per-head number of the command's JSON statistics as a metrics chart.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "viz/attention.h"

namespace gradlab::cli {

// stats holds one object per map, as the command prints them: {"heads": [{"layer", "head", name: number, ...}]}.
// Numbers the viewer computes itself (first-token shares, real mass) are not repeated.
void write_attn_html(const std::string& path, const std::vector<viz::AttentionMaps>& maps,
                     const std::vector<std::string>& tokens, const std::string& text, const nlohmann::json& stats,
                     const std::string& colormap);

}  // namespace gradlab::cli
