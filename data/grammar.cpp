#include "data/grammar.h"

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <vector>

#include "tensor/error.h"
#include "tensor/rng.h"

namespace gradlab {

// Word sets are pairwise disjoint at every point where the grammar chooses between them, so every choice can
// be read back from the text (the grammar is unambiguous). Nouns never end in "s", verbs take a plain "s".
const char* const GrammarLexicon::nouns[] = {"cat",  "dog",  "bird",   "frog",  "horse", "goat",
                                              "crow", "owl",  "duck", "rabbit", "snake", "bear"};
const char* const GrammarLexicon::intransitive_verbs[] = {"run", "sleep", "sing", "jump", "wait", "laugh", "swim", "dance"};
const char* const GrammarLexicon::transitive_verbs[] = {"see", "like", "follow", "help", "find", "call", "feed", "chase"};
const int GrammarLexicon::noun_count = 12;
const int GrammarLexicon::intransitive_count = 8;
const int GrammarLexicon::transitive_count = 8;

namespace {

const char* const kRoles[] = {"girl", "boy", "farmer", "sailor", "king", "queen", "robot", "teacher"};
const char* const kAdjectives[] = {"old", "small", "big", "red", "quiet", "happy", "lazy", "clever"};
const char* const kAdverbs[] = {"today", "again", "slowly", "loudly"};
const char kConsonants[] = "bdfgklmnprstvz";  // 14
const char kVowels[] = "aeiou";                // 5

// The generator: every random choice goes through choose(), which adds the choice's entropy.
class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed, /*stream=*/0x6772616d) {}

  // An index in [0, weights.size()) with probability weights[k] / sum (exact integer weights).
  int choose(std::initializer_list<std::uint32_t> weights) {
    std::uint32_t total = 0;
    for (std::uint32_t w : weights) total += w;
    std::uint32_t r = rng_.below(total);
    int picked = -1, k = 0;
    for (std::uint32_t w : weights) {
      if (w > 0) entropy_ -= (double(w) / total) * std::log(double(w) / total);
      if (picked < 0 && r < w) {
        picked = k;
        surprisal_ -= std::log(double(w) / total);
      } else if (picked < 0) {
        r -= w;
      }
      ++k;
    }
    return picked;
  }
  int uniform(int n) {
    entropy_ += std::log(double(n));
    surprisal_ += std::log(double(n));
    return static_cast<int>(rng_.below(static_cast<std::uint32_t>(n)));
  }
  bool coin(std::uint32_t yes, std::uint32_t no) { return choose({yes, no}) == 0; }

  std::string& out() { return out_; }
  double entropy() const { return entropy_; }
  double surprisal() const { return surprisal_; }

  // ---- the grammar ----

  // A name: two consonant-vowel syllables, 70 * 70 = 4900 possibilities.
  std::string name_from_index(int index) {
    const int s0 = index / 70, s1 = index % 70;
    std::string n;
    n += kConsonants[s0 / 5], n += kVowels[s0 % 5], n += kConsonants[s1 / 5], n += kVowels[s1 % 5];
    return n;
  }

  // "the [adj] noun[s]"; returns whether it is plural.
  bool noun_phrase() {
    out_ += "the ";
    if (coin(1, 2)) {  // an adjective one time in three
      out_ += kAdjectives[uniform(8)];
      out_ += ' ';
    }
    out_ += GrammarLexicon::nouns[uniform(GrammarLexicon::noun_count)];
    bool plural = coin(1, 1);
    if (plural) out_ += 's';
    return plural;
  }

  void verb(const char* base, bool singular_subject) {
    out_ += base;
    if (singular_subject) out_ += 's';
  }

  // "runs [today]" agreeing with the subject; the adverb is optional.
  void intransitive_predicate(bool plural_subject) {
    verb(GrammarLexicon::intransitive_verbs[uniform(GrammarLexicon::intransitive_count)], !plural_subject);
    if (coin(1, 3)) {
      out_ += ' ';
      out_ += kAdverbs[uniform(4)];
    }
  }

  const std::string& some_name() { return names_.size() == 1 ? names_[0] : names_[uniform(static_cast<int>(names_.size()))]; }

  // The clause inside "that ..." or "(which ...)": "the cats see" or "mira sees".
  void object_clause() {
    if (coin(1, 1)) {
      bool plural = noun_phrase();
      out_ += ' ';
      verb(GrammarLexicon::transitive_verbs[uniform(GrammarLexicon::transitive_count)], !plural);
    } else {
      out_ += some_name();
      out_ += ' ';
      verb(GrammarLexicon::transitive_verbs[uniform(GrammarLexicon::transitive_count)], true);
    }
  }

  // A declarative sentence without its period: simple, relative clause, or parenthesis.
  void declarative() {
    switch (choose({2, 3, 2})) {
      case 0: {  // the dogs run today
        bool plural = noun_phrase();
        out_ += ' ';
        intransitive_predicate(plural);
        break;
      }
      case 1: {  // the dogs that the cat chases run
        bool plural = noun_phrase();
        out_ += " that ";
        object_clause();
        out_ += ' ';
        intransitive_predicate(plural);
        break;
      }
      default: {  // the dog (which mira feeds) sleeps
        bool plural = noun_phrase();
        out_ += " (which ";
        object_clause();
        out_ += ") ";
        intransitive_predicate(plural);
        break;
      }
    }
  }

  void sentence() {
    switch (choose({5, 2, 2})) {
      case 0:  // a declarative sentence
        declarative();
        out_ += '.';
        break;
      case 1: {  // mira likes the frogs. / mira calls tobu.
        const std::string who = some_name();
        out_ += who;
        out_ += ' ';
        verb(GrammarLexicon::transitive_verbs[uniform(GrammarLexicon::transitive_count)], true);
        out_ += ' ';
        if (names_.size() > 1 && coin(1, 2)) {
          out_ += names_[0] == who ? names_[1] : names_[0];  // the other one
        } else {
          noun_phrase();
        }
        out_ += '.';
        break;
      }
      default:  // mira said, "the dogs run."
        out_ += some_name();
        out_ += " said, \"";
        declarative();
        out_ += ".\"";
        break;
    }
    ++sentences_;
  }

  void story() {
    names_.clear();
    const int first = uniform(4900);
    names_.push_back(name_from_index(first));
    out_ += "once there was a ";
    out_ += kRoles[uniform(8)];
    out_ += " named " + names_[0] + ".";
    if (coin(1, 1)) {  // a friend, with a different name: uniform over the 4899 others
      int index = uniform(4899);
      if (index == first) index = 4899;  // the taken name's slot maps to the spare one
      names_.push_back(name_from_index(index));
      out_ += " " + names_[0] + " had a friend named " + names_[1] + ".";
    }
    const int count = 2 + uniform(4);  // 2..5 sentences in the middle
    for (int k = 0; k < count; ++k) {
      out_ += ' ';
      sentence();
    }
    // The ending always repeats the names: "then mira sleeps." / "then mira and tobu dance."
    out_ += " then " + names_[0];
    if (names_.size() > 1) out_ += " and " + names_[1];
    out_ += ' ';
    verb(GrammarLexicon::intransitive_verbs[uniform(GrammarLexicon::intransitive_count)], names_.size() == 1);
    out_ += ".\n";
    sentences_ += 2 + static_cast<std::int64_t>(names_.size() > 1);
  }

  std::int64_t sentences() const { return sentences_; }

 private:
  Rng rng_;
  std::string out_;
  std::vector<std::string> names_;
  double entropy_ = 0.0, surprisal_ = 0.0;
  std::int64_t sentences_ = 0;
};

}  // namespace

double GrammarCorpus::bits_per_char() const { return nats_per_char() / std::log(2.0); }

std::string GrammarCorpus::describe() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "grammar corpus: %lld chars, %lld stories, entropy rate %.4f bits/char (%.4f nats/char; the lowest "
                "expected loss any model can reach)",
                static_cast<long long>(text.size()), static_cast<long long>(stories), bits_per_char(), nats_per_char());
  return buf;
}

GrammarCorpus generate_grammar(const GrammarOptions& options) {
  if (options.target_chars <= 0 || options.target_chars > (std::int64_t(1) << 30))
    throw_error("grammar: target size ", options.target_chars, " characters, expected 1 .. 2^30");
  Generator gen(options.seed);
  GrammarCorpus corpus;
  while (static_cast<std::int64_t>(gen.out().size()) < options.target_chars) {
    gen.story();
    ++corpus.stories;
  }
  corpus.text = std::move(gen.out());
  corpus.sentences = gen.sentences();
  corpus.entropy_nats = gen.entropy();
  corpus.surprisal_nats = gen.surprisal();
  return corpus;
}

std::unique_ptr<TextDataset> make_grammar_dataset(const GrammarOptions& options, GrammarCorpus* info) {
  GrammarCorpus corpus = generate_grammar(options);
  auto ds = TextDataset::from_text("grammar", corpus.text, TokenizerKind::Char);
  if (info) *info = std::move(corpus);
  return ds;
}

}  // namespace gradlab
