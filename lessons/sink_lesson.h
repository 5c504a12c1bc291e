#pragma once
// Helpers shared by the two lessons that train on bigram-backcopy and report over seeds (09, 14).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "data/bigram_backcopy.h"
#include "data/dataset.h"

namespace gradlab::lesson {

// The mean and the sample standard deviation (n - 1) of per-seed values; NAN for none, sd 0 for one.
struct MeanSd {
  double mean = NAN, sd = NAN;
};
MeanSd mean_sd(const std::vector<double>& v);
// "mean ± sd", each printed with the printf format f.
std::string plus_minus(const MeanSd& m, const char* f);

// A token's label in the figures: the character, newline as "\n", and triggers marked ("x*") when the corpus is
// given.
std::vector<std::string> token_labels(const TextDataset& data, const std::vector<std::int32_t>& ids,
                                      const BigramBackcopyCorpus* corpus);

}  // namespace gradlab::lesson
