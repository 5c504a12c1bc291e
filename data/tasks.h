#pragma once
// The StableMask paper's absolute-position tasks (docs/stablemask.md#claims-the-course-measures, paper App. B.2), as Datasets with
// per-position targets. Accuracy is the metric; loss and accuracy count only positions with a target (>= 0).
//
// Every task is built for a maximum length T (its number of position classes) and serves sequences of any
// length 1..T. One vocabulary holds both the class tokens and the input symbols, so a GPT with tied
// embeddings predicts targets over the same ids it reads:
//   ids [0, C)        class tokens: "position k" (C = T) or "even"/"odd" (C = 2)
//   ids [C, C + S)    input symbols
//
// position-index   S = 1: every input is the same symbol; the target at position t is class t.
// position-marker  S = 9: 8 filler symbols drawn uniformly and one marker symbol (id C + 8) at a position p
//                  drawn uniformly in [0, length); the only target is at p: class p. Others are -1.
// position-parity  S = 8: filler symbols drawn uniformly; the target at position t is t % 2 (class 0 even,
//                  1 odd). (Random fillers rather than identical inputs, so that it differs from
//                  position-index; the content carries no information about position either way.)
//
// Training batches draw from the caller's Rng. The evaluation sets are fixed (their own seeds, one per split):
// position-index 1 sequence (all are identical), position-marker one sequence per marker position,
// position-parity 64 sequences.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace gradlab {

enum class TaskKind { PositionIndex, PositionMarker, PositionParity };

class PositionTask : public Dataset {
 public:
  PositionTask(TaskKind kind, std::int64_t T);

  std::string name() const override;
  std::int64_t vocab_size() const override { return classes_ + symbols_; }
  Batch batch(Split split, std::int64_t B, std::int64_t T, Rng& rng) const override;
  std::int64_t eval_window_count(Split split, std::int64_t T) const override;
  Batch eval_windows(Split split, std::int64_t T, std::int64_t first, std::int64_t count) const override;
  using Dataset::eval_windows;
  void check_length(std::int64_t T) const override;
  bool is_task() const override { return true; }
  std::string describe() const override;

  TaskKind kind() const { return kind_; }
  std::int64_t max_length() const { return T_; }
  std::int64_t class_count() const { return classes_; }
  std::int64_t symbol_count() const { return symbols_; }
  std::int32_t marker_id() const;  // position-marker only
  // A readable name for any id: "<pos 3>", "<even>", "x", "a".."h", "M".
  std::string token_name(std::int32_t id) const;

 private:
  void fill_row(std::int64_t T, Rng& rng, std::int32_t* inputs, std::int32_t* targets) const;
  TaskKind kind_;
  std::int64_t T_;
  std::int64_t classes_, symbols_;
};

// The valid task names, in a fixed order.
const std::vector<std::string>& task_names();
// Throws "unknown task 'x' (valid: position-index, position-marker, position-parity)" for an unknown name,
// and for T outside [1, 65536].
std::unique_ptr<PositionTask> make_task(const std::string& name, std::int64_t T);

}  // namespace gradlab
