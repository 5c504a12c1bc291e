#include "data/tasks.h"

#include <sstream>

#include "tensor/error.h"

namespace gradlab {

namespace {
constexpr std::int64_t kMaxTaskLength = 65536;
constexpr std::int64_t kParityEvalSequences = 64;
}  // namespace

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = {"position-index", "position-marker", "position-parity"};
  return names;
}

PositionTask::PositionTask(TaskKind kind, std::int64_t T) : kind_(kind), T_(T) {
  if (T < 1 || T > kMaxTaskLength)
    throw_error("task: maximum length T = ", T, ", expected 1 .. ", kMaxTaskLength);
  switch (kind) {
    case TaskKind::PositionIndex: classes_ = T, symbols_ = 1; break;
    case TaskKind::PositionMarker: classes_ = T, symbols_ = 9; break;
    case TaskKind::PositionParity: classes_ = 2, symbols_ = 8; break;
  }
}

std::string PositionTask::name() const { return task_names()[static_cast<std::size_t>(kind_)]; }

std::int32_t PositionTask::marker_id() const {
  if (kind_ != TaskKind::PositionMarker) throw_error("task ", name(), ": has no marker symbol");
  return static_cast<std::int32_t>(classes_ + 8);
}

std::string PositionTask::token_name(std::int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw_error("task ", name(), ": id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  if (id < classes_) {
    if (kind_ == TaskKind::PositionParity) return id == 0 ? "<even>" : "<odd>";
    return "<pos " + std::to_string(id) + ">";
  }
  const std::int64_t symbol = id - classes_;
  if (kind_ == TaskKind::PositionIndex) return "x";
  if (kind_ == TaskKind::PositionMarker && symbol == 8) return "M";
  return std::string(1, static_cast<char>('a' + symbol));
}

void PositionTask::check_length(std::int64_t T) const {
  if (T < 1 || T > T_)
    throw_error("task ", name(), ": sequence length ", T, ", expected 1 .. ", T_,
                " (the task was built for T = ", T_, ": one class per position)");
}

// One sequence of length T: inputs[t] and targets[t] for t in [0, T).
void PositionTask::fill_row(std::int64_t T, Rng& rng, std::int32_t* inputs, std::int32_t* targets) const {
  const auto first_symbol = static_cast<std::int32_t>(classes_);
  switch (kind_) {
    case TaskKind::PositionIndex:
      for (std::int64_t t = 0; t < T; ++t) inputs[t] = first_symbol, targets[t] = static_cast<std::int32_t>(t);
      break;
    case TaskKind::PositionMarker: {
      for (std::int64_t t = 0; t < T; ++t) inputs[t] = first_symbol + static_cast<std::int32_t>(rng.below(8)), targets[t] = -1;
      const auto p = static_cast<std::int64_t>(rng.below(static_cast<std::uint32_t>(T)));
      inputs[p] = marker_id();
      targets[p] = static_cast<std::int32_t>(p);
      break;
    }
    case TaskKind::PositionParity:
      for (std::int64_t t = 0; t < T; ++t)
        inputs[t] = first_symbol + static_cast<std::int32_t>(rng.below(8)), targets[t] = static_cast<std::int32_t>(t % 2);
      break;
  }
}

Batch PositionTask::batch(Split split, std::int64_t B, std::int64_t T, Rng& rng) const {
  // inputs, targets are (B, T); each row an independent task instance
  if (B <= 0 || B > (1 << 24)) throw_error("task ", name(), ": batch size ", B, ", expected 1 .. 2^24");
  check_length(T);
  Batch out;
  out.B = B, out.T = T;
  out.inputs.resize(static_cast<std::size_t>(B * T));
  out.targets.resize(static_cast<std::size_t>(B * T));
  for (std::int64_t b = 0; b < B; ++b) fill_row(T, rng, &out.inputs[b * T], &out.targets[b * T]);
  return out;
}

std::int64_t PositionTask::eval_window_count(Split split, std::int64_t T) const {
  check_length(T);
  switch (kind_) {
    case TaskKind::PositionIndex: return 1;
    case TaskKind::PositionMarker: return T;
    case TaskKind::PositionParity: return kParityEvalSequences;
  }
  return 0;
}

Batch PositionTask::eval_windows(Split split, std::int64_t T, std::int64_t first, std::int64_t count) const {
  // a fixed set: sequence k is the same for a given (task, split, T, k) whatever first/count select
  const std::int64_t total = eval_window_count(split, T);
  if (first < 0 || count <= 0 || first > total || count > total - first)
    throw_error("task ", name(), ": evaluation sequences [", first, ", ", first + count, ") outside [0, ", total, ")");
  Batch out;
  out.B = count, out.T = T;
  out.inputs.resize(static_cast<std::size_t>(count * T));
  out.targets.resize(static_cast<std::size_t>(count * T));
  Rng rng(split == Split::Train ? 9001 : 9002, 77);
  for (std::int64_t k = 0; k < first + count; ++k) {
    std::vector<std::int32_t> in(static_cast<std::size_t>(T)), tg(static_cast<std::size_t>(T));
    fill_row(T, rng, in.data(), tg.data());
    if (kind_ == TaskKind::PositionMarker) {
      // exhaustive over marker positions: move the marker to position k
      for (std::int64_t t = 0; t < T; ++t) {
        if (tg[t] >= 0) in[t] = static_cast<std::int32_t>(classes_) + static_cast<std::int32_t>(rng.below(8)), tg[t] = -1;
      }
      in[k] = marker_id();
      tg[k] = static_cast<std::int32_t>(k);
    }
    if (k < first) continue;
    std::copy(in.begin(), in.end(), out.inputs.begin() + (k - first) * T);
    std::copy(tg.begin(), tg.end(), out.targets.begin() + (k - first) * T);
  }
  return out;
}

std::string PositionTask::describe() const {
  std::ostringstream out;
  out << "task '" << name() << "': max length " << T_ << ", " << classes_ << " classes + " << symbols_
      << " input symbols = vocabulary of " << vocab_size();
  return out.str();
}

std::unique_ptr<PositionTask> make_task(const std::string& name, std::int64_t T) {
  const auto& names = task_names();
  for (std::size_t k = 0; k < names.size(); ++k)
    if (names[k] == name) return std::make_unique<PositionTask>(static_cast<TaskKind>(k), T);
  throw_error("unknown task '", name, "' (valid: position-index, position-marker, position-parity)");
}

}  // namespace gradlab
