#include "lessons/attention_viewer.h"

#include "tensor/error.h"
#include "viz/heatmap.h"
#include "viz/html_viewer.h"

namespace gradlab::lesson {

void save_attention_comparison(Lesson& L, const std::vector<viz::AttentionMaps>& maps,
                               const std::vector<std::string>& tokens, const std::string& text, std::int64_t min_row,
                               const std::string& title) {
  if (maps.size() != 2)
    throw_error("save_attention_comparison: got ", maps.size(), " attention maps, expected two (one per model)");
  const std::string which = maps[0].mask + " vs " + maps[1].mask + " (seed " + std::to_string(L.seed()) + ")";
  viz::HeatmapOptions g;
  g.cell_values = false;
  g.max_width = g.max_height = 2400;
  g.title = "all heads, " + which;
  const viz::Canvas both = viz::heatmap_compare(maps[0], maps[1], tokens, g);
  L.wrote(viz::save_attention_figure(L.stem("attention_grid_compare"), both, {&maps[0], &maps[1]}, tokens, g));
  viz::HtmlViewerOptions vo;
  vo.title = title + ": " + which;
  vo.text = text;
  vo.stats_min_row = min_row;
  const std::string page = L.stem("attention_viewer") + ".html";
  viz::write_html_viewer(page, {{&maps[0], {}}, {&maps[1], {}}}, tokens, vo);
  L.wrote(page);
}

}  // namespace gradlab::lesson
