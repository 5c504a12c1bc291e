#include "cli/train.h"

#include "cli/eval.h"

#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "cli/args.h"
#include "cli/outputs.h"
#include "train/checkpoint.h"
#include "data/bigram_backcopy.h"
#include "train/memory.h"
#include "train/run_lock.h"
#include "data/grammar.h"
#include "data/tasks.h"
#include "data/textfile.h"
#include "train/trainer.h"
#include "tensor/cpu.h"
#include "tensor/error.h"

namespace gradlab::cli {

namespace {

// nanoGPT-style presets. An explicitly given flag always wins over its preset value.
const std::map<std::string, std::map<std::string, std::int64_t>>& presets() {
  static const std::map<std::string, std::map<std::string, std::int64_t>> p = {
      // nanoGPT's CPU configuration of shakespeare_char
      {"tiny", {{"n_layer", 4}, {"n_head", 4}, {"n_embd", 128}, {"block_size", 64}, {"batch_size", 12}}},
      // the issue's `small` (nanoGPT's shakespeare_char model at a CPU-sized batch)
      {"small", {{"n_layer", 6}, {"n_head", 6}, {"n_embd", 384}, {"block_size", 256}, {"batch_size", 8}}},
  };
  return p;
}

// The position tasks and the generated text corpora --task accepts.
std::vector<std::string> train_task_names() {
  std::vector<std::string> names = task_names();
  names.push_back("bigram-backcopy");
  return names;
}

void declare_flags(ArgParser& a) {
  a.section("data");
  a.add_string("data", "", "train on this text file (default: the built-in grammar corpus)", "FILE").no_default();
  a.add_choice("task", train_task_names(), task_names().front(),
               "train on a position task, or on the generated bigram-backcopy corpus (documents, sinks form)")
      .no_default();
  a.add_choice("tokenizer", {"char", "byte"}, "char", "text tokenizer: sorted characters of the text, or bytes");
  a.add_string("bos", "", "--data: this character starts every document; windows then start at a document start "
               "(BOS at position 0), off by default", "CHAR").no_default();
  a.section("model (nanoGPT names)");
  a.add_choice("config", {"tiny", "small"}, "tiny",
               "preset: tiny = 4 layers, 4 heads, 128 wide, block 64, batch 12; small = 6/6/384, block 256, batch 8")
      .no_default();
  a.add_int("n_layer", 4, 1, 256, "transformer blocks");
  a.add_int("n_head", 4, 1, 256, "attention heads (must divide n_embd)");
  a.add_int("n_embd", 128, 1, 16384, "model width");
  a.add_int("block_size", 64, 1, 65536, "training context length L");
  a.add_double("dropout", 0.0, 0.0, 0.95, "dropout probability");
  a.add_flag("bias", "biases in Linear and LayerNorm (off by default, as nanoGPT's train.py)");
  a.add_choice("norm", {"layernorm", "rmsnorm"}, "layernorm", "normalisation layer");
  a.add_choice("mlp", {"gelu", "gelu_exact", "swiglu"}, "gelu",
               "feed-forward block: gelu = tanh approximation (GPT-2), gelu_exact = erf form (nn.GELU(), nanoGPT)");
  a.add_choice("pos", {"learned", "sinusoidal", "rope", "alibi", "none"}, "learned", "position encoding");
  a.add_choice("mask", strategy_names(), strategy_names().front(), "attention strategy: " + strategy_help());
  a.add_string("gamma", "alibi", "StableMask decay per head: 'alibi' (the ALiBi slopes) or one number > 0", "G");
  a.add_choice("tail", {"finite", "infinite"}, "finite", "StableMask pseudo-attention tail beyond the training length");
  a.add_choice("gate", {"head", "full"}, "head",
               "--mask gated: one gate per head and token (head, W_g (H, C)) or per channel and token (full, W_g (C, C))");
  a.section("training");
  a.add_int("batch_size", 12, 1, 1 << 20, "sequences per micro-batch");
  a.add_int("gradient_accumulation_steps", 1, 1, 1 << 16, "micro-batches per optimizer step");
  a.add_int("max_iters", 2000, 0, 1'000'000'000, "optimizer steps");
  a.add_double("learning_rate", 1e-3, 0.0, 10.0, "peak learning rate");
  a.add_double("min_lr", 1e-4, 0.0, 10.0, "final learning rate of the cosine (default learning_rate / 10)").no_default();
  a.add_int("warmup_iters", 100, 0, 1'000'000'000, "linear warmup steps (unless given: at most max_iters / 10)");
  a.add_int("lr_decay_iters", 2000, 1, 1'000'000'000, "step where the cosine reaches min_lr (default max_iters)")
      .no_default();
  a.add_double("weight_decay", 0.1, 0.0, 10.0, "AdamW decoupled weight decay (tensors of 2+ dimensions only)");
  a.add_double("beta1", 0.9, 0.0, 0.999999, "AdamW beta1");
  a.add_double("beta2", 0.99, 0.0, 0.999999, "AdamW beta2");
  a.add_double("grad_clip", 1.0, 0.0, 1e6, "clip the global gradient norm to this (0: off)");
  a.add_int("seed", 1337, 0, std::numeric_limits<std::int64_t>::max(), "seed of the initialisation and the batches");
  a.add_int("threads", 0, 0, 1024, "threads (0: all the machine offers)");
  a.section("output");
  a.add_string("out", "", "output directory: model.safetensors, train_state.safetensors, log.csv", "DIR")
      .no_default();
  a.add_string("resume", "", "continue the run checkpointed in DIR (writes there unless --out is given)", "DIR")
      .no_default();
  a.add_int("eval_interval", 250, 0, 1'000'000'000, "evaluate every N steps (0: only at the end)");
  a.add_int("eval_iters", 20, 1, 1'000'000, "batches per evaluation");
  a.add_int("log_interval", 10, 1, 1'000'000'000, "progress line every N steps when stderr is not a terminal");
  a.add_int("checkpoint_interval", 250, 0, 1'000'000'000, "checkpoint every N steps (0: only at the end)");
  a.add_choice("progress", {"auto", "bar", "lines", "none"}, "auto",
               "progress on stderr: live bar on a terminal, lines otherwise");
  a.add_flag("profile", "print where a step's time goes: each phase (batch, forward, backward, clipping, AdamW) "
             "and each op's forward and backward, wall ms per step over the steps after the 5 warm-up steps");
  a.add_string("max_memory", "", "refuse a run whose memory estimate exceeds this (e.g. 512M, 8G; default: the "
               "MemAvailable of /proc/meminfo)", "SIZE").no_default();
  a.epilog(
      "Data: the default is the built-in grammar corpus (generated, nothing to download; its entropy rate is "
      "printed so a loss can be read against it). The last 10% of the tokens are the validation split.\n"
      "Documents: --task bigram-backcopy generates documents '^' + 64 letters (Guo et al. 2024; its parameters are "
      "printed and stored in train_state.safetensors) and --data FILE --bos CHAR declares that CHAR starts every "
      "document of a text. Training windows then start at a document start (BOS at position 0; a window longer "
      "than its document runs into the next ones) and evaluation follows the document rule of gradlab eval --help.\n"
      "Output: the last line on stdout is one JSON object: iters, tokens, seconds, tokens_per_second, train_loss, "
      "val_loss. tokens_per_second counts batch_size*block_size per step over the steps after 5 warm-up steps.\n"
      "Run directory: one run at a time (an exclusive lock on DIR/.gradlab.lock); a save publishes the model and "
      "train_state as one pair (DIR/latest -> DIR/steps/step-N), so a kill at any moment leaves the last complete "
      "pair. A DIR that holds a checkpoint is only written by --resume.\n"
      "Exit codes: 0 done, 1 non-finite loss or runtime failure, 2 bad usage or input, 130 Ctrl-C (after a "
      "checkpoint).");
}

// The value of an int flag: given > preset > default.
std::int64_t int_flag(const ArgParser& a, const std::string& name, const std::string& preset) {
  if (a.given(name) || preset.empty()) return a.get_int64(name);
  const auto& p = presets().at(preset);
  auto it = p.find(name);
  return it == p.end() ? a.get_int64(name) : it->second;
}

struct LoadedData {
  std::unique_ptr<Dataset> dataset;
  std::string source;  // JSON, stored in train_state
  std::int64_t bytes = 0;  // the text and its int32 tokens, for the memory estimate
};

// Builds the dataset from a data-source description. `tokenizer`: the saved one (resume) or null (new run).
LoadedData load_data(const nlohmann::json& src, std::int64_t block_size, const Tokenizer* tokenizer,
                     std::ostream& err) {
  LoadedData d;
  d.source = src.dump();
  const std::string kind = src.value("kind", "");
  if (kind == "task") {
    d.dataset = make_task(src.at("name").get<std::string>(), block_size);
  } else if (kind == "bigram-backcopy") {
    BigramBackcopyCorpus corpus;
    auto ds = make_bigram_backcopy_dataset(BigramBackcopyOptions::from_json(d.source), &corpus);
    err << corpus.describe() << "\n";
    if (tokenizer && tokenizer->vocab() != ds->tokenizer()->vocab())
      throw_error("resume: the regenerated bigram-backcopy corpus has another vocabulary than the checkpoint");
    d.dataset = std::move(ds);
  } else if (kind == "grammar" || kind == "file") {
    std::string text, name;
    if (kind == "grammar") {
      GrammarOptions opt;
      opt.seed = src.at("seed").get<std::uint64_t>();
      opt.target_chars = src.at("target_chars").get<std::int64_t>();
      GrammarCorpus corpus = generate_grammar(opt);
      err << corpus.describe() << "\n";
      text = std::move(corpus.text);
      name = "grammar";
    } else {
      name = src.at("path").get<std::string>();
      text = read_text_file(name);
    }
    d.bytes = static_cast<std::int64_t>(text.size()) * 5;
    const std::string tok = src.value("tokenizer", "char");
    if (tokenizer) {
      d.dataset = TextDataset::from_text(name, text, *tokenizer);
    } else {
      if (tok == "char") {
        const std::size_t invalid = count_invalid_utf8(text);
        if (invalid > 0)
          err << "warning: " << name << " has " << invalid
              << " bytes that are not valid UTF-8; each is read as U+FFFD (use --tokenizer byte to keep them)\n";
      }
      d.dataset = TextDataset::from_text(name, text, tok == "byte" ? TokenizerKind::Byte : TokenizerKind::Char);
    }
    if (src.contains("bos")) static_cast<TextDataset*>(d.dataset.get())->set_bos_character(src.at("bos").get<std::string>());
  } else {
    throw_error("unknown data source ", d.source);
  }
  d.dataset->check_length(block_size);
  return d;
}

// Makes sure `dir` is (or can become) a directory we can write to, without touching any file in it.
void prepare_out_dir(const std::string& dir) {
  if (dir.empty()) throw_error("--out: an empty directory name");
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw_error("--out ", dir, ": exists and is not a directory");
    return;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_error("--out ", dir, ": cannot create the directory: ", ec.message());
}

// "512M", "8G", "1.5T", "1000000" (bytes); binary units.
double parse_size(const std::string& text) {
  std::size_t used = 0;
  double v = NAN;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  double unit = 1;
  const std::string rest = used > 0 ? text.substr(used) : "";
  if (rest == "K" || rest == "k") unit = 1024.0;
  else if (rest == "M") unit = 1024.0 * 1024;
  else if (rest == "G") unit = 1024.0 * 1024 * 1024;
  else if (rest == "T") unit = 1024.0 * 1024 * 1024 * 1024;
  else if (!rest.empty()) used = 0;
  if (used == 0 || !std::isfinite(v) || !(v > 0))
    throw_error("--max_memory ", text, ": expected a size > 0 like 512M, 8G or a number of bytes");
  return v * unit;
}

// Refuses, before the model exists, a run whose estimated memory exceeds the limit.
void check_memory(const GPTConfig& c, std::int64_t batch_size, std::int64_t data_bytes, const ArgParser& a) {
  const MemoryEstimate e = estimate_training_memory(c, batch_size, data_bytes);
  std::optional<double> limit;
  std::string source;
  if (a.given("max_memory")) {
    limit = parse_size(a.get_string("max_memory"));
    source = "--max_memory " + a.get_string("max_memory");
  } else {
    limit = memory_available();
    source = "MemAvailable in /proc/meminfo";
  }
  if (limit && e.total() > *limit)
    throw_error("the run needs more memory than is available: ", e.describe(), "; the limit is ",
                format_bytes(*limit), " (", source, "); make the model or the batch smaller");
}

std::string json_number(double v) {
  nlohmann::json j = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  return j.dump();
}

}  // namespace

int run_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  // Phase 1: everything that can be wrong with the request is found here, before any file is written.
  ArgParser a("gradlab train", "Train a small GPT under an attention strategy (--mask): the causal mask, StableMask, ...");
  std::unique_ptr<GPT> model;
  LoadedData data;
  TrainConfig tc;
  std::optional<TrainState> resume_state;
  RunLock lock;
  // What phase 1 has to say goes out only when it succeeds: on a refusal the error is the only line.
  std::ostringstream info;
  try {
    declare_flags(a);
    a.parse(args);
    if (a.help_requested()) {
      out << a.help();
      return 0;
    }
    if (a.given("data") && a.given("task")) throw_error("--data and --task exclude each other; give one");
    const int threads = static_cast<int>(a.get_int64("threads"));
    if (threads > 0) set_num_threads(threads);

    if (a.given("resume")) {
      // The checkpoint fixes the model, the data and the optimisation; only the length of the run and the
      // bookkeeping may change.
      static const std::set<std::string> allowed = {"resume",   "max_iters",           "eval_interval", "eval_iters",
                                                    "log_interval", "checkpoint_interval", "threads",   "out",
                                                    "progress", "data",     "profile"};
      for (const std::string& name : a.names())
        if (a.given(name) && !allowed.count(name))
          throw_error("--", name, " cannot be combined with --resume (the checkpoint fixes it)");
      const std::string dir = a.get_string("resume");
      // Lock the directory the run will write before reading its checkpoint.
      const std::string target = a.given("out") ? a.get_string("out") : dir;
      struct stat target_st {};
      if (::stat(target.c_str(), &target_st) == 0 && S_ISDIR(target_st.st_mode)) lock = RunLock(target);
      LoadedCheckpoint ck = load_checkpoint(dir);
      for (const std::string& note : ck.notes) info << note << "\n";
      tc = TrainConfig::from_json(ck.state.train_config);
      nlohmann::json src = nlohmann::json::parse(ck.state.data, nullptr, false);
      if (src.is_discarded() || !src.is_object())
        throw_error(join_path(dir, kTrainStateFileName), ": metadata 'data' is not a JSON object");
      if (a.given("data")) {
        if (src.value("kind", "") != "file") throw_error("--data: the checkpoint was not trained on a file");
        src["path"] = a.get_string("data");
      }
      const Tokenizer* tok = ck.info.tokenizer ? &*ck.info.tokenizer : nullptr;
      data = load_data(src, ck.model->config().block_size, tok, info);
      if (data.dataset->vocab_size() != ck.model->config().vocab_size)
        throw_error("resume: the data has ", data.dataset->vocab_size(), " tokens, the model ",
                    ck.model->config().vocab_size);
      model = std::move(ck.model);
      resume_state = std::move(ck.state);
      tc.out_dir = a.given("out") ? a.get_string("out") : dir;
      if (a.given("max_iters")) tc.max_iters = a.get_int64("max_iters");
      if (resume_state->step > tc.max_iters)
        throw_error("--max_iters ", tc.max_iters, " is below the checkpoint's step ", resume_state->step);
      check_resume_state(tc, *resume_state);
    } else {
      if (!a.given("out")) throw_error("missing required flag --out DIR (where the checkpoint goes)");
      {
        struct stat out_st {};
        const std::string out_dir = a.get_string("out");
        if (::stat(out_dir.c_str(), &out_st) == 0 && S_ISDIR(out_st.st_mode)) lock = RunLock(out_dir);
      }
      const std::string preset = a.given("config") ? a.get_choice("config") : "";
      GPTConfig c;
      c.n_layer = int_flag(a, "n_layer", preset);
      c.n_head = int_flag(a, "n_head", preset);
      c.n_embd = int_flag(a, "n_embd", preset);
      c.block_size = int_flag(a, "block_size", preset);
      if (c.n_embd % c.n_head != 0)
        throw_error("--n_head ", c.n_head, " does not divide --n_embd ", c.n_embd,
                    " (each head gets n_embd / n_head channels)");
      c.dropout = a.get_double("dropout");
      c.bias = a.get_flag("bias");
      c.norm = parse_norm(a.get_choice("norm"));
      c.mlp = parse_mlp(a.get_choice("mlp"));
      c.pos = parse_pos(a.get_choice("pos"));
      c.mask = a.get_choice("mask");
      c.tail = parse_tail(a.get_choice("tail"));
      c.gate = parse_gate(a.get_choice("gate"));
      const std::string gamma = a.get_string("gamma");
      if (gamma == "alibi") {
        c.gamma = GammaKind::Alibi;
      } else {
        std::size_t used = 0;
        double g = NAN;
        try {
          g = std::stod(gamma, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != gamma.size() || !(g > 0.0) || !std::isfinite(g))
          throw_error("--gamma ", gamma, ": expected 'alibi' or a number > 0");
        c.gamma = GammaKind::Constant;
        c.gamma_value = g;
      }

      // the data decides the vocabulary
      nlohmann::json src;
      if (a.given("bos") && !a.given("data")) throw_error("--bos needs --data FILE (generated corpora declare their own)");
      if (a.given("task") && a.get_choice("task") == "bigram-backcopy") {
        src = nlohmann::json::parse(BigramBackcopyOptions{}.to_json());
      } else if (a.given("task")) {
        src = {{"kind", "task"}, {"name", a.get_choice("task")}};
      } else if (a.given("data")) {
        src = {{"kind", "file"}, {"path", a.get_string("data")}, {"tokenizer", a.get_choice("tokenizer")}};
        if (a.given("bos")) src["bos"] = a.get_string("bos");
      } else {
        GrammarOptions g;
        src = {{"kind", "grammar"},
               {"seed", g.seed},
               {"target_chars", g.target_chars},
               {"tokenizer", a.get_choice("tokenizer")}};
      }
      data = load_data(src, c.block_size, nullptr, info);
      c.vocab_size = data.dataset->vocab_size();
      c.validate();
      check_memory(c, int_flag(a, "batch_size", preset), data.bytes, a);

      tc.batch_size = int_flag(a, "batch_size", preset);
      tc.grad_accum = a.get_int64("gradient_accumulation_steps");
      tc.max_iters = a.get_int64("max_iters");
      tc.seed = static_cast<std::uint64_t>(a.get_int64("seed"));
      tc.schedule.learning_rate = a.get_double("learning_rate");
      tc.schedule.min_lr = a.given("min_lr") ? a.get_double("min_lr") : tc.schedule.learning_rate / 10.0;
      tc.schedule.warmup_iters = a.get_int64("warmup_iters");
      tc.schedule.lr_decay_iters = a.given("lr_decay_iters") ? a.get_int64("lr_decay_iters") : tc.max_iters;
      // A short run with the default warmup would spend all of it warming up: cap the default at 10% of the run.
      if (!a.given("warmup_iters") && tc.schedule.warmup_iters > tc.max_iters / 10)
        tc.schedule.warmup_iters = tc.max_iters / 10;
      tc.adamw.weight_decay = a.get_double("weight_decay");
      tc.adamw.beta1 = a.get_double("beta1");
      tc.adamw.beta2 = a.get_double("beta2");
      tc.grad_clip = a.get_double("grad_clip");
      tc.out_dir = a.get_string("out");
      model = std::make_unique<GPT>(c, tc.seed);
    }
    tc.eval_interval = a.given("eval_interval") || !resume_state ? a.get_int64("eval_interval") : tc.eval_interval;
    tc.eval_iters = a.given("eval_iters") || !resume_state ? a.get_int64("eval_iters") : tc.eval_iters;
    tc.log_interval = a.given("log_interval") || !resume_state ? a.get_int64("log_interval") : tc.log_interval;
    tc.checkpoint_interval = a.given("checkpoint_interval") || !resume_state ? a.get_int64("checkpoint_interval")
                                                                             : tc.checkpoint_interval;
    tc.profile = a.get_flag("profile");
    const std::string progress = a.get_choice("progress");
    tc.progress = progress == "bar"     ? Progress::Mode::Live
                  : progress == "lines" ? Progress::Mode::Plain
                  : progress == "none"  ? Progress::Mode::Quiet
                                        : Progress::Mode::Auto;
    tc.validate();
    std::vector<std::string> inputs;
    if (resume_state) inputs.push_back(a.get_string("resume"));
    if (a.given("data")) inputs.push_back(a.get_string("data"));
    check_train_output_dir(tc.out_dir, inputs, resume_state ? a.get_string("resume") : "");
    prepare_out_dir(tc.out_dir);
    if (!lock.held()) lock = RunLock(tc.out_dir);
    if (!lock.note().empty()) info << "note: " << lock.note() << "\n";
    const std::vector<std::string> stale = clean_stale_temporaries(tc.out_dir);
    if (!stale.empty())
      info << "note: removed " << stale.size() << " temporary file(s) of an interrupted save, e.g. '" << stale[0]
           << "'\n";
  } catch (const Error& e) {  // UsageError included; print_error keeps it to one safe line
    print_error(err, "train", e);
    return 2;
  } catch (const nlohmann::json::exception& e) {  // a checkpoint's data description that is not as written
    err << "gradlab train: --resume: the checkpoint's data description is malformed: " << e.what() << "\n";
    return 2;
  }

  err << info.str();
  // Phase 2: training. Failures from here on are runtime failures (exit code 1).
  try {
    const GPTConfig& c = model->config();
    err << "data: " << data.dataset->describe() << "\n";
    err << "model: " << model->num_parameters() << " parameters, " << c.n_layer << " layers, " << c.n_head
        << " heads, width " << c.n_embd << ", block " << c.block_size << ", mask " << c.mask << ", pos "
        << to_string(c.pos) << "\n";
    err << "seed " << tc.seed << (resume_state ? " (from the checkpoint)" : "") << "\n";
    Trainer trainer(*model, *data.dataset, tc, data.source);
    if (resume_state) {
      // Resuming into another directory: start its log from the old one, so the loss curve stays whole.
      const std::string old_log = join_path(a.get_string("resume"), "log.csv"), new_log = join_path(tc.out_dir, "log.csv");
      std::error_code ec;
      if (!std::filesystem::equivalent(a.get_string("resume"), tc.out_dir, ec) && std::filesystem::exists(old_log, ec))
        std::filesystem::copy_file(old_log, new_log, std::filesystem::copy_options::overwrite_existing, ec);
      trainer.resume(*resume_state);
    }
    TrainResult r = trainer.run();
    nlohmann::ordered_json j;
    j["iters"] = r.steps - r.start_step;
    j["step"] = r.steps;
    j["tokens"] = r.tokens;
    j["seconds"] = nlohmann::json::parse(json_number(r.seconds));
    j["tokens_per_second"] = nlohmann::json::parse(json_number(r.tokens_per_second));
    j["train_loss"] = nlohmann::json::parse(json_number(r.train_loss));
    j["val_loss"] = nlohmann::json::parse(json_number(r.val_loss));
    j["seed"] = tc.seed;
    j["status"] = r.status == TrainStatus::Completed     ? "completed"
                  : r.status == TrainStatus::Interrupted ? "interrupted"
                                                         : "non-finite";
    if (tc.profile && r.profiled_steps > 0) {
      const double step_ms = 1e3 * r.seconds / static_cast<double>(r.profiled_steps);
      err << "profile: " << r.profiled_steps << " steps, " << max_threads() << " threads, step wall time "
          << step_ms << " ms (the phases below leave out logging and checkpoints)\n"
          << profile::table(r.profile, r.profiled_steps);
      nlohmann::ordered_json p = nlohmann::ordered_json::array();
      for (const profile::Entry& e : r.profile) {
        const double n = static_cast<double>(r.profiled_steps);
        p.push_back({{"name", e.name},
                     {"kind", e.kind == profile::Kind::Phase     ? "phase"
                              : e.kind == profile::Kind::Forward ? "forward"
                                                                 : "backward"},
                     {"ms_per_step", nlohmann::json::parse(json_number(1e3 * e.seconds / n))},
                     {"calls_per_step", static_cast<double>(e.calls) / n}});
      }
      j["profile"] = p;
      j["profiled_steps"] = r.profiled_steps;
    }
    if (!r.message.empty()) err << "gradlab train: " << r.message << "\n";
    out << j.dump() << std::endl;
    if (r.status == TrainStatus::Interrupted) return 130;
    if (r.status == TrainStatus::NonFinite) return 1;
    return 0;
  } catch (const std::exception& e) {
    print_error(err, "train", e);
    return 1;
  }
}

int run_train(const std::vector<std::string>& args) { return run_train(args, std::cout, std::cerr); }

}  // namespace gradlab::cli
