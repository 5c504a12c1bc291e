#pragma once
// What a lesson writes for two models' attention on one sentence, beyond its own per-layer figures: every head
// of both models in one image, and the offline interactive viewer of both (viz/html_viewer.h).
#include <cstdint>
#include <string>
#include <vector>

#include "lessons/lesson.h"
#include "viz/attention.h"

namespace gradlab::lesson {

// From maps already recorded (two models, same layers, heads and tokens; each labelled by its strategy's label,
// strategy_info(name).label) writes, and registers with L.wrote:
//   attention_grid_compare.{png,svg,json} + one .npy per model: each head a side-by-side pair, one colour bar;
//   attention_viewer.html: the self-contained viewer; its metrics view averages rows i >= min_row.
// `title` heads both ("lesson 09"); the models' labels and the seed are appended. Throws gradlab::Error (from
// viz) unless there are exactly two maps of one shape and one token per position.
void save_attention_comparison(Lesson& L, const std::vector<viz::AttentionMaps>& maps,
                               const std::vector<std::string>& tokens, const std::string& text, std::int64_t min_row,
                               const std::string& title);

}  // namespace gradlab::lesson
