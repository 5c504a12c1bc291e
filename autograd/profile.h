#pragma once
// Where a training step's time goes: wall time per op (forward and backward) and per phase of the step
// (`gradlab train --profile`). Off by default; when off, each op pays one relaxed atomic load.
//
// How it measures, on the thread that builds the graph:
//   forward of an op  = the time from the previous recorded op (or from mark()) to this op's make_result, so it
//                       includes the glue between ops, and the kernels' parallel work on the pool;
//   backward of an op = the time of its backward function inside Var::backward;
//   a phase           = a Phase object's lifetime (the trainer's batch, forward, backward, clipping, AdamW ...).
// Only ops recorded with gradients enabled count as forward (evaluation under NoGrad is not a training step).
#include <cstdint>
#include <string>
#include <vector>

namespace gradlab::profile {

enum class Kind { Phase, Forward, Backward };

struct Entry {
  std::string name;  // op name ("matmul", "attention_fused", ...) or phase name ("adamw", ...)
  Kind kind = Kind::Phase;
  double seconds = 0.0;     // summed over every call since reset()
  std::int64_t calls = 0;
};

void set_enabled(bool on);  // turning it on also calls mark()
bool enabled();
void reset();               // drops everything recorded so far
void mark();                // the next op's forward interval starts now (call before a forward pass)

// Adds one call of `seconds` to (name, kind). Used by make_result, Var::backward and Phase.
void record(Kind kind, const std::string& name, double seconds);
// make_result's hook: the forward interval of `op` ends now.
void op_recorded(const std::string& op);

// Times one phase of a step while profiling is on. Its start and its end each start a new forward interval,
// so time outside the phase is never counted as the forward of an op inside it, nor the phase's as the next op's.
class Phase {
 public:
  explicit Phase(const char* name);
  ~Phase();
  Phase(const Phase&) = delete;
  Phase& operator=(const Phase&) = delete;

 private:
  const char* name_;  // nullptr when profiling was off at construction
  std::int64_t start_ns_ = 0;
};

// Everything recorded since reset(): phases first, in the order first seen, then ops by forward + backward
// time, most first.
std::vector<Entry> entries();

// A markdown report of entries() per step: the phases with their share of the step, then the `top_ops` ops that
// took the most time (forward, backward, calls). Throws gradlab::Error unless steps > 0.
std::string table(const std::vector<Entry>& entries, std::int64_t steps, int top_ops = 15);

}  // namespace gradlab::profile
