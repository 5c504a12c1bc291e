// gradlab eval: the evaluation rule of train/evaluate.h on a text file or a position task, as one JSON line.
#include <sys/stat.h>

#include <cstdio>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/eval.h"
#include "cli/outputs.h"
#include "train/diagnose.h"
#include "train/evaluate.h"
#include "data/bigram_backcopy.h"
#include "data/grammar.h"
#include "train/safetensors.h"
#include "data/tasks.h"
#include "data/textfile.h"
#include "tensor/cpu.h"
#include "tensor/error.h"

namespace gradlab::cli {

const char* const kEvalRuleText =
    "Evaluation rule: the token stream is cut into consecutive non-overlapping windows of T+1 tokens, starting "
    "at token 0 (window k holds tokens k(T+1) .. k(T+1)+T); the last partial window is dropped. In each window the "
    "first T tokens are the inputs and the last T the targets, at positions 0..T-1. loss is the mean "
    "cross-entropy (natural log) over all targets of all windows; per_position[t] is the mean loss at position t "
    "of a window. Position tasks use their fixed evaluation sequences, and only positions with a target count "
    "(loss and accuracy). T may exceed the training length L for rope, alibi, sinusoidal and none (not for learned "
    "positions). --window W: each query attends to the W most recent tokens only (a KV cache that evicts the "
    "oldest, no kept sink tokens); positions stay absolute and StableMask's sink uses each row's absolute "
    "position. --keep_first K (with --window W, K < W): the first K tokens of each window stay in the cache for "
    "good and the W-K most recent fill the rest (StreamingLLM's attention sinks; positions stay absolute). "
    "--window_positions: positions are counted inside the window instead (0..W-1, keys recomputed for every query, "
    "StreamingLLM's scheme), so a model with learned positions can read T > L with W <= L.\n"
    "Documents: for a model trained on documents (--task bigram-backcopy, or --data with --bos CHAR) and with "
    "--bos CHAR, window 0 starts at the first BOS and window k at the first BOS at or after the end of window "
    "k-1; tokens before the first BOS or between a window's end and the next BOS are not scored.\n"
    "Output: the last line on stdout is one JSON object: loss, tokens (targets counted), windows, ctx, window, "
    "per_position, and for tasks accuracy and per_position_accuracy.";

void print_error(std::ostream& err, const char* command, const std::exception& e) {
  const std::string prefix = std::string("gradlab ") + command;
  std::string msg = e.what();
  if (msg.rfind(prefix + ":", 0) == 0) msg = msg.substr(prefix.size() + 1);
  while (!msg.empty() && msg.front() == ' ') msg.erase(msg.begin());
  // One line, always, and no terminal control sequences from user strings: newlines become spaces, other
  // control bytes a visible \xNN.
  std::string clean;
  for (char c : msg) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') clean += ' ';
    else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      clean += buf;
    } else clean += c;
  }
  err << prefix << ": " << clean << "\n";
}

std::unique_ptr<GPT> load_cli_model(const std::string& path, ModelInfo* info) {
  if (path.empty()) throw_error("--model: an empty path");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_error("--model ", path, ": no such file or directory");
  std::string file = path;
  if (S_ISDIR(st.st_mode)) {
    file = checkpoint_files(path).model;
    if (::stat(file.c_str(), &st) != 0)
      throw_error("--model ", path, ": the directory holds no ", kModelFileName, " (is it a gradlab train --out directory?)");
  }
  auto model = load_model(file, info);
  if (!info->checksummed)
    info->notes.push_back("note: " + file + " was written before gradlab stored checksums; its tensors were checked "
                          "for structure and finiteness only");
  return model;
}

void print_notes(std::ostream& err, const ModelInfo& info) {
  for (const std::string& note : info.notes) err << note << "\n";
}

std::string declared_bos(const std::string& model_path) {
  const std::string state = join_path(model_path, kTrainStateFileName);
  struct stat st {};
  if (::stat(state.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
  const nlohmann::json src = nlohmann::json::parse(load_train_state(state).data, nullptr, false);
  if (!src.is_object()) return "";
  if (src.value("kind", "") == "bigram-backcopy") return std::string(1, kBigramBackcopyBos);
  return src.contains("bos") && src.at("bos").is_string() ? src.at("bos").get<std::string>() : "";
}

namespace {

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json numbers(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(number_or_null(x));
  return a;
}

}  // namespace

int run_eval(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  ArgParser a("gradlab eval", "Evaluate a checkpoint on a text file or a position task.");
  try {
    a.add_string("model", "", "checkpoint directory (from gradlab train --out) or a model.safetensors", "DIR")
        .required();
    a.add_string("data", "", "text file to evaluate (encoded with the model's tokenizer); default: the data the "
                 "checkpoint was trained on (its train_state names it)", "FILE").no_default();
    a.add_choice("task", task_names(), task_names().front(), "evaluate on a position task (default for task models)").no_default();
    a.add_choice("split", {"all", "train", "val"}, "all",
                 "part of the text: all, or the training split's first 90% / validation's last 10% (default: all for --data, "
                 "val for the model's own data)");
    a.add_int("ctx", 1, 1, 1 << 20, "window length T (default: the model's training length L)").no_default();
    a.add_int("window", 1, 1, 1 << 20, "sliding KV window W <= T: attend to the W most recent tokens").no_default();
    a.add_int("keep_first", 0, 0, 1 << 20, "with --window W: keep the first K < W tokens in the window (StreamingLLM)");
    a.add_flag("window_positions", "with --window W: count positions inside the window (0..W-1, keys recomputed "
               "per query, as StreamingLLM), so learned positions can read past L");
    a.add_string("bos", "", "this character starts every document: windows follow the document rule (default: as "
                 "the model's training data declared)", "CHAR").no_default();
    a.add_string("grads", "", "write d(loss)/d(parameter) for every parameter to this safetensors file", "FILE")
        .no_default();
    a.add_int("batch_size", 8, 1, 1 << 16, "windows per forward pass");
    a.add_int("threads", 0, 0, 1024, "threads (0: all the machine offers)");
    a.epilog(kEvalRuleText);
    a.parse(args);
    if (a.help_requested()) {
      out << a.help();
      return 0;
    }
  } catch (const Error& e) {
    print_error(err, "eval", e);
    return 2;
  }

  EvalResult r;
  std::string data_name;
  std::string grads_path;
  bool task = false;
  std::unique_ptr<GPT> model;
  ModelInfo info_for_notes;
  try {
    if (a.given("data") && a.given("task")) throw_error("--data and --task exclude each other; give one");
    if (a.get_int64("threads") > 0) set_num_threads(static_cast<int>(a.get_int64("threads")));
    ModelInfo& info = info_for_notes;
    const std::string model_path = a.get_string("model");
    model = load_cli_model(model_path, &info);
    const GPTConfig& cfg = model->config();
    const std::int64_t T = a.given("ctx") ? a.get_int64("ctx") : cfg.block_size;
    const std::int64_t W = a.given("window") ? a.get_int64("window") : 0;
    const std::int64_t K = a.get_int64("keep_first");
    if (K > 0 && W == 0) throw_error("--keep_first ", K, " needs --window W (it keeps what the window would evict)");
    const bool window_positions = a.get_flag("window_positions");
    check_eval_length(cfg, T, W, K, window_positions);
    if (a.given("grads")) {
      grads_path = a.get_string("grads");
      check_output_file("grads", grads_path,
                        {model_path, a.given("data") ? a.get_string("data") : "", join_path(model_path, kTrainStateFileName)});
    }
    if (!grads_path.empty() && W > 0 && W < T)
      throw_error("--grads with a sliding window (W = ", W, " < T = ", T,
                  ") is not supported: the KV cache holds values, not the graph");

    Batch windows;
    std::string task_name = a.given("task") ? a.get_choice("task") : "";
    // Without --data/--task: the model's own data, as its checkpoint recorded it (train_state.safetensors).
    std::string text;
    std::string bos_char = a.given("bos") ? a.get_string("bos") : "";
    bool own_text = false;
    if (!a.given("data") && task_name.empty()) {
      if (!info.task.empty()) {
        task_name = info.task;
      } else {
        const std::string state = checkpoint_files(model_path).train_state;
        struct stat st {};
        if (::stat(state.c_str(), &st) != 0)
          throw_error("give --data FILE (a text) or --task NAME; the model ", model_path,
                      " was trained on text and its directory has no ", kTrainStateFileName, " naming the data");
        const nlohmann::json src = nlohmann::json::parse(load_train_state(state).data, nullptr, false);
        const std::string kind = src.is_object() ? src.value("kind", "") : "";
        if (kind == "bigram-backcopy") {
          const BigramBackcopyOptions o = BigramBackcopyOptions::from_json(src.dump());
          text = generate_bigram_backcopy(o).text;
          data_name = "bigram-backcopy corpus (seed " + std::to_string(o.seed) + ")";
          if (bos_char.empty()) bos_char = std::string(1, kBigramBackcopyBos);
        } else if (kind == "grammar" && src.contains("seed") && src.contains("target_chars")) {
          GrammarOptions g;
          g.seed = src.at("seed").get<std::uint64_t>();
          g.target_chars = src.at("target_chars").get<std::int64_t>();
          text = generate_grammar(g).text;
          data_name = "grammar corpus (seed " + std::to_string(g.seed) + ")";
        } else if (kind == "file" && src.contains("path")) {
          data_name = src.at("path").get<std::string>();
          text = read_text_file(data_name);
          if (bos_char.empty() && src.contains("bos")) bos_char = src.at("bos").get<std::string>();
        } else {
          throw_error("give --data FILE (a text) or --task NAME; ", state, " does not name a text source");
        }
        own_text = true;
      }
    }
    if (!task_name.empty()) {
      if (a.given("bos")) throw_error("--bos: position tasks have no documents");
      // the task as the model saw it: its classes follow the training length L
      auto t = make_task(task_name, cfg.block_size);
      if (t->vocab_size() != cfg.vocab_size)
        throw_error("--task ", task_name, ": the task at length L = ", cfg.block_size, " has ", t->vocab_size(),
                    " token ids, but the model's vocabulary has ", cfg.vocab_size,
                    (info.task.empty() ? " (the model was trained on text)" : " (the model was trained on " + info.task + ")"));
      if (T > t->max_length())
        throw_error("--ctx ", T, ": task ", task_name, " has position classes only for 0..", t->max_length() - 1,
                    " (the training length); give T <= ", t->max_length());
      windows = t->eval_windows(Split::Val, T);
      data_name = task_name;
      task = true;
    } else {
      if (!info.tokenizer)
        throw_error("--data: the model ", model_path, " was trained on task ", info.task,
                    " and has no text tokenizer; use --task");
      if (!own_text) {
        data_name = a.get_string("data");
        text = read_text_file(data_name);
      }
      std::vector<std::int32_t> tokens;
      try {
        tokens = info.tokenizer->encode(text);
      } catch (const Error& e) {
        throw_error("--data ", data_name, ": ", e.what());
      }
      // a given --data is evaluated whole by default; the model's own data on its validation split
      const std::string split = a.given("split") || !own_text ? a.get_choice("split") : "val";
      if (split != "all") {
        // the same split as training (data/dataset.h): the first floor(0.9 n) tokens, then the rest
        const std::size_t n_train = tokens.size() * 9 / 10;
        if (split == "train") tokens.resize(n_train);
        else tokens.erase(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n_train));
      }
      std::int32_t bos = -1;
      if (!bos_char.empty()) {
        std::vector<std::int32_t> b;
        try {
          b = info.tokenizer->encode(bos_char);
        } catch (const Error& e) {
          throw_error("--bos: ", e.what());
        }
        if (b.size() != 1) throw_error("--bos \"", bos_char, "\": expected exactly one character, got ", b.size());
        bos = b[0];
      }
      try {
        windows = bos >= 0 ? make_document_eval_windows(tokens, T, bos) : make_eval_windows(tokens, T);
      } catch (const Error& e) {
        throw_error("--data ", data_name, " (", split, "): ", e.what());
      }
    }
    EvalOptions eo;
    eo.window = W;
    eo.keep_first = K;
    eo.window_positions = window_positions;
    eo.batch_size = a.get_int64("batch_size");
    eo.accuracy = task;
    eo.grads = !grads_path.empty();
    r = evaluate(*model, windows, eo);
    if (!std::isfinite(r.loss)) {
      // Find the first window whose logits are not finite, and where in the model they start.
      std::string where;
      for (std::int64_t w = 0; w < windows.B && where.empty(); ++w) {
        const auto begin = windows.inputs.begin() + w * windows.T;
        where = locate_nonfinite(*model, std::vector<std::int32_t>(begin, begin + windows.T));
        if (!where.empty()) where = "; in window " + std::to_string(w) + " non-finite values first appear in " + where;
      }
      throw NonFiniteError("the loss on " + data_name + " is " + nonfinite_name(r.loss) + where);
    }
    if (eo.grads)
      for (const auto& [name, g] : r.grads)
        if (first_nonfinite_index(g) >= 0) throw NonFiniteError("the gradient of " + name + " is not finite");
  } catch (const NonFiniteError& e) {
    print_error(err, "eval", e);
    return 1;
  } catch (const Error& e) {
    print_error(err, "eval", e);
    return 2;
  }
  print_notes(err, info_for_notes);

  if (!grads_path.empty()) {
    try {
      std::map<std::string, std::string> meta = {{"format", "gradlab-grads-1"},
                                                 {"loss", std::to_string(r.loss)},
                                                 {"tokens", std::to_string(r.tokens)},
                                                 {"windows", std::to_string(r.windows)},
                                                 {"ctx", std::to_string(r.T)},
                                                 {"data", data_name},
                                                 {"config", model->config().to_json()}};
      write_safetensors(grads_path, r.grads, meta);
    } catch (const std::exception& e) {
      err << "gradlab eval: --grads " << grads_path << ": " << e.what() << "\n";
      return 1;
    }
  }

  err << "eval: " << data_name << ", " << r.windows << " windows of T = " << r.T;
  if (r.window > 0) err << " (sliding window W = " << r.window << ", first " << r.keep_first << " kept)";
  err << ", " << r.tokens << " targets: loss " << r.loss << " (perplexity " << std::exp(r.loss) << ")";
  if (task) err << ", accuracy " << r.accuracy;
  err << "\n";
  nlohmann::json j;
  j["loss"] = number_or_null(r.loss);
  j["tokens"] = r.tokens;
  j["windows"] = r.windows;
  j["ctx"] = r.T;
  j["window"] = r.window > 0 ? nlohmann::json(r.window) : nlohmann::json(nullptr);
  j["keep_first"] = r.keep_first;
  j["data"] = data_name;
  j["per_position"] = numbers(r.per_position);
  if (task) {
    j["accuracy"] = number_or_null(r.accuracy);
    j["per_position_accuracy"] = numbers(r.per_position_accuracy);
  }
  if (!grads_path.empty()) j["grads"] = grads_path;
  out << j.dump() << "\n";
  out.flush();
  return 0;
}

int run_eval(const std::vector<std::string>& args) { return run_eval(args, std::cout, std::cerr); }

}  // namespace gradlab::cli
