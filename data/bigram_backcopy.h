#pragma once
// "bigram-backcopy": a built-in corpus on which small causal transformers form an attention sink (the
// Bigram-Backcopy task of Guo et al. 2024, "Active-dormant attention heads"), generated in code from a seed.
//
// Each document is the BOS character '^' followed by doc_length letters; the documents are concatenated.
// Letters follow a fixed random bigram table whose rows are drawn from Dirichlet(alpha) (alpha = 0.2: peaked
// rows, so most letters have a few likely successors), except after a trigger letter (x, y, z): the letter
// after a trigger copies the letter before the trigger. Example (32 letters):
//
//   ^kqpdyddsbAvknxnnobcpgzggk...     ("y" after "d" -> next is "d"; "x" after "n" -> "n"; "z" after "g" -> "g")
//
// Why a sink forms: only the copy needs attention (look one token back past the trigger); on every other
// token a head that specialised in copying has nothing to do, and the cheapest way to do nothing is to put its
// attention on a token whose value is near zero: the BOS at position 0 (a "dormant" head). Train with every
// window starting at a document start (TextDataset::set_bos) so that the BOS sits at position 0.
//
// The alphabet: the first (letters - triggers) of "abcdefghijklmnopqrstuvwABCDEFGHIJKLMNOPQRSTUVWXYZ", then the
// triggers "xyz" (first `triggers` of them). The first letter of a document is uniform over the non-trigger
// letters (so that a trigger never follows the BOS and every copy has a letter to copy).
//
// Entropy: each bigram draw contributes H(row), a copy 0 and the first letter log(non-trigger letters); the
// BOS after the last letter is certain. entropy_nats / predicted tokens is therefore the corpus's entropy rate
// per token, the floor no model can beat on fresh documents (up to sampling noise).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace gradlab {

struct BigramBackcopyOptions {
  std::uint64_t seed = 1;          // the bigram table and the documents
  std::int64_t documents = 8000;   // documents in the corpus (train is the first 90% of the tokens)
  std::int64_t doc_length = 64;    // letters per document after the BOS
  std::int64_t letters = 32;       // alphabet size, triggers included (4..52)
  std::int64_t triggers = 3;       // how many of x, y, z are triggers (0..3)
  double alpha = 0.2;              // Dirichlet concentration of each bigram row (> 0)

  void validate() const;  // throws naming the field, its value and the rule
  std::string to_json() const;  // {"kind":"bigram-backcopy","seed":..,"documents":..,...}
  static BigramBackcopyOptions from_json(const std::string& json);  // the keys of to_json; unknown keys refused
};

constexpr char kBigramBackcopyBos = '^';

struct BigramBackcopyCorpus {
  BigramBackcopyOptions options;
  std::string alphabet;               // the letters, in generation order; triggers last
  std::vector<double> table;          // (letters, letters) row-major: P(next = b | previous = a)
  std::string text;                   // the documents, each '^' + doc_length letters
  std::int64_t copies = 0;            // letters produced by the copy rule
  double entropy_nats = 0.0;          // sum of the entropies of all draws
  std::int64_t predicted = 0;         // tokens that follow another token (all but the first BOS)
  double nats_per_token() const { return predicted ? entropy_nats / static_cast<double>(predicted) : 0.0; }
  bool is_trigger(char c) const;
  std::string describe() const;  // the parameters and sizes, one line
};

// Deterministic for a given options (Rng only; the Dirichlet draws use std::log/std::pow).
BigramBackcopyCorpus generate_bigram_backcopy(const BigramBackcopyOptions& options = {});

// The corpus as a char-level, document-aligned TextDataset named "bigram-backcopy" (BOS = '^').
std::unique_ptr<TextDataset> make_bigram_backcopy_dataset(const BigramBackcopyOptions& options = {},
                                                          BigramBackcopyCorpus* info = nullptr);

}  // namespace gradlab
