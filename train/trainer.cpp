#include "train/trainer.h"

#include <signal.h>

#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tensor/error.h"
#include "train/diagnose.h"
#include "train/safetensors.h"

namespace gradlab {

// ---------------------------------------------------------------------------------------------------------------
// The stop flag. A signal handler may only touch a lock-free atomic (or a volatile sig_atomic_t).

namespace {
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_sigint(int) { g_stop.store(true, std::memory_order_relaxed); }

// Installs the SIGINT handler for the lifetime of a run. SA_RESETHAND: a second Ctrl-C gets the default action
// (the process ends at once), for a user who does not want to wait for the checkpoint.
class SigintGuard {
 public:
  SigintGuard() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    installed_ = sigaction(SIGINT, &sa, &previous_) == 0;
  }
  ~SigintGuard() {
    if (installed_) sigaction(SIGINT, &previous_, nullptr);
  }

 private:
  struct sigaction previous_ {};
  bool installed_ = false;
};
}  // namespace

void request_training_stop() { g_stop.store(true, std::memory_order_relaxed); }
bool training_stop_requested() { return g_stop.load(std::memory_order_relaxed); }
void clear_training_stop() { g_stop.store(false, std::memory_order_relaxed); }

// ---------------------------------------------------------------------------------------------------------------
// TrainConfig

void TrainConfig::validate() const {
  auto positive = [](const char* name, std::int64_t v) {
    if (v <= 0) throw_error("training config: ", name, " = ", v, ", expected > 0");
  };
  auto non_negative = [](const char* name, std::int64_t v) {
    if (v < 0) throw_error("training config: ", name, " = ", v, ", expected >= 0");
  };
  positive("batch_size", batch_size);
  positive("grad_accum", grad_accum);
  non_negative("max_iters", max_iters);
  non_negative("eval_interval", eval_interval);
  positive("eval_iters", eval_iters);
  positive("log_interval", log_interval);
  non_negative("checkpoint_interval", checkpoint_interval);
  if (!(grad_clip >= 0.0) || !std::isfinite(grad_clip))
    throw_error("training config: grad_clip = ", grad_clip, ", expected a finite value >= 0 (0 disables clipping)");
  schedule.validate();
  adamw.validate();
}

std::string TrainConfig::to_json() const {
  nlohmann::ordered_json j;
  j["batch_size"] = batch_size;
  j["grad_accum"] = grad_accum;
  j["max_iters"] = max_iters;
  j["eval_interval"] = eval_interval;
  j["eval_iters"] = eval_iters;
  j["log_interval"] = log_interval;
  j["checkpoint_interval"] = checkpoint_interval;
  j["seed"] = seed;
  j["learning_rate"] = schedule.learning_rate;
  j["min_lr"] = schedule.min_lr;
  j["warmup_iters"] = schedule.warmup_iters;
  j["lr_decay_iters"] = schedule.lr_decay_iters;
  j["decay_lr"] = schedule.decay;
  j["beta1"] = adamw.beta1;
  j["beta2"] = adamw.beta2;
  j["eps"] = adamw.eps;
  j["weight_decay"] = adamw.weight_decay;
  j["grad_clip"] = grad_clip;
  return j.dump();
}

TrainConfig TrainConfig::from_json(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw_error("training config: not a JSON object");
  TrainConfig c;
  std::set<std::string> used;
  auto get_int = [&](const char* key, std::int64_t& out) {
    used.insert(key);
    if (!j.contains(key)) throw_error("training config: missing '", key, "'");
    if (!j[key].is_number_integer()) throw_error("training config: '", key, "' is not an integer");
    out = j[key].get<std::int64_t>();
  };
  auto get_double = [&](const char* key, double& out) {
    used.insert(key);
    if (!j.contains(key)) throw_error("training config: missing '", key, "'");
    if (!j[key].is_number()) throw_error("training config: '", key, "' is not a number");
    out = j[key].get<double>();
  };
  get_int("batch_size", c.batch_size);
  get_int("grad_accum", c.grad_accum);
  get_int("max_iters", c.max_iters);
  get_int("eval_interval", c.eval_interval);
  get_int("eval_iters", c.eval_iters);
  get_int("log_interval", c.log_interval);
  get_int("checkpoint_interval", c.checkpoint_interval);
  used.insert("seed");
  if (!j.contains("seed") || !j["seed"].is_number_unsigned()) throw_error("training config: 'seed' is missing or not >= 0");
  c.seed = j["seed"].get<std::uint64_t>();
  get_double("learning_rate", c.schedule.learning_rate);
  get_double("min_lr", c.schedule.min_lr);
  get_int("warmup_iters", c.schedule.warmup_iters);
  get_int("lr_decay_iters", c.schedule.lr_decay_iters);
  used.insert("decay_lr");
  if (!j.contains("decay_lr") || !j["decay_lr"].is_boolean()) throw_error("training config: 'decay_lr' is not a boolean");
  c.schedule.decay = j["decay_lr"].get<bool>();
  get_double("beta1", c.adamw.beta1);
  get_double("beta2", c.adamw.beta2);
  get_double("eps", c.adamw.eps);
  get_double("weight_decay", c.adamw.weight_decay);
  get_double("grad_clip", c.grad_clip);
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!used.count(it.key())) throw_error("training config: unknown key '", it.key(), "'");
  c.validate();
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Trainer

namespace {
constexpr std::uint64_t kDataStream = 1001;  // the training windows
constexpr std::uint64_t kEvalStream = 2002;  // the evaluation windows (+ split)
constexpr std::int64_t kWarmupSteps = 5;     // steps excluded from the tokens/s figure

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Trainer::Trainer(GPT& model, const Dataset& data, TrainConfig config, std::string data_source)
    : model_(model), data_(data), config_(std::move(config)), data_source_(std::move(data_source)),
      rng_(config_.seed, kDataStream) {
  config_.validate();
  if (data_.vocab_size() != model_.config().vocab_size)
    throw_error("train: the data has ", data_.vocab_size(), " tokens but the model's vocab_size is ",
                model_.config().vocab_size);
  data_.check_length(model_.config().block_size);
  opt_ = std::make_unique<AdamW>(model_.named_parameters(), config_.adamw);
}

Trainer::~Trainer() {
  if (log_) std::fclose(log_);
}

namespace {
// How many PCG32 steps lead from state `from` to state `to` (LCG state' = a state + c mod 2^64): the classic
// jump-ahead argument, one bit of the distance per round. Every state of one stream is reachable.
std::uint64_t lcg_distance(std::uint64_t from, std::uint64_t to, std::uint64_t inc) {
  std::uint64_t mult = 6364136223846793005ULL, bit = 1, distance = 0;
  while (from != to && bit != 0) {
    if ((from & bit) != (to & bit)) {
      from = from * mult + inc;
      distance |= bit;
    }
    inc = (mult + 1) * inc;
    mult *= mult;
    bit <<= 1;
  }
  return distance;
}
}  // namespace

void check_resume_state(const TrainConfig& config, const TrainState& state) {
  if (state.step > config.max_iters)
    throw_error("resume: the checkpoint is at step ", state.step, ", beyond max_iters = ", config.max_iters);
  // The data Rng must be this run's: the stream of Rng(seed, kDataStream), advanced by at least one draw per
  // step taken so far (every batch draws) and by far less than 2^48 draws (a state of another seed lands there with
  // probability 2^-16).
  const Rng::State origin = Rng(config.seed, kDataStream).get_state();
  if (state.rng.inc != origin.inc)
    throw_error("resume: the train_state's data RNG is not on this run's stream (increment ", state.rng.inc,
                ", expected ", origin.inc, "); it was not written by this run");
  const std::uint64_t draws = lcg_distance(origin.state, state.rng.state, origin.inc);
  const std::uint64_t steps = static_cast<std::uint64_t>(state.step);
  if (draws < steps || draws > (1ULL << 48))
    throw_error("resume: the train_state's data RNG is ", draws, " draws from the start of seed ", config.seed,
                "'s stream, but ", state.step, " steps draw at least one number each and far fewer than 2^48 in all",
                "; the RNG state does not belong to this run's seed and step");
}

void Trainer::resume(const TrainState& state) {
  check_resume_state(config_, state);
  opt_->load_state(state.optimizer, state.adam_steps, "train_state");
  rng_.set_state(state.rng);
  if (state.has_dropout_rng) model_.set_dropout_rng_state(state.dropout_rng);
  step_ = state.step;
  resumed_ = true;
}

TrainState Trainer::state() const {
  TrainState s;
  s.step = step_;
  s.adam_steps = opt_->steps_taken();
  s.rng = rng_.get_state();
  s.has_dropout_rng = true;
  s.dropout_rng = model_.dropout_rng_state();
  for (auto& [name, t] : opt_->state_tensors()) s.optimizer[name] = t;
  s.train_config = config_.to_json();
  s.data = data_source_;
  return s;
}

Trainer::StepResult Trainer::train_step(const std::vector<Batch>& micro_batches, double lr) {
  if (micro_batches.empty()) throw_error("train_step: no micro-batches");
  StepResult r;
  {
    profile::Phase phase("zero_grad");
    opt_->zero_grad();
  }
  const double scale = 1.0 / static_cast<double>(micro_batches.size());
  double loss_sum = 0.0;
  for (const Batch& b : micro_batches) {
    Var loss;
    double value = 0.0;
    {
      profile::Phase phase("forward");
      Var logits = model_.forward(b.inputs, b.B, b.T);
      loss = model_.loss(logits, b.targets);
      value = loss.item();
    }
    loss_sum += value;
    profile::Phase phase("backward");
    (micro_batches.size() == 1 ? loss : loss * scale).backward();
  }
  r.loss = loss_sum * scale;
  const auto& params = opt_->params();
  // Stop before the update when anything is non-finite, so the weights stay the last good ones. The gradient
  // norm is the finiteness check (one pass); only on failure are the tensors scanned for a name. A parameter
  // whose value is already non-finite is the root cause and is named first, otherwise the first gradient.
  double norm = 0.0;
  {
    profile::Phase phase("grad_norm");
    norm = grad_norm(params);
  }
  if (!std::isfinite(r.loss) || !std::isfinite(norm)) {
    std::ostringstream msg;
    if (std::isfinite(r.loss))
      msg << "the loss is finite (" << r.loss << ") but a gradient is not";
    else
      msg << "the loss is " << r.loss;
    const std::string bad_value = first_nonfinite_value(params);
    const std::string bad_grad = bad_value.empty() ? first_nonfinite_grad(params) : "";
    if (!bad_value.empty())
      msg << "; first parameter with a non-finite value: " << bad_value;
    else if (!bad_grad.empty())
      msg << "; first parameter with a non-finite gradient: " << bad_grad;
    else {
      // every parameter and gradient is finite: the overflow is in the activations; find the layer
      const Batch& b = micro_batches.front();
      const std::vector<std::int32_t> row(b.inputs.begin(), b.inputs.begin() + b.T);
      const std::string where = locate_nonfinite(model_, row);
      msg << "; every parameter and gradient is finite, the overflow is in the activations"
          << (where.empty() ? std::string() : "; non-finite values first appear in " + where);
    }
    r.nonfinite = msg.str();
    r.grad_norm = NAN;
    return r;
  }
  r.grad_norm = norm;
  if (config_.grad_clip > 0.0 && norm > config_.grad_clip) {
    profile::Phase phase("clip");
    scale_gradients(params, config_.grad_clip / (norm + 1e-6));
  }
  bool finite = false;
  {
    profile::Phase phase("adamw");
    finite = opt_->step(lr);
  }
  {
    profile::Phase phase("zero_grad");
    opt_->zero_grad();
  }
  if (!finite)
    r.nonfinite = "the AdamW update made a parameter non-finite; first one: " + first_nonfinite_value(params);
  return r;
}

double Trainer::estimate_loss(Split split) {
  NoGrad no_grad;
  const bool was_training = model_.training();
  model_.eval();
  // The same windows at every evaluation: a fresh Rng per call, independent of the training stream.
  Rng eval_rng(config_.seed, kEvalStream + static_cast<std::uint64_t>(split));
  const std::int64_t T = model_.config().block_size;
  double total = 0.0;
  for (std::int64_t k = 0; k < config_.eval_iters; ++k) {
    Batch b = data_.batch(split, config_.batch_size, T, eval_rng);
    total += model_.loss(model_.forward(b.inputs, b.B, b.T), b.targets).item();
  }
  model_.train(was_training);
  return total / static_cast<double>(config_.eval_iters);
}

void Trainer::write_checkpoint() {
  if (config_.out_dir.empty()) return;
  const Tokenizer* tok = data_.tokenizer();
  const std::string task = data_.is_task() ? data_.name() : "";
  save_checkpoint(config_.out_dir, model_, tok, task, state());
}

void Trainer::open_log(bool resuming) {
  if (config_.out_dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(config_.out_dir, ec);
  if (ec) throw_error("train: cannot create directory '", config_.out_dir, "': ", ec.message());
  const std::string path = join_path(config_.out_dir, "log.csv");
  const char* header = "step,lr,train_loss,val_loss,tokens_per_second,grad_norm,eval_train_loss";
  std::vector<std::string> kept;
  if (resuming) {
    // keep the rows of the steps before the resume point; later ones are about to be redone
    std::ifstream in(path);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
      if (first) {
        first = false;
        continue;
      }
      std::int64_t it = -1;
      if (std::sscanf(line.c_str(), "%lld", reinterpret_cast<long long*>(&it)) == 1 && it < step_)
        kept.push_back(line);
    }
  }
  // The kept rows are written to a new file that replaces the old one in one rename, so a kill here loses no
  // row; the run then appends.
  std::string text = std::string(header) + "\n";
  for (const auto& line : kept) text += line + "\n";
  write_file_atomic(path, text);
  log_ = std::fopen(path.c_str(), "a");
  if (!log_) throw_error("cannot write '", path, "': ", std::strerror(errno));
  std::fflush(log_);
}

void Trainer::log_row(std::int64_t it, double lr, double loss, double val, double tps, double gnorm,
                      double eval_train) {
  if (!log_) return;
  auto num = [](double v) -> std::string {
    if (std::isnan(v)) return "";
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
  };
  std::fprintf(log_, "%lld,%s,%s,%s,%s,%s,%s\n", static_cast<long long>(it), num(lr).c_str(), num(loss).c_str(),
               num(val).c_str(), num(tps).c_str(), num(gnorm).c_str(), num(eval_train).c_str());
  if (std::fflush(log_) != 0 || std::ferror(log_))
    throw_error("cannot write '", join_path(config_.out_dir, "log.csv"), "': ", std::strerror(errno));
}

TrainResult Trainer::run() {
  TrainResult result;
  result.start_step = step_;
  const std::int64_t T = model_.config().block_size;
  const std::int64_t tokens_per_step = config_.batch_size * T * config_.grad_accum;
  SigintGuard sigint;
  open_log(resumed_);
  Progress progress(config_.max_iters, step_, config_.log_interval, config_.progress);
  if (resumed_) progress.message("resuming at step " + std::to_string(step_));
  model_.train();

  double timed_seconds = 0.0, all_seconds = 0.0;
  std::int64_t timed_steps = 0, run_steps = 0;
  const auto wall0 = std::chrono::steady_clock::now();
  auto current_tps = [&] {
    if (timed_steps > 0) return static_cast<double>(timed_steps * tokens_per_step) / timed_seconds;
    return all_seconds > 0 ? static_cast<double>(run_steps * tokens_per_step) / all_seconds : 0.0;
  };
  // Profiling stays on for this loop only, whatever way it ends (a throw included).
  struct ProfileScope {
    bool on;
    explicit ProfileScope(bool p) : on(p) {
      if (on) profile::reset(), profile::set_enabled(true);
    }
    ~ProfileScope() {
      if (on) profile::set_enabled(false);
    }
  } profile_scope(config_.profile);

  for (std::int64_t it = step_; it < config_.max_iters; ++it) {
    double val = NAN, eval_train = NAN;
    if (config_.eval_interval > 0 && it % config_.eval_interval == 0) {
      eval_train = estimate_loss(Split::Train);
      val = estimate_loss(Split::Val);
      char buf[160];
      std::snprintf(buf, sizeof buf, "step %lld: train loss %.4f, val loss %.4f", static_cast<long long>(it),
                    eval_train, val);
      progress.message(buf);
    }
    if (hooks.before_step) hooks.before_step(it, model_);
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = config_.schedule.at(it);
    if (config_.profile && run_steps == kWarmupSteps) profile::reset();  // profile the timed steps only
    std::vector<Batch> micro;
    micro.reserve(static_cast<std::size_t>(config_.grad_accum));
    {
      profile::Phase phase("batch");
      for (std::int64_t k = 0; k < config_.grad_accum; ++k)
        micro.push_back(data_.batch(Split::Train, config_.batch_size, T, rng_));
    }
    StepResult s = train_step(micro, lr);
    if (!s.nonfinite.empty()) {
      progress.finish();
      result.status = TrainStatus::NonFinite;
      std::ostringstream msg;
      msg << "training stopped at step " << it << ": " << s.nonfinite;
      if (!config_.out_dir.empty())
        msg << "; the last good checkpoint in " << config_.out_dir << " is kept (nothing was written for this run"
            << "'s bad state)";
      result.message = msg.str();
      log_row(it, lr, s.loss, val, NAN, s.grad_norm, eval_train);
      break;
    }
    const double dt = seconds_since(t0);
    ++run_steps;
    all_seconds += dt;
    if (run_steps > kWarmupSteps) {
      timed_seconds += dt;
      ++timed_steps;
    }
    step_ = it + 1;
    result.losses.push_back(s.loss);
    result.grad_norms.push_back(s.grad_norm);
    log_row(it, lr, s.loss, val, current_tps(), s.grad_norm, eval_train);
    progress.update({step_, s.loss, lr, current_tps(), seconds_since(wall0)});
    if (hooks.after_step) hooks.after_step(it, s.loss);

    if (training_stop_requested()) {
      progress.finish();
      write_checkpoint();
      result.status = TrainStatus::Interrupted;
      result.message = "interrupted at step " + std::to_string(step_) +
                       (config_.out_dir.empty() ? std::string() : "; checkpoint written to " + config_.out_dir);
      clear_training_stop();
      break;
    }
    if (config_.checkpoint_interval > 0 && step_ % config_.checkpoint_interval == 0 && step_ < config_.max_iters)
      write_checkpoint();
  }
  progress.finish();
  if (config_.profile) {
    profile::set_enabled(false);
    result.profile = profile::entries();
    result.profiled_steps = run_steps > kWarmupSteps ? timed_steps : run_steps;
  }

  result.steps = step_;
  result.tokens = run_steps * tokens_per_step;
  result.seconds = timed_steps > 0 ? timed_seconds : all_seconds;
  result.tokens_per_second = current_tps();
  if (result.status != TrainStatus::NonFinite) {
    result.train_loss = estimate_loss(Split::Train);
    result.val_loss = estimate_loss(Split::Val);
    char buf[160];
    std::snprintf(buf, sizeof buf, "step %lld: train loss %.4f, val loss %.4f", static_cast<long long>(step_),
                  result.train_loss, result.val_loss);
    progress.message(buf);
    log_row(step_, NAN, NAN, result.val_loss, NAN, NAN, result.train_loss);
    if (result.status == TrainStatus::Completed) write_checkpoint();
  }
  if (log_) {
    std::fclose(log_);
    log_ = nullptr;
  }
  return result;
}

}  // namespace gradlab
