#include "autograd/profile.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>

#include "tensor/error.h"

namespace gradlab::profile {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::atomic<bool> g_enabled{false};
std::mutex g_mutex;
std::vector<Entry> g_entries;                           // in the order first seen
std::map<std::pair<std::string, Kind>, std::size_t> g_index;  // (name, kind) -> position in g_entries
thread_local std::int64_t t_last_ns = 0;                // end of the previous forward interval on this thread

}  // namespace

void set_enabled(bool on) {
  g_enabled.store(on, std::memory_order_relaxed);
  if (on) mark();
}

bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_entries.clear();
  g_index.clear();
  t_last_ns = now_ns();
}

void mark() { t_last_ns = now_ns(); }

void record(Kind kind, const std::string& name, double seconds) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto [it, inserted] = g_index.try_emplace({name, kind}, g_entries.size());
  if (inserted) g_entries.push_back(Entry{name, kind, 0.0, 0});
  Entry& e = g_entries[it->second];
  e.seconds += seconds;
  ++e.calls;
}

void op_recorded(const std::string& op) {
  const std::int64_t now = now_ns();
  record(Kind::Forward, op, static_cast<double>(now - t_last_ns) * 1e-9);
  t_last_ns = now;
}

Phase::Phase(const char* name) : name_(enabled() ? name : nullptr) {
  if (!name_) return;
  start_ns_ = now_ns();
  t_last_ns = start_ns_;  // the first op inside the phase starts its forward interval here
}

Phase::~Phase() {
  if (!name_) return;
  record(Kind::Phase, name_, static_cast<double>(now_ns() - start_ns_) * 1e-9);
  mark();
}

std::vector<Entry> entries() {
  std::vector<Entry> phases, ops;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (const Entry& e : g_entries) (e.kind == Kind::Phase ? phases : ops).push_back(e);
  }
  // One op's forward and backward are ranked by their sum.
  std::map<std::string, double> total;
  for (const Entry& e : ops) total[e.name] += e.seconds;
  std::stable_sort(ops.begin(), ops.end(), [&](const Entry& a, const Entry& b) {
    const double ta = total[a.name], tb = total[b.name];
    if (ta != tb) return ta > tb;
    if (a.name != b.name) return a.name < b.name;
    return a.kind == Kind::Forward && b.kind == Kind::Backward;
  });
  phases.insert(phases.end(), ops.begin(), ops.end());
  return phases;
}

std::string table(const std::vector<Entry>& entries, std::int64_t steps, int top_ops) {
  if (steps <= 0) throw_error("profile::table: got ", steps, " steps, expected at least 1 profiled step");
  const double per = 1e3 / static_cast<double>(steps);  // seconds in total -> ms per step
  double step_ms = 0.0;
  for (const Entry& e : entries)
    if (e.kind == Kind::Phase) step_ms += e.seconds * per;
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "| phase | ms per step | share |\n|---|---:|---:|\n");
  out += buf;
  for (const Entry& e : entries) {
    if (e.kind != Kind::Phase) continue;
    std::snprintf(buf, sizeof buf, "| %s | %.3f | %.1f%% |\n", e.name.c_str(), e.seconds * per,
                  step_ms > 0 ? 100.0 * e.seconds * per / step_ms : 0.0);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "| all phases | %.3f | 100%% |\n\n", step_ms);
  out += buf;
  // Ops: one row per name, forward and backward side by side, in entries()' order.
  struct Row { std::string name; double fwd = 0, bwd = 0; std::int64_t calls = 0; };
  std::vector<Row> rows;
  for (const Entry& e : entries) {
    if (e.kind == Kind::Phase) continue;
    if (rows.empty() || rows.back().name != e.name) rows.push_back(Row{e.name});
    (e.kind == Kind::Forward ? rows.back().fwd : rows.back().bwd) += e.seconds * per;
    if (e.kind == Kind::Forward) rows.back().calls = e.calls;
  }
  out += "| op | calls per step | forward ms | backward ms | total ms | share of the step |\n|---|---:|---:|---:|---:|---:|\n";
  double rest_fwd = 0, rest_bwd = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    if (static_cast<int>(i) >= top_ops) {
      rest_fwd += r.fwd, rest_bwd += r.bwd;
      continue;
    }
    std::snprintf(buf, sizeof buf, "| %s | %.1f | %.3f | %.3f | %.3f | %.1f%% |\n", r.name.c_str(),
                  static_cast<double>(r.calls) / static_cast<double>(steps), r.fwd, r.bwd, r.fwd + r.bwd,
                  step_ms > 0 ? 100.0 * (r.fwd + r.bwd) / step_ms : 0.0);
    out += buf;
  }
  if (rows.size() > static_cast<std::size_t>(top_ops)) {
    std::snprintf(buf, sizeof buf, "| (%zu other ops) | | %.3f | %.3f | %.3f | %.1f%% |\n",
                  rows.size() - static_cast<std::size_t>(top_ops), rest_fwd, rest_bwd, rest_fwd + rest_bwd,
                  step_ms > 0 ? 100.0 * (rest_fwd + rest_bwd) / step_ms : 0.0);
    out += buf;
  }
  return out;
}

}  // namespace gradlab::profile
