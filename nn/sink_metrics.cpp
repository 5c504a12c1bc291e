#include "nn/sink_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensor/error.h"

namespace gradlab {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(double sum, std::int64_t n) { return n > 0 ? sum / static_cast<double>(n) : kNaN; }

// The mean of each field over a set of heads (NaN fields stay NaN).
HeadSink mean_of(const std::vector<HeadSink>& heads, std::int64_t layer) {
  HeadSink m;
  m.layer = layer;
  m.head = -1;
  const double n = static_cast<double>(heads.size());
  for (const HeadSink& h : heads) {
    m.first_raw += h.first_raw / n;
    m.first_norm += h.first_norm / n;
    m.late_raw += h.late_raw / n;
    m.late_norm += h.late_norm / n;
    m.bos_raw += h.bos_raw / n;
    m.bos_norm += h.bos_norm / n;
    m.mid_bos_norm += h.mid_bos_norm / n;
    m.real_mass += h.real_mass / n;
  }
  return m;
}

nlohmann::ordered_json num(double v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr); }

nlohmann::ordered_json head_json(const HeadSink& h) {
  nlohmann::ordered_json j;
  j["layer"] = h.layer;
  if (h.head >= 0) j["head"] = h.head;
  j["first_raw"] = num(h.first_raw);
  j["first_norm"] = num(h.first_norm);
  j["late_raw"] = num(h.late_raw);
  j["late_norm"] = num(h.late_norm);
  j["bos_raw"] = num(h.bos_raw);
  j["bos_norm"] = num(h.bos_norm);
  j["mid_bos_norm"] = num(h.mid_bos_norm);
  j["real_mass"] = num(h.real_mass);
  j["pseudo_mass"] = num(h.pseudo_mass());
  return j;
}

std::string csv_num(double v) {
  if (!std::isfinite(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

}  // namespace

SinkAccumulator::SinkAccumulator(SinkOptions options) : options_(options) {
  if (options_.min_row < 1) throw_error("sink metrics: min_row = ", options_.min_row, ", expected >= 1");
  if (!(options_.eps >= 0.0 && options_.eps <= 1.0))
    throw_error("sink metrics: eps = ", options_.eps, ", expected a share in [0, 1]");
  if (options_.bos < -1) throw_error("sink metrics: bos = ", options_.bos, ", expected a token id or -1");
}

void SinkAccumulator::add(const Tensor& maps, const std::vector<std::int32_t>& ids) {
  // maps is (n_layer, n_head, T, T), ids is (T)
  if (maps.dim() != 4 || maps.size(2) != maps.size(3))
    throw_error("sink metrics: got attention maps of shape ", shape_str(maps.shape()),
                ", expected (n_layer, n_head, T, T)");
  const std::int64_t NL = maps.size(0), NH = maps.size(1), T = maps.size(2);
  if (static_cast<std::int64_t>(ids.size()) != T)
    throw_error("sink metrics: ", ids.size(), " token ids for maps of T = ", T, ", expected T ids");
  if (T < 2) throw_error("sink metrics: a text of T = ", T, " tokens, expected at least 2 (row 0 sees only key 0)");
  if (probes_ == 0) {
    n_layer_ = NL, n_head_ = NH;
    sums_.assign(static_cast<std::size_t>(NL * NH), Sums{});
  } else if (NL != n_layer_ || NH != n_head_) {
    throw_error("sink metrics: maps of ", NL, " layers x ", NH, " heads after ", n_layer_, " x ", n_head_,
                ", expected every probe from the same model");
  }
  // late rows: i >= min_row, or rows 1.. for a probe too short to have any
  const std::int64_t min_row = T > options_.min_row ? options_.min_row : 1;
  min_row_used_ = probes_ == 0 ? min_row : std::min(min_row_used_, min_row);
  const std::vector<float> a = maps.to_floats();
  // per row: does it see a BOS at j <= i (any / after position 0)?
  std::vector<char> sees_bos(static_cast<std::size_t>(T), 0), sees_mid(static_cast<std::size_t>(T), 0);
  bool any = false, mid = false;
  for (std::int64_t i = 0; i < T; ++i) {
    if (options_.bos >= 0 && ids[static_cast<std::size_t>(i)] == options_.bos) {
      any = true;
      mid = mid || i >= 1;
    }
    sees_bos[static_cast<std::size_t>(i)] = any;
    sees_mid[static_cast<std::size_t>(i)] = mid;
  }
  for (std::int64_t i = 1; i < T; ++i) {
    first_rows_ += 1;
    late_rows_ += i >= min_row;
    bos_rows_ += sees_bos[static_cast<std::size_t>(i)];
    mid_bos_rows_ += sees_mid[static_cast<std::size_t>(i)];
    if (i >= min_row) uniform_sum_ += 1.0 / static_cast<double>(i + 1);
  }
  for (std::int64_t lh = 0; lh < NL * NH; ++lh) {
    Sums& s = sums_[static_cast<std::size_t>(lh)];
    const float* m = a.data() + lh * T * T;
    for (std::int64_t i = 1; i < T; ++i) {
      const float* row = m + i * T;
      double R = 0, bos = 0, mid_bos = 0;
      for (std::int64_t j = 0; j <= i; ++j) {
        R += row[j];
        if (options_.bos >= 0 && ids[static_cast<std::size_t>(j)] == options_.bos) {
          bos += row[j];
          if (j >= 1) mid_bos += row[j];
        }
      }
      const double inv = R > 0 ? 1.0 / R : 0.0;
      const double first = row[0];
      s.first_raw += first;
      s.first_norm += first * inv;
      if (i >= min_row) {
        s.late_raw += first;
        s.late_norm += first * inv;
        s.real_mass += R;
      }
      if (sees_bos[static_cast<std::size_t>(i)]) {
        s.bos_raw += bos;
        s.bos_norm += bos * inv;
      }
      if (sees_mid[static_cast<std::size_t>(i)]) s.mid_bos_norm += mid_bos * inv;
    }
  }
  probes_ += 1;
}

SinkReport SinkAccumulator::report() const {
  if (probes_ == 0) throw_error("sink metrics: no probe text was added");
  SinkReport r;
  r.n_layer = n_layer_, r.n_head = n_head_, r.probes = probes_;
  r.min_row = min_row_used_;
  r.eps = options_.eps;
  r.uniform_late = ratio(uniform_sum_, late_rows_);
  for (std::int64_t l = 0; l < n_layer_; ++l) {
    std::vector<HeadSink> layer;
    for (std::int64_t h = 0; h < n_head_; ++h) {
      const Sums& s = sums_[static_cast<std::size_t>(l * n_head_ + h)];
      HeadSink hs;
      hs.layer = l, hs.head = h;
      hs.first_raw = ratio(s.first_raw, first_rows_);
      hs.first_norm = ratio(s.first_norm, first_rows_);
      hs.late_raw = ratio(s.late_raw, late_rows_);
      hs.late_norm = ratio(s.late_norm, late_rows_);
      hs.bos_raw = ratio(s.bos_raw, bos_rows_);
      hs.bos_norm = ratio(s.bos_norm, bos_rows_);
      hs.mid_bos_norm = ratio(s.mid_bos_norm, mid_bos_rows_);
      hs.real_mass = ratio(s.real_mass, late_rows_);
      r.heads.push_back(hs);
      layer.push_back(hs);
      if (hs.first_norm > options_.eps) r.sink_heads += 1;
      if (hs.late_norm > options_.eps) r.sink_heads_late += 1;
      if (r.heads.size() == 1 || hs.late_norm > r.strongest.late_norm) r.strongest = hs;
    }
    r.layers.push_back(mean_of(layer, l));
  }
  r.mean = mean_of(r.heads, -1);
  r.sink_ratio = static_cast<double>(r.sink_heads) / static_cast<double>(r.heads.size());
  r.sink_ratio_late = static_cast<double>(r.sink_heads_late) / static_cast<double>(r.heads.size());
  return r;
}

SinkReport sink_metrics(const Tensor& maps, const std::vector<std::int32_t>& ids, const SinkOptions& options) {
  SinkAccumulator acc(options);
  acc.add(maps, ids);
  return acc.report();
}

Tensor record_attention(GPT& model, const std::vector<std::int32_t>& ids) {
  NoGrad no_grad;
  const bool was_training = model.training();
  model.eval();
  AttentionRecorder rec;
  ForwardOptions fo;
  fo.recorder = &rec;
  model.forward(ids, 1, static_cast<std::int64_t>(ids.size()), fo);
  model.train(was_training);
  return rec.stacked(0);
}

MassiveActivations massive_activations(GPT& model, const std::vector<std::vector<std::int32_t>>& probes) {
  if (probes.empty()) throw_error("massive_activations: no probe text, expected at least one");
  NoGrad no_grad;
  const bool was_training = model.training();
  model.eval();
  const std::size_t L = static_cast<std::size_t>(model.config().n_layer);
  std::vector<std::vector<double>> mags(L);  // |h| of every element, per layer
  for (const auto& ids : probes) {
    AttentionRecorder rec;
    ForwardOptions fo;
    fo.recorder = &rec;
    model.forward(ids, 1, static_cast<std::int64_t>(ids.size()), fo);
    for (std::size_t l = 0; l < L; ++l)
      for (double v : rec.residual[l].to_vector()) mags[l].push_back(std::abs(v));
  }
  model.train(was_training);
  MassiveActivations out;
  for (auto& m : mags) {
    const double top = *std::max_element(m.begin(), m.end());
    // the median of an even count is the mean of the two middle elements
    const std::size_t n = m.size(), h = n / 2;
    std::nth_element(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(h), m.end());
    double med = m[h];
    if (n % 2 == 0) med = 0.5 * (med + *std::max_element(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(h)));
    out.top.push_back(top);
    out.median.push_back(med);
    out.ratio.push_back(med > 0 ? top / med : std::numeric_limits<double>::infinity());
  }
  return out;
}

SinkReport measure_sinks(GPT& model, const std::vector<std::vector<std::int32_t>>& probes, const SinkOptions& options) {
  if (probes.empty()) throw_error("measure_sinks: no probe text, expected at least one");
  SinkAccumulator acc(options);
  for (const auto& ids : probes) acc.add(record_attention(model, ids), ids);
  return acc.report();
}

std::string sink_csv_header(const std::string& prefix) {
  return prefix +
         "layer,head,first_raw,first_norm,late_raw,late_norm,bos_raw,bos_norm,mid_bos_norm,real_mass,pseudo_mass,"
         "sink\n";
}

std::string sink_csv_rows(const SinkReport& r, const std::string& prefix_values) {
  std::string out;
  for (const HeadSink& h : r.heads) {
    out += prefix_values + std::to_string(h.layer) + "," + std::to_string(h.head);
    for (double v : {h.first_raw, h.first_norm, h.late_raw, h.late_norm, h.bos_raw, h.bos_norm, h.mid_bos_norm,
                     h.real_mass, h.pseudo_mass()}) {
      out += ',';  // not "," + csv_num(v): GCC 12 at -O3 on aarch64 warns (-Wrestrict, a false positive) there
      out += csv_num(v);
    }
    out += h.first_norm > r.eps ? ",1" : ",0";
    out += h.late_norm > r.eps ? ",1\n" : ",0\n";
  }
  return out;
}

std::string sink_json(const SinkReport& r) {
  nlohmann::ordered_json j;
  j["probes"] = r.probes;
  j["min_row"] = r.min_row;
  j["eps"] = r.eps;
  j["sink_ratio"] = r.sink_ratio;
  j["sink_heads"] = r.sink_heads;
  j["sink_ratio_late"] = r.sink_ratio_late;
  j["sink_heads_late"] = r.sink_heads_late;
  j["uniform_late"] = num(r.uniform_late);
  j["strongest"] = head_json(r.strongest);
  j["mean"] = head_json(r.mean);
  j["layers"] = nlohmann::ordered_json::array();
  for (const HeadSink& l : r.layers) j["layers"].push_back(head_json(l));
  j["heads"] = nlohmann::ordered_json::array();
  for (const HeadSink& h : r.heads) j["heads"].push_back(head_json(h));
  return j.dump();
}

std::string format_sink_report(const SinkReport& r) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "%-6s %5s | %9s %9s | %9s %9s | %9s %9s | %7s\n", "layer", "head", "key0 raw",
                "key0 norm", "rows>=8", "norm", "BOS norm", "mid BOS", "real R");
  out << line;
  for (const HeadSink& h : r.heads) {
    std::snprintf(line, sizeof line, "%-6lld %5lld | %9.4f %9.4f | %9.4f %9.4f | %9.4f %9.4f | %7.4f%s\n",
                  (long long)h.layer, (long long)h.head, h.first_raw, h.first_norm, h.late_raw, h.late_norm,
                  h.bos_norm, h.mid_bos_norm, h.real_mass, h.late_norm > r.eps ? "  sink" : "");
    out << line;
  }
  out << format_sink_summary(r);
  return out.str();
}

std::string format_sink_summary(const SinkReport& r) {
  char line[512];
  std::snprintf(line, sizeof line,
                "over %lld probe texts, rows i >= %lld: mean key-0 share %.4f raw, %.4f normalised (uniform rows: "
                "%.4f, so %.1fx); sink ratio %.3f (%lld of %zu heads above eps = %.2f on rows i >= 1; %lld on rows "
                "i >= %lld); strongest head L%lld/H%lld at %.4f; mean real mass %.4f (pseudo %.4f)\n",
                (long long)r.probes, (long long)r.min_row, r.mean.late_raw, r.mean.late_norm, r.uniform_late,
                r.mean.late_norm / r.uniform_late, r.sink_ratio, (long long)r.sink_heads, r.heads.size(), r.eps,
                (long long)r.sink_heads_late, (long long)r.min_row, (long long)r.strongest.layer, (long long)r.strongest.head, r.strongest.late_norm, r.mean.real_mass,
                r.mean.pseudo_mass());
  return line;
}

}  // namespace gradlab
