#pragma once
// "grammar": gradlab's built-in dataset, generated in code so that nothing has to be downloaded.
//
// An English-like corpus of short stories from a small stochastic grammar, one story per line, written with
// lowercase letters, space, . , " ( ) and newline (character-level friendly). Example:
//
//   once there was a sailor named kobe. kobe had a friend named rilu. the old dogs that the cat chases sleep.
//   rilu said, "the frog (which kobe feeds) sings today." then kobe and rilu dance.
//
// Dependencies that reach 5 or more tokens back, so attention has real work to do:
//   - agreement: "the dogs that the cat chases sleep" / "the dog (which rilu likes) sleeps": the main verb
//     agrees in number with a subject separated from it by a relative clause or a parenthesis;
//   - matching: an opened quote closes after its sentence's period; an opened parenthesis closes;
//   - copying: the names are random syllable pairs (4900 possible), introduced once per story and repeated
//     later in it ("then kobe and rilu dance."), so they can only be predicted by looking back.
//
// Entropy rate: every random choice has an exact, known distribution (integer weights). The generator sums
// the entropy H(choice) = -sum p log p of each choice it makes; the corpus's estimate is that sum divided by the
// number of characters produced. The grammar is unambiguous (each choice is visible in the text), so the
// entropy of a story's text equals the entropy of its choices, and the sum of per-choice entropies is an
// unbiased estimate of it (chain rule). The ratio is therefore the entropy rate of the text in nats/char, up
// to sampling noise (well under 1% at the default size): no model can reach a lower expected loss on fresh
// text from this grammar. The realized surprisal (-sum log p of the choices actually made) is reported too;
// the two agree closely.
#include <cstdint>
#include <memory>
#include <string>

#include "data/dataset.h"

namespace gradlab {

struct GrammarOptions {
  std::uint64_t seed = 1;
  std::int64_t target_chars = 250'000;  // stories are added until the text reaches this many characters
};

struct GrammarCorpus {
  std::string text;
  std::int64_t stories = 0;
  std::int64_t sentences = 0;
  double entropy_nats = 0.0;    // sum of the entropies of all choices made
  double surprisal_nats = 0.0;  // sum of -log p of the choices made
  double nats_per_char() const { return text.empty() ? 0.0 : entropy_nats / static_cast<double>(text.size()); }
  double bits_per_char() const;
  std::string describe() const;  // "grammar corpus: N chars, M stories, entropy rate x bits/char (y nats/char)"
};

// Deterministic: the same options give the same text on every platform (only Rng and integer weights are used).
GrammarCorpus generate_grammar(const GrammarOptions& options = {});

// The text as a char-level TextDataset named "grammar"; `info`, when given, receives the corpus statistics.
std::unique_ptr<TextDataset> make_grammar_dataset(const GrammarOptions& options = {}, GrammarCorpus* info = nullptr);

// The words of the grammar, for tests and lessons.
struct GrammarLexicon {
  static const char* const nouns[];  // singular; plural adds "s"
  static const char* const intransitive_verbs[];  // plural form; singular adds "s"
  static const char* const transitive_verbs[];
  static const int noun_count, intransitive_count, transitive_count;
};

}  // namespace gradlab
