#include "train/progress.h"

#include <unistd.h>

#include <cmath>

#include "tensor/error.h"

namespace gradlab {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<std::int64_t>(std::llround(seconds));
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
  return buf;
}

std::string format_count(double value) {
  char buf[32];
  if (!std::isfinite(value)) return "?";
  if (value >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1fM", value / 1e6);
  else if (value >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fk", value / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", value);
  return buf;
}

Progress::Progress(std::int64_t total, std::int64_t start, std::int64_t interval, Mode mode, std::FILE* out)
    : total_(total), start_(start), interval_(interval < 1 ? 1 : interval), mode_(mode), out_(out) {
  if (total < 0 || start < 0 || start > total)
    throw_error("Progress: steps ", start, "..", total, ", expected 0 <= start <= total");
  if (mode_ == Mode::Auto) mode_ = ::isatty(::fileno(out_)) ? Mode::Live : Mode::Plain;
}

Progress::~Progress() { finish(); }

std::string Progress::format(const ProgressStats& s) const {
  const std::int64_t done = s.step - start_;
  const std::int64_t left = total_ - s.step;
  const double eta = done > 0 ? s.seconds / static_cast<double>(done) * static_cast<double>(left) : NAN;
  const int width = 24;
  const double frac = total_ > 0 ? static_cast<double>(s.step) / static_cast<double>(total_) : 1.0;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(width, '.');
  char buf[256];
  std::snprintf(buf, sizeof buf, "step %6lld/%lld [%s] %3d%% | loss %.4f | lr %.2e | %s tok/s | ETA %s",
                static_cast<long long>(s.step), static_cast<long long>(total_), bar.c_str(),
                static_cast<int>(frac * 100.0), s.loss, s.lr, format_count(s.tokens_per_second).c_str(),
                format_duration(eta).c_str());
  return buf;
}

void Progress::update(const ProgressStats& s) {
  if (mode_ == Mode::Quiet) return;
  if (mode_ == Mode::Live) {
    if (last_draw_ >= 0.0 && s.seconds - last_draw_ < 0.1 && s.step != total_) return;
    last_draw_ = s.seconds;
    std::string line = format(s);
    const std::size_t width = line.size();
    if (width < last_width_) line.append(last_width_ - width, ' ');  // erase the longer previous line
    last_width_ = width;
    std::fprintf(out_, "\r%s", line.c_str());
    std::fflush(out_);
    line_open_ = true;
    return;
  }
  if (s.step % interval_ == 0 || s.step == total_ || s.step == start_ + 1) {
    std::fprintf(out_, "%s\n", format(s).c_str());
    std::fflush(out_);
  }
}

void Progress::message(const std::string& line) {
  if (mode_ == Mode::Quiet) return;
  if (line_open_) {
    std::fprintf(out_, "\r%*s\r", static_cast<int>(last_width_), "");
    line_open_ = false;
    last_width_ = 0;
  }
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void Progress::finish() {
  if (line_open_) {
    std::fprintf(out_, "\n");
    std::fflush(out_);
    line_open_ = false;
  }
}

}  // namespace gradlab
