// gradlab attn: a checkpoint's attention maps on a text, drawn by viz/ (heatmaps with the raw data beside them),
// and the first-token statistics of docs/stablemask.md#statistics printed per layer and head.
//
//   one model, its own mask (or --mask NAME, same weights)  -> layers x heads grid (or one large panel)
//   one model, --mask both (same weights, the mask flipped)  -> the compared pair (causal, StableMask) side by side
//   two models (--model A --model B)                         -> A and B side by side
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/args.h"
#include "cli/attn_html.h"
#include "cli/eval.h"
#include "cli/outputs.h"
#include "data/tasks.h"
#include "nn/sink_metrics.h"
#include "train/diagnose.h"
#include "tensor/cpu.h"
#include "tensor/error.h"
#include "viz/attention.h"
#include "viz/heatmap.h"

namespace gradlab::cli {

namespace {

// Example texts for --example, the first one the model's vocabulary can encode is used (else the vocabulary
// itself, in id order).
const char* const kExamples[] = {
    "once there was a sailor named kobe. kobe had a friend named rilu. then kobe and rilu dance.",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "the cat sat on the mat. the dog sat on the log.",
};

// "all" or "" -> every index; "0,2,3" -> those, each checked against n.
std::vector<std::int64_t> parse_index_list(const std::string& spec, std::int64_t n, const char* what) {
  std::vector<std::int64_t> out;
  if (spec.empty() || spec == "all") return out;  // empty = all (viz's convention)
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size())
      throw_error("--", what, ": got \"", spec, "\", expected comma-separated indices like 0,2 or 'all'");
    if (v < 0 || v >= n) throw_error("--", what, ": index ", v, " out of range, the model has ", n, " ", what, " (0..", n - 1, ")");
    if (std::find(out.begin(), out.end(), v) != out.end()) throw_error("--", what, ": index ", v, " given twice");
    out.push_back(v);
  }
  return out;
}

struct Loaded {
  std::string path;
  std::unique_ptr<GPT> model;
  ModelInfo info;
};

// The same weights under the other mask. A strategy's own parameters (learned-sink's sink_logit) are dropped
// when the other mask has none; a mask whose parameters the model never trained is refused.
std::unique_ptr<GPT> with_mask(const GPT& model, const std::string& mask, const std::string& path) {
  GPTConfig c = model.config();
  c.mask = mask;
  std::set<std::string> wanted;
  for (const auto& [name, shape] : GPT::parameter_shapes(c)) wanted.insert(name);
  std::vector<std::pair<std::string, Tensor>> kept;
  for (auto& [name, t] : model.state_dict())
    if (wanted.count(name)) kept.emplace_back(name, t), wanted.erase(name);
  if (!wanted.empty())
    throw_error("--mask ", mask, ": ", path, " was trained with --mask ", model.config().mask, " and has no '",
                *wanted.begin(), "', which ", mask, " learns in training; train a model with --mask ", mask);
  auto m = std::make_unique<GPT>(c, 0);
  m->load_state_dict(kept, path);
  return m;
}

// The maps of one model on the text, for the figure, and its sink metrics (nn/sink_metrics.h).
struct Recorded {
  viz::AttentionMaps maps;
  SinkReport sinks;
  MassiveActivations massive;
};

Recorded record(GPT& model, const std::vector<std::int32_t>& ids, const std::string& label, const SinkOptions& so) {
  NoGrad ng;
  model.eval();
  AttentionRecorder rec;
  ForwardOptions fo;
  fo.recorder = &rec;
  // Non-finite attention or logits are a failure (exit 1), named where they start (the softmax refuses a row
  // whose scores overflowed).
  bool finite = true;
  try {
    const Tensor logits = model.forward(ids, 1, static_cast<std::int64_t>(ids.size()), fo).data();
    finite = first_nonfinite_index(logits) < 0 && first_nonfinite_index(rec.stacked(0)) < 0;
  } catch (const Error&) {
    finite = false;
  }
  if (!finite)
    throw NonFiniteError(label + ": non-finite values first appear in " + locate_nonfinite(model, ids));
  const Tensor att = rec.stacked(0);  // (n_layer, n_head, T, T)
  Recorded r;
  r.maps = viz::AttentionMaps::from_tensor(att, label, strategy_info(model.config().mask).has_sink);
  if (ids.size() >= 2) r.sinks = sink_metrics(att, ids, so);
  r.massive = massive_activations(model, {ids});
  return r;
}

std::string mask_label(const std::string& mask) { return strategy_info(mask).label; }

// The model itself when it already uses mask, else the same weights under mask (kept alive in keep).
GPT& under_mask(GPT& model, const std::string& mask, const std::string& path, std::unique_ptr<GPT>& keep) {
  if (model.config().mask == mask) return model;
  keep = with_mask(model, mask, path);
  return *keep;
}

nlohmann::json stats_json(const viz::AttentionStats& s) {
  nlohmann::json heads = nlohmann::json::array();
  for (const auto& h : s.heads)
    heads.push_back({{"layer", h.layer},
                     {"head", h.head},
                     {"first_share_raw", h.first_share_raw},
                     {"first_share_norm", h.first_share_norm},
                     {"mean_real_mass", h.mean_real_mass}});
  return {{"mask", s.mask}, {"first_row", s.first_row}, {"rows", s.rows}, {"heads", heads}};
}

}  // namespace

int run_attn(const std::vector<std::string>& args_in, std::ostream& out, std::ostream& err) {
  // The parser refuses a flag given twice; a second --model is the comparison model, renamed before parsing.
  std::vector<std::string> args;
  int models_seen = 0;
  for (std::size_t i = 0; i < args_in.size(); ++i) {
    const std::string& w = args_in[i];
    const bool is_model = w == "--model" || w.rfind("--model=", 0) == 0;
    if (is_model && ++models_seen == 2) {
      args.push_back(w == "--model" ? "--model2" : "--model2=" + w.substr(8));
      continue;
    }
    args.push_back(w);
  }

  ArgParser a("gradlab attn", "Draw a checkpoint's attention maps (causal and StableMask side by side).");
  std::vector<Loaded> models;
  std::vector<std::int32_t> ids;
  std::vector<std::string> tokens;
  viz::HeatmapOptions ho;
  std::string stem, text, html_path;
  std::string mask_choice;
  SinkOptions sink_options;
  try {
    a.add_string("model", "", "checkpoint directory or model.safetensors; give --model twice to compare two models",
                 "DIR")
        .required();
    a.add_string("model2", "", "the second model (same as a second --model)", "DIR").no_default();
    std::vector<std::string> mask_choices = {"own"};
    for (const std::string& n : strategy_names()) mask_choices.push_back(n);
    mask_choices.push_back("both");
    a.add_choice("mask", mask_choices, "own",
                 "the model's own mask, another one on the same weights (" + strategy_help() +
                     "), or both: causal and StableMask side by side");
    a.add_string("text", "", "the text to read (characters from the model's vocabulary)", "TEXT").no_default();
    a.add_flag("example", "use a built-in example text (or the task's first evaluation sequence)");
    a.add_string("out", "", "the figure: FILE.png, with FILE.svg, FILE[.mask].npy and FILE.json beside it", "FILE.png")
        .required();
    a.add_string("html", "", "also write the offline interactive viewer (one self-contained file)", "FILE.html").no_default();
    a.add_string("layers", "all", "layers to draw: 'all' or indices like 0,2");
    a.add_string("heads", "all", "heads to draw: 'all' or indices like 0,1");
    a.add_string("range", ":", "token range a:b for queries and keys (negative counts from the end)", "a:b");
    a.add_choice("colormap", {"viridis", "cividis"}, "viridis", "colour map (both perceptually uniform)");
    a.add_int("threads", 0, 0, 1024, "threads (0: all the machine offers)");
    a.add_double("eps", 0.3, 0.0, 1.0, "sink threshold: a head is a sink head when its normalised key-0 share "
                 "(rows i >= min_row) exceeds it (Gu et al. 2024)");
    a.add_int("min_row", 8, 1, 1 << 20, "the late rows of the sink metrics: i >= min_row");
    a.add_string("bos", "", "the BOS character, for the attention-on-BOS metrics (default: as the model's training "
                 "data declared)", "CHAR").no_default();
    a.epilog(
        "Every panel uses one fixed [0, 1] colour scale; under StableMask rows sum to less than 1 and the extra "
        "column on the right of each panel is the pseudo mass 1 - sum_j Attn_ij. The .npy files hold all layers "
        "and heads as float32 (n_layer, n_head, T, T); the .json holds the tokens.\n"
        "Printed per layer and head: the share of attention on the first token, raw and normalised by the row's "
        "real mass, and the mean real mass (rows i >= 8 when the text is long enough). The last stdout line is "
        "one JSON object with the files written, these statistics and \"sinks\": per mask the sink metrics of "
        "nn/sink_metrics.h (per layer and head: key-0 share over rows i >= 1 and rows i >= min_row, raw and "
        "normalised by the real mass; the share on every BOS; the sink ratio at eps; the strongest head; the "
        "mean real and pseudo mass) and \"massive_activations\": per layer the largest |h| of the residual stream "
        "after the block, the median |h| and their ratio (Sun et al. 2024).");
    a.parse(args);
    if (a.help_requested()) {
      out << a.help();
      return 0;
    }
    if (a.get_int64("threads") > 0) set_num_threads(static_cast<int>(a.get_int64("threads")));
    mask_choice = a.get_choice("mask");
    if (a.given("model2") && mask_choice != "own")
      throw_error("--mask ", mask_choice, " with two models: each model is drawn under its own mask; drop --mask");
    if (a.given("text") == a.get_flag("example")) throw_error("give exactly one of --text TEXT and --example");

    const std::string out_png = a.get_string("out");
    if (out_png.size() < 5 || out_png.substr(out_png.size() - 4) != ".png")
      throw_error("--out ", out_png, ": expected a file name ending in .png");
    stem = out_png.substr(0, out_png.size() - 4);
    if (a.given("html")) {
      html_path = a.get_string("html");
      if (html_path.size() < 6 || html_path.substr(html_path.size() - 5) != ".html")
        throw_error("--html ", html_path, ": expected a file name ending in .html");
      const std::filesystem::path html_parent = std::filesystem::path(html_path).parent_path();
      if (!html_parent.empty() && !std::filesystem::is_directory(html_parent))
        throw_error("--html ", html_path, ": the directory ", html_parent.string(), " does not exist");
    }
    const std::filesystem::path parent = std::filesystem::path(out_png).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent))
      throw_error("--out ", out_png, ": the directory ", parent.string(), " does not exist");

    for (const std::string& flag : {std::string("model"), std::string("model2")}) {
      if (!a.given(flag)) continue;
      Loaded l;
      l.path = a.get_string(flag);
      l.model = load_cli_model(l.path, &l.info);
      models.push_back(std::move(l));
    }
    std::vector<std::string> inputs;
    for (const Loaded& l : models) inputs.push_back(l.path);
    check_output_stem("out", stem, inputs);
    const Loaded& first = models[0];
    const GPTConfig& cfg = first.model->config();

    // the text -> ids and token labels
    std::unique_ptr<PositionTask> task;
    if (!first.info.tokenizer) task = make_task(first.info.task, cfg.block_size);
    if (a.given("text")) {
      text = a.get_string("text");
      if (text.empty()) throw_error("--text: the text is empty; give at least one character");
      if (task)
        throw_error("--text: the model was trained on task ", first.info.task,
                    " and has no text tokenizer; use --example (the task's first evaluation sequence)");
      try {
        ids = first.info.tokenizer->encode(text);
      } catch (const Error& e) {
        throw_error("--text: ", e.what());
      }
    } else if (task) {
      Batch b = task->eval_windows(Split::Val, cfg.block_size, 0, 1);
      ids = b.inputs;
    } else {
      for (const char* ex : kExamples) {
        try {
          ids = first.info.tokenizer->encode(ex);
          text = ex;
          break;
        } catch (const Error&) {
        }
      }
      if (ids.empty()) {
        // no example fits the vocabulary: read the vocabulary itself, in id order
        for (std::int32_t id = 0; id < std::min<std::int64_t>(cfg.vocab_size, cfg.block_size); ++id) ids.push_back(id);
        text = first.info.tokenizer->decode(ids);
      }
      if (static_cast<std::int64_t>(ids.size()) > cfg.block_size) {
        ids.resize(static_cast<std::size_t>(cfg.block_size));  // the example, cut to the training length
        text = first.info.tokenizer->decode(ids);
      }
    }
    const std::int64_t T = static_cast<std::int64_t>(ids.size());
    for (const Loaded& l : models) {
      try {
        l.model->config().check_positions("the text of " + std::to_string(T) + " tokens for " + l.path, 0, T);
      } catch (const Error& e) {
        throw_error(e.what(), "; shorten the text (or use --range to zoom into part of a shorter one)");
      }
    }
    if (models.size() == 2) {
      const GPTConfig& c2 = models[1].model->config();
      if (c2.n_layer != cfg.n_layer || c2.n_head != cfg.n_head)
        throw_error("the two models differ in shape (", cfg.n_layer, " layers x ", cfg.n_head, " heads vs ",
                    c2.n_layer, " x ", c2.n_head, "); the side-by-side figure needs the same layers and heads");
      if (!models[1].info.tokenizer || !first.info.tokenizer)
        throw_error("comparing two models needs two text models (with tokenizers)");
      std::vector<std::int32_t> ids2;
      try {
        ids2 = models[1].info.tokenizer->encode(text);
      } catch (const Error& e) {
        throw_error("--text for ", models[1].path, ": ", e.what());
      }
      if (ids2 != ids) throw_error("the two models tokenize the text differently (different vocabularies)");
    }
    for (std::int32_t id : ids)
      tokens.push_back(task ? task->token_name(id) : first.info.tokenizer->decode_one(id));

    sink_options.eps = a.get_double("eps");
    sink_options.min_row = a.get_int64("min_row");
    const std::string bos_char = a.given("bos") ? a.get_string("bos") : declared_bos(first.path);
    if (!bos_char.empty() && first.info.tokenizer) {
      std::vector<std::int32_t> b;
      try {
        b = first.info.tokenizer->encode(bos_char);
      } catch (const Error& e) {
        throw_error("--bos: ", e.what());
      }
      if (b.size() != 1) throw_error("--bos \"", bos_char, "\": expected exactly one character, got ", b.size());
      sink_options.bos = b[0];
    }
    ho.layers = parse_index_list(a.get_string("layers"), cfg.n_layer, "layers");
    ho.heads = parse_index_list(a.get_string("heads"), cfg.n_head, "heads");
    viz::parse_token_range(a.get_string("range"), T, &ho.range_begin, &ho.range_end);
    ho.colormap = a.get_choice("colormap");
    if (!text.empty()) ho.subtitle = text;
  } catch (const Error& e) {
    print_error(err, "attn", e);
    return 2;
  }

  try {
    for (const Loaded& l : models) print_notes(err, l.info);
    // the attention maps to draw: one set, or a left/right pair
    std::vector<Recorded> recorded;
    GPT& m0 = *models[0].model;
    if (models.size() == 2) {
      std::string l0 = mask_label(m0.config().mask), l1 = mask_label(models[1].model->config().mask);
      if (l0 == l1) {
        l0 += " (" + std::filesystem::path(models[0].path).filename().string() + ")";
        l1 += " (" + std::filesystem::path(models[1].path).filename().string() + ")";
      }
      recorded.push_back(record(m0, ids, l0, sink_options));
      recorded.push_back(record(*models[1].model, ids, l1, sink_options));
    } else if (mask_choice == "both") {
      for (const std::string& mask : compared_strategies()) {
        std::unique_ptr<GPT> keep;
        recorded.push_back(record(under_mask(m0, mask, models[0].path, keep), ids, mask_label(mask), sink_options));
      }
    } else {
      const std::string want = mask_choice == "own" ? m0.config().mask : mask_choice;
      std::unique_ptr<GPT> keep;
      recorded.push_back(record(under_mask(m0, want, models[0].path, keep), ids, mask_label(want), sink_options));
    }
    std::vector<viz::AttentionMaps> maps;
    for (const Recorded& r : recorded) maps.push_back(r.maps);

    viz::Canvas figure = [&] {
      if (maps.size() == 2) return viz::heatmap_compare(maps[0], maps[1], tokens, ho);
      if (ho.layers.size() == 1 && ho.heads.size() == 1)
        return viz::heatmap_single(maps[0], tokens, ho.layers[0], ho.heads[0], ho);
      return viz::heatmap_grid(maps[0], tokens, ho);
    }();
    std::vector<const viz::AttentionMaps*> ptrs;
    for (const auto& m : maps) ptrs.push_back(&m);
    const std::vector<std::string> files = viz::save_attention_figure(stem, figure, ptrs, tokens, ho);

    nlohmann::json j;
    j["files"] = files;
    j["T"] = static_cast<std::int64_t>(ids.size());
    j["stats"] = nlohmann::json::array();
    std::vector<viz::AttentionStats> stats;
    for (const auto& m : maps) stats.push_back(viz::attention_stats(m));
    if (stats.size() == 2) out << viz::format_stats_comparison(stats[0], stats[1]);
    else out << viz::format_stats(stats[0]);
    for (const auto& s : stats) j["stats"].push_back(stats_json(s));
    j["sinks"] = nlohmann::json::array();
    if (ids.size() >= 2)
      for (const Recorded& r : recorded) {
        nlohmann::json s = nlohmann::json::parse(sink_json(r.sinks));
        s["mask"] = r.maps.mask;
        // per layer: the largest |h| of the residual stream after the block, the median |h|, their ratio
        s["massive_activations"] = {{"top", r.massive.top}, {"median", r.massive.median}, {"ratio", r.massive.ratio}};
        j["sinks"].push_back(s);
        out << r.maps.mask << ": " << format_sink_summary(r.sinks);
      }
    if (!html_path.empty()) {
      write_attn_html(html_path, maps, tokens, text, j["stats"], ho.colormap);
      j["files"].push_back(html_path);
      err << "wrote " << html_path << "\n";
    }
    for (const auto& f : files) err << "wrote " << f << "\n";
    out << j.dump() << "\n";
    out.flush();
  } catch (const Error& e) {
    print_error(err, "attn", e);
    return 2;
  } catch (const std::exception& e) {
    print_error(err, "attn", e);
    return 1;
  }
  return 0;
}

int run_attn(const std::vector<std::string>& args) { return run_attn(args, std::cout, std::cerr); }

}  // namespace gradlab::cli
