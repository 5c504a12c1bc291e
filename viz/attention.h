#pragma once
// Attention maps as the figures and statistics see them: float32 values shaped (n_layer, n_head, T, T),
// row i = query position, column j = key position, plus the mask they were computed under.
// Also the raw-data files written beside every heatmap (.npy + tokens .json) and the per-head statistics
// printed beside the picture (share of attention on the first token, raw and normalised; real mass).
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace gradlab::viz {

struct AttentionMaps {
  std::int64_t n_layer = 0, n_head = 0, T = 0;
  std::vector<float> values;  // (n_layer, n_head, T, T), row-major
  std::string mask = "causal";  // name used in panel titles: "causal", "StableMask", ...
  bool stablemask = false;      // rows may sum to < 1: draw the pseudo-mass ("sink") column

  // From a tensor shaped (T, T), (n_head, T, T) or (n_layer, n_head, T, T), any dtype and strides.
  static AttentionMaps from_tensor(const Tensor& attn, std::string mask, bool stablemask);
  // From raw row-major floats (copied).
  static AttentionMaps from_floats(const float* data, std::int64_t n_layer, std::int64_t n_head, std::int64_t T,
                                   std::string mask, bool stablemask);

  // Throws gradlab::Error unless the sizes are positive and values.size() == n_layer*n_head*T*T.
  void validate(const char* op) const;
  const float* matrix(std::int64_t layer, std::int64_t head) const {
    return values.data() + (layer * n_head + head) * T * T;
  }
  float at(std::int64_t layer, std::int64_t head, std::int64_t i, std::int64_t j) const { return matrix(layer, head)[i * T + j]; }
  // Real mass R_i = sum over keys j <= i of row i (1 under the causal mask).
  double row_mass(std::int64_t layer, std::int64_t head, std::int64_t i) const;
};

// ---- Raw data ------------------------------------------------------------------------------------------
// .npy version 1.0: magic "\x93NUMPY", version 1.0, a little-endian uint16 header length, then a Python dict
// literal {'descr': '<f4', 'fortran_order': False, 'shape': (...), } padded with spaces and a final '\n' so
// the data starts at a multiple of 64 bytes; then the float32 values, little-endian, C order.
void write_npy(const std::string& path, const float* data, const std::vector<std::int64_t>& shape);
std::string npy_bytes(const float* data, const std::vector<std::int64_t>& shape);
struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};
// Reads back what write_npy writes ('<f4', C order); throws gradlab::Error on anything else.
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const std::string& bytes);

// ---- Statistics (docs/stablemask.md#statistics) -------------------------------------------------------------------
struct HeadStats {
  std::int64_t layer = 0, head = 0;
  double first_share_raw = 0;   // mean over rows of Attn_i0
  double first_share_norm = 0;  // mean over rows of Attn_i0 / R_i
  double mean_real_mass = 0;    // mean over rows of R_i
};

struct AttentionStats {
  std::string mask;
  std::int64_t first_row = 0;  // rows first_row..T-1 were averaged
  std::int64_t rows = 0;       // how many rows that is
  std::vector<HeadStats> heads;  // layer-major
};

// Rows i >= min_row when T > min_row; for short inputs rows 1..T-1 (row 0 sees only the first token, so it
// would say nothing), or row 0 alone when T == 1. Rows with R_i == 0 count as 0 in the normalised share.
AttentionStats attention_stats(const AttentionMaps& maps, std::int64_t min_row = 8);
// A readable table: one line per (layer, head), columns raw share, normalised share, mean real mass.
std::string format_stats(const AttentionStats& stats);
// Two masks side by side (same layers/heads), for the comparison figure.
std::string format_stats_comparison(const AttentionStats& a, const AttentionStats& b);

}  // namespace gradlab::viz
