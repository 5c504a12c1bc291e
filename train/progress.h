#pragma once
// Progress of a training run on stderr.
//
// On a terminal: one live line, rewritten in place with '\r' (at most 10 times a second, and at the last step):
//   step   120/2000 [#####.........................]  6% | loss 2.1432 | lr 1.00e-03 | 9.8k tok/s | ETA 3m12s
// Otherwise (a pipe, a log file, CI): one plain line every `interval` steps and at the last step, no '\r'.
// message() prints a full line (an evaluation result, a checkpoint) without breaking the live bar.
#include <cstdint>
#include <cstdio>
#include <string>

namespace gradlab {

struct ProgressStats {
  std::int64_t step = 0;  // completed steps (1..total)
  double loss = 0.0;
  double lr = 0.0;
  double tokens_per_second = 0.0;
  double seconds = 0.0;  // wall time so far (for the ETA)
};

class Progress {
 public:
  enum class Mode { Auto, Live, Plain, Quiet };
  // total: the last step; start: the step the run (or resumed run) started from, for the ETA.
  Progress(std::int64_t total, std::int64_t start, std::int64_t interval, Mode mode = Mode::Auto,
           std::FILE* out = stderr);
  ~Progress();
  void update(const ProgressStats& s);
  void message(const std::string& line);
  void finish();  // ends the live line
  bool live() const { return mode_ == Mode::Live; }

  // The text of one status line (no '\r' or newline); exposed for tests.
  std::string format(const ProgressStats& s) const;

 private:
  std::int64_t total_, start_, interval_;
  Mode mode_;
  std::FILE* out_;
  bool line_open_ = false;
  std::size_t last_width_ = 0;
  double last_draw_ = -1.0;  // seconds (ProgressStats::seconds) of the last live redraw
};

// "3m12s", "1h04m", "12s"
std::string format_duration(double seconds);
// "9.8k", "512", "1.2M"
std::string format_count(double value);

}  // namespace gradlab
