#include "lessons/sink_lesson.h"

#include "lessons/lesson.h"

namespace gradlab::lesson {

MeanSd mean_sd(const std::vector<double>& v) {
  MeanSd m;
  if (v.empty()) return m;
  double s = 0;
  for (double x : v) s += x;
  m.mean = s / static_cast<double>(v.size());
  double q = 0;
  for (double x : v) q += (x - m.mean) * (x - m.mean);
  m.sd = v.size() > 1 ? std::sqrt(q / static_cast<double>(v.size() - 1)) : 0.0;
  return m;
}

std::string plus_minus(const MeanSd& m, const char* f) { return fmt(f, m.mean) + " ± " + fmt(f, m.sd); }

std::vector<std::string> token_labels(const TextDataset& data, const std::vector<std::int32_t>& ids,
                                      const BigramBackcopyCorpus* corpus) {
  std::vector<std::string> out;
  for (std::int32_t id : ids) {
    std::string s = data.tokenizer()->decode_one(id);
    if (s == "\n") s = "\\n";
    if (corpus && s.size() == 1 && corpus->is_trigger(s[0])) s += "*";
    out.push_back(s);
  }
  return out;
}

}  // namespace gradlab::lesson
