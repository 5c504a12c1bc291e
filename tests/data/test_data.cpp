// Datasets: text windows, the eval rule, the grammar corpus and the position tasks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "io_util.h"
#include "data/dataset.h"
#include "data/grammar.h"
#include "data/tasks.h"

using namespace gradlab;
using io_test::error_of;
using io_test::one_line;

namespace {

// Tokens 0..n-1 (mod vocab) so that a window's position in the stream can be read from its values.
std::unique_ptr<TextDataset> counting_dataset(std::int64_t n) {
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) tokens[i] = static_cast<std::int32_t>(i % 256);
  return std::make_unique<TextDataset>("count", tokens, Tokenizer::byte_level());
}

struct Word {
  std::string text;
  std::size_t begin, end;  // byte range in the line
};

std::vector<Word> words_of(const std::string& line) {
  std::vector<Word> out;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] >= 'a' && line[i] <= 'z') {
      std::size_t j = i;
      while (j < line.size() && line[j] >= 'a' && line[j] <= 'z') ++j;
      out.push_back({line.substr(i, j - i), i, j});
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

bool in_list(const std::string& w, const char* const* list, int n) {
  for (int k = 0; k < n; ++k)
    if (w == list[k]) return true;
  return false;
}

// Checks subject-verb agreement across every relative clause ("the X that ... V") and parenthesis
// ("the X (which ...) V") in the text, read back from the characters alone. Returns the number of checks made;
// violations and the smallest subject-to-verb distance (in characters) are reported through the arguments.
int check_agreement(const std::string& text, int& violations, std::size_t& min_distance) {
  const auto& L = GrammarLexicon::nouns;
  int checks = 0;
  violations = 0;
  min_distance = SIZE_MAX;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    std::vector<Word> w = words_of(line);
    for (std::size_t i = 1; i < w.size(); ++i) {
      const bool relative = w[i].text == "that";
      const bool paren = w[i].text == "which" && w[i].begin > 0 && line[w[i].begin - 1] == '(';
      if (!relative && !paren) continue;
      // the subject noun is the word just before "that" / "(which"
      std::string subject = w[i - 1].text;
      bool plural = false;
      if (!in_list(subject, L, GrammarLexicon::noun_count)) {
        if (subject.back() != 's' || !in_list(subject.substr(0, subject.size() - 1), L, GrammarLexicon::noun_count)) {
          ++violations;  // not a noun at all
          continue;
        }
        plural = true;
      }
      // the main verb is the first intransitive verb after the clause
      for (std::size_t j = i + 1; j < w.size(); ++j) {
        const std::string& v = w[j].text;
        bool is_plural_form = in_list(v, GrammarLexicon::intransitive_verbs, GrammarLexicon::intransitive_count);
        bool is_singular_form = v.back() == 's' && in_list(v.substr(0, v.size() - 1), GrammarLexicon::intransitive_verbs,
                                                           GrammarLexicon::intransitive_count);
        if (!is_plural_form && !is_singular_form) continue;
        ++checks;
        if (is_plural_form != plural) ++violations;
        min_distance = std::min(min_distance, w[j].begin - w[i - 1].end);
        break;
      }
    }
  }
  return checks;
}

}  // namespace

TEST_SUITE("io") {

TEST_CASE("dataset: the split is floor(0.9 n) / rest and windows are contiguous slices") {
  auto ds = counting_dataset(105);
  CHECK(ds->split_size(Split::Train) == 94);
  CHECK(ds->split_size(Split::Val) == 11);
  CHECK(counting_dataset(10)->split_size(Split::Train) == 9);
  CHECK(counting_dataset(1)->split_size(Split::Train) == 0);
  Rng rng(1);
  Batch b = ds->batch(Split::Train, 16, 8, rng);
  REQUIRE(b.inputs.size() == 16 * 8);
  std::set<int> starts;
  for (int r = 0; r < 16; ++r) {
    const int s = b.inputs[r * 8];
    starts.insert(s);
    CHECK(s + 8 < 94);  // the window [s, s+9) stays inside the train split
    for (int t = 0; t < 8; ++t) {
      CHECK(b.inputs[r * 8 + t] == s + t);
      CHECK(b.targets[r * 8 + t] == s + t + 1);
    }
  }
  CHECK(starts.size() > 8);  // random starts, not one repeated window
  Batch v = ds->batch(Split::Val, 4, 10, rng);
  for (int r = 0; r < 4; ++r) CHECK(v.inputs[r * 10] == 94);  // val has 11 tokens: one possible window
  // Same seed, same batches; another seed, other batches.
  Rng a(5), a2(5), c(6);
  CHECK(ds->batch(Split::Train, 4, 8, a).inputs == ds->batch(Split::Train, 4, 8, a2).inputs);
  Rng a3(5);
  CHECK(ds->batch(Split::Train, 4, 8, a3).inputs != ds->batch(Split::Train, 4, 8, c).inputs);
}

TEST_CASE("dataset: a split shorter than one window is a one-line error with the sizes") {
  auto ds = counting_dataset(105);
  Rng rng(1);
  std::string msg = error_of([&] { ds->batch(Split::Val, 2, 11, rng); });
  CHECK(msg == "dataset 'count': the val split has 11 tokens, fewer than one window of T+1 = 12");
  msg = error_of([&] { ds->check_length(64); });
  CHECK(msg.find("the val split has 11 tokens, fewer than one window of T+1 = 65 (the text has 105 tokens") != std::string::npos);
  CHECK(one_line(msg));
  msg = error_of([&] { counting_dataset(1000)->check_length(900); });
  CHECK(msg.find("the train split has 900 tokens, fewer than one window of T+1 = 901") != std::string::npos);
  CHECK_NOTHROW(ds->check_length(10));
  CHECK(error_of([&] { ds->batch(Split::Train, 0, 4, rng); }).find("batch size 0") != std::string::npos);
  CHECK(error_of([&] { ds->batch(Split::Train, 2, -1, rng); }).find("sequence length -1") != std::string::npos);
  CHECK(error_of([] { TextDataset("e", {}, Tokenizer::byte_level()); }).find("no tokens") != std::string::npos);
  CHECK(error_of([] { TextDataset("e", {1, 300}, Tokenizer::byte_level()); }).find("token 1 is id 300") != std::string::npos);
}

TEST_CASE("dataset: eval windows are consecutive and non-overlapping from token 0 and drop the partial one") {
  auto ds = counting_dataset(1000);  // train 900 tokens
  const std::int64_t T = 7;
  CHECK(ds->eval_window_count(Split::Train, T) == 900 / 8);
  Batch all = ds->eval_windows(Split::Train, T);
  CHECK(all.B == 112);
  for (std::int64_t w = 0; w < all.B; ++w) {
    for (std::int64_t t = 0; t < T; ++t) {
      CHECK(all.inputs[w * T + t] == static_cast<std::int32_t>((w * 8 + t) % 256));
      CHECK(all.targets[w * T + t] == static_cast<std::int32_t>((w * 8 + t + 1) % 256));
    }
  }
  Batch part = ds->eval_windows(Split::Train, T, 5, 3);
  CHECK(std::equal(part.inputs.begin(), part.inputs.end(), all.inputs.begin() + 5 * T));
  Batch val = ds->eval_windows(Split::Val, T);
  CHECK(val.B == 100 / 8);
  CHECK(val.inputs[0] == 900 % 256);
  CHECK(error_of([&] { ds->eval_windows(Split::Val, 200); }).find("fewer than one evaluation window") != std::string::npos);
  CHECK(error_of([&] { ds->eval_windows(Split::Train, T, 110, 5); }).find("outside [0, 112)") != std::string::npos);
}

TEST_CASE("dataset: uniform_index covers ranges above 32 bits") {
  Rng rng(3);
  const std::uint64_t n = (1ull << 40) + 7;
  bool high = false;
  for (int k = 0; k < 64; ++k) {
    std::uint64_t v = uniform_index(rng, n);
    CHECK(v < n);
    high |= v >= (1ull << 32);
  }
  CHECK(high);
  CHECK(uniform_index(rng, 1) == 0);
}

TEST_CASE("grammar: deterministic and sized with a character-level alphabet") {
  GrammarOptions opt;
  opt.target_chars = 20000;
  GrammarCorpus a = generate_grammar(opt);
  GrammarCorpus b = generate_grammar(opt);
  CHECK(a.text == b.text);
  CHECK(a.entropy_nats == b.entropy_nats);
  opt.seed = 2;
  CHECK(generate_grammar(opt).text != a.text);
  CHECK(a.text.size() >= 20000);
  CHECK(a.text.size() < 20000 + 1000);
  CHECK(a.text.back() == '\n');
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz .,\"()\n";
  CHECK(a.text.find_first_not_of(alphabet) == std::string::npos);
  // The default corpus is 200-300k characters.
  GrammarCorpus d = generate_grammar();
  CHECK(d.text.size() >= 250000);
  CHECK(d.text.size() < 251000);
}

TEST_CASE("grammar: the verb agrees with a subject 10+ characters back across a clause") {
  GrammarCorpus c = generate_grammar();
  int violations = 0;
  std::size_t min_distance = 0;
  int checks = check_agreement(c.text, violations, min_distance);
  CHECK(checks > 1000);
  CHECK(violations == 0);
  CHECK(min_distance >= 10);
  // The checker itself catches a wrong agreement.
  check_agreement("the dogs that the cat sees runs.\nthe frog (which mira likes) sing.\n", violations, min_distance);
  CHECK(violations == 2);
}

TEST_CASE("grammar: quotes and parentheses match and names recur later in their story") {
  GrammarCorpus c = generate_grammar();
  std::size_t start = 0;
  int stories = 0, quotes = 0, parens = 0;
  while (start < c.text.size()) {
    std::size_t end = c.text.find('\n', start);
    const std::string line = c.text.substr(start, end - start);
    start = end + 1;
    ++stories;
    // quotes: every `said, "` closes with `."` before the next sentence; none are left open
    bool in_quote = false;
    int depth = 0, max_depth = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"') {
        if (!in_quote) CHECK(line.compare(i - 6, 6, "said, ") == 0);
        if (in_quote) CHECK(line[i - 1] == '.');
        in_quote = !in_quote;
        quotes += in_quote;
      }
      if (line[i] == '(') ++depth, ++parens;
      if (line[i] == ')') --depth;
      CHECK(depth >= 0);
      max_depth = std::max(max_depth, depth);
    }
    CHECK(!in_quote);
    CHECK(depth == 0);
    CHECK(max_depth <= 1);
    // names: introduced by "named X", and X appears again at least 20 characters later
    std::vector<Word> w = words_of(line);
    int introduced = 0;
    for (std::size_t i = 0; i + 1 < w.size(); ++i) {
      if (w[i].text != "named") continue;
      ++introduced;
      const std::string& name = w[i + 1].text;
      std::size_t last = 0;
      for (std::size_t j = i + 2; j < w.size(); ++j)
        if (w[j].text == name) last = w[j].begin;
      CHECK(last >= w[i + 1].end + 20);
    }
    CHECK(introduced >= 1);
  }
  CHECK(stories == c.stories);
  CHECK(quotes > 200);
  CHECK(parens > 200);
}

TEST_CASE("grammar: entropy rate estimate is consistent") {
  GrammarCorpus a = generate_grammar();
  GrammarOptions opt;
  opt.seed = 99;
  GrammarCorpus b = generate_grammar(opt);
  MESSAGE(a.describe());
  CHECK(a.bits_per_char() > 0.2);
  CHECK(a.bits_per_char() < 2.0);
  CHECK(a.bits_per_char() == doctest::Approx(a.nats_per_char() / std::log(2.0)));
  // the expected and the realized information agree, and two seeds agree on the rate
  CHECK(std::abs(a.surprisal_nats - a.entropy_nats) < 0.02 * a.entropy_nats);
  CHECK(std::abs(a.nats_per_char() - b.nats_per_char()) < 0.02 * a.nats_per_char());
  CHECK(a.describe().find("bits/char") != std::string::npos);
}

TEST_CASE("grammar: the dataset is char-level over the corpus") {
  GrammarOptions opt;
  opt.target_chars = 5000;
  GrammarCorpus info;
  auto ds = make_grammar_dataset(opt, &info);
  CHECK(ds->name() == "grammar");
  CHECK(ds->token_count() == static_cast<std::int64_t>(info.text.size()));
  CHECK(ds->vocab_size() <= 33);
  CHECK(ds->tokenizer()->decode(ds->tokenizer()->encode(info.text)) == info.text);
  CHECK_NOTHROW(ds->check_length(64));
}

TEST_CASE("tasks: position-index and position-marker and position-parity targets") {
  const std::int64_t T = 16;
  Rng rng(11);
  auto idx = make_task("position-index", T);
  CHECK(idx->vocab_size() == T + 1);
  Batch b = idx->batch(Split::Train, 3, 10, rng);  // shorter sequences than T are allowed
  for (int r = 0; r < 3; ++r)
    for (int t = 0; t < 10; ++t) {
      CHECK(b.inputs[r * 10 + t] == T);
      CHECK(b.targets[r * 10 + t] == t);
    }
  CHECK(idx->is_task());

  auto mk = make_task("position-marker", T);
  CHECK(mk->vocab_size() == T + 9);
  Batch m = mk->batch(Split::Train, 200, T, rng);
  std::set<int> marker_positions;
  for (int r = 0; r < 200; ++r) {
    int markers = 0, targets = 0;
    for (int t = 0; t < T; ++t) {
      const int in = m.inputs[r * T + t], tg = m.targets[r * T + t];
      CHECK(in >= T);
      CHECK(in < T + 9);
      if (in == mk->marker_id()) {
        ++markers;
        CHECK(tg == t);
        marker_positions.insert(t);
      } else {
        CHECK(tg == -1);
      }
      targets += tg >= 0;
    }
    CHECK(markers == 1);
    CHECK(targets == 1);
  }
  CHECK(marker_positions.size() == static_cast<std::size_t>(T));
  CHECK(m.target_count() == 200);

  auto par = make_task("position-parity", T);
  CHECK(par->vocab_size() == 10);
  Batch p = par->batch(Split::Val, 4, T, rng);
  std::set<int> symbols;
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < T; ++t) {
      CHECK(p.targets[r * T + t] == t % 2);
      symbols.insert(p.inputs[r * T + t]);
    }
  CHECK(symbols.size() > 4);
  CHECK(*symbols.begin() >= 2);
  CHECK(par->token_name(0) == "<even>");
  CHECK(mk->token_name(mk->marker_id()) == "M");
  CHECK(idx->token_name(3) == "<pos 3>");
}

TEST_CASE("tasks: fixed evaluation sets and errors") {
  auto mk = make_task("position-marker", 12);
  Batch e = mk->eval_windows(Split::Val, 12);
  CHECK(e.B == 12);
  for (int k = 0; k < 12; ++k) {
    CHECK(e.inputs[k * 12 + k] == mk->marker_id());
    CHECK(e.targets[k * 12 + k] == k);
  }
  CHECK(mk->eval_windows(Split::Val, 12).inputs == e.inputs);        // fixed
  CHECK(mk->eval_windows(Split::Train, 12).inputs != e.inputs);      // its own set per split
  Batch tail = mk->eval_windows(Split::Val, 12, 4, 3);
  CHECK(std::equal(tail.inputs.begin(), tail.inputs.end(), e.inputs.begin() + 4 * 12));
  CHECK(make_task("position-index", 8)->eval_window_count(Split::Val, 8) == 1);
  CHECK(make_task("position-parity", 8)->eval_window_count(Split::Val, 8) == 64);

  CHECK(error_of([] { make_task("position-count", 8); }) ==
        "unknown task 'position-count' (valid: position-index, position-marker, position-parity)");
  CHECK(error_of([] { make_task("position-index", 0); }).find("expected 1 .. 65536") != std::string::npos);
  Rng rng(1);
  CHECK(error_of([&] { mk->batch(Split::Train, 2, 13, rng); }).find("sequence length 13, expected 1 .. 12") != std::string::npos);
  CHECK(error_of([&] { mk->check_length(0); }).find("sequence length 0") != std::string::npos);
}

}  // TEST_SUITE
