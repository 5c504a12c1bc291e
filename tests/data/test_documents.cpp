// Document-aligned datasets (a declared BOS starts every document) and the bigram-backcopy corpus.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "data/bigram_backcopy.h"
#include "data/dataset.h"
#include "io_util.h"

using namespace gradlab;
using io_test::error_of;

namespace {

// "^abc^defgh^ij..." style text: documents of the given lengths (letters after the BOS), letters cycling a..z.
std::string documents(const std::vector<int>& lengths) {
  std::string s;
  int k = 0;
  for (int n : lengths) {
    s += '^';
    for (int i = 0; i < n; ++i) s += static_cast<char>('a' + (k++ % 26));
  }
  return s;
}

}  // namespace

TEST_SUITE("io") {

TEST_CASE("document_window_starts: window k starts at the first BOS at or after the end of window k-1") {
  // B = BOS (id 9); documents start at 0, 3, 5, 11
  const std::vector<std::int32_t> t = {9, 1, 2, 9, 1, 9, 1, 2, 3, 4, 5, 9, 1, 2};
  // T = 2: windows of 3 tokens: [0,3) then the first BOS >= 3 is 3: [3,6), then >= 6 is 11: [11,14)
  CHECK(document_window_starts(t.data(), 14, 2, 9) == std::vector<std::int64_t>{0, 3, 11});
  // T = 4: [0,5), first BOS >= 5 is 5: [5,10), next >= 10 is 11 but 11+5 > 14
  CHECK(document_window_starts(t.data(), 14, 4, 9) == std::vector<std::int64_t>{0, 5});
  // text before the first BOS is skipped
  const std::vector<std::int32_t> u = {1, 2, 9, 1, 2};
  CHECK(document_window_starts(u.data(), 5, 2, 9) == std::vector<std::int64_t>{2});
  CHECK(document_window_starts(u.data(), 5, 3, 9).empty());
}

TEST_CASE("TextDataset with a BOS: every training window starts at a document start") {
  // documents of 7..12 letters, so a window of T = 8 sometimes runs into the next document (packing)
  std::vector<int> lengths;
  for (int d = 0; d < 200; ++d) lengths.push_back(7 + d % 6);
  auto ds = TextDataset::from_text("docs", documents(lengths), TokenizerKind::Char);
  const std::int32_t bos = ds->tokenizer()->id_of(U'^');
  REQUIRE(bos >= 0);
  CHECK_FALSE(ds->document_aligned());
  ds->set_bos(bos);
  CHECK(ds->document_aligned());
  CHECK(ds->bos() == bos);
  Rng rng(3);
  std::set<std::int32_t> second;  // tokens at position 1 (a document's first letter)
  for (Split split : {Split::Train, Split::Val}) {
    Batch b = ds->batch(split, 64, 8, rng);
    for (std::int64_t r = 0; r < b.B; ++r) {
      CHECK(b.inputs[r * 8] == bos);
      for (std::int64_t t = 0; t + 1 < 8; ++t) CHECK(b.targets[r * 8 + t] == b.inputs[r * 8 + t + 1]);
      second.insert(b.inputs[r * 8 + 1]);
    }
  }
  CHECK(second.size() > 5);  // different documents were drawn
  // without the BOS, windows start anywhere
  auto plain = TextDataset::from_text("docs", documents(lengths), TokenizerKind::Char);
  Batch p = plain->batch(Split::Train, 64, 8, rng);
  int at_bos = 0;
  for (std::int64_t r = 0; r < p.B; ++r) at_bos += p.inputs[r * 8] == bos;
  CHECK(at_bos < 32);
}

TEST_CASE("TextDataset with a BOS: the evaluation windows follow the document rule") {
  // 100 documents of 9 letters: with T = 9 each document is exactly one window (BOS + 9 letters = T + 1)
  auto ds = TextDataset::from_text("docs", documents(std::vector<int>(100, 9)), TokenizerKind::Char);
  const std::int32_t bos = ds->tokenizer()->id_of(U'^');
  const std::int64_t plain_count = ds->eval_window_count(Split::Val, 9);
  ds->set_bos(bos);
  // the val split (last 100 tokens) starts at a document boundary: 10 documents
  CHECK(ds->split_size(Split::Val) == 100);
  CHECK(ds->eval_window_count(Split::Val, 9) == 10);
  CHECK(plain_count == 10);
  Batch b = ds->eval_windows(Split::Val, 9);
  for (std::int64_t w = 0; w < b.B; ++w) {
    CHECK(b.inputs[w * 9] == bos);
    CHECK(b.targets[w * 9 + 8] != bos);  // the last target is the document's last letter
  }
  // T = 12: a window holds 13 tokens, so the next starts at the second document start after it
  CHECK(ds->eval_window_count(Split::Val, 12) == 5);
  Batch c = ds->eval_windows(Split::Val, 12, 1, 2);
  CHECK(c.inputs[0] == bos);
  CHECK(c.inputs[12] == bos);
}

TEST_CASE("TextDataset with a BOS: bad declarations are one-line errors") {
  auto ds = TextDataset::from_text("docs", documents(std::vector<int>(50, 9)), TokenizerKind::Char);
  CHECK(error_of([&] { ds->set_bos(1000); }).find("outside the vocabulary") != std::string::npos);
  CHECK_FALSE(ds->document_aligned());  // a failed declaration leaves it off
  // a character that is not in the val split
  auto no_val = TextDataset::from_text("docs", "^" + std::string(200, 'a'), TokenizerKind::Char);
  const std::string e = error_of([&] { no_val->set_bos(no_val->tokenizer()->id_of(U'^')); });
  CHECK(e.find("val split holds no BOS") != std::string::npos);
  CHECK_FALSE(no_val->document_aligned());
  // a window longer than a document packs the following ones
  ds->set_bos(ds->tokenizer()->id_of(U'^'));
  CHECK_NOTHROW(ds->check_length(9));
  CHECK_NOTHROW(ds->check_length(45));
  ds->set_bos(-1);
  CHECK_FALSE(ds->document_aligned());
}

TEST_CASE("bigram-backcopy: the documents, the copy rule and the entropy rate") {
  BigramBackcopyOptions o;
  o.documents = 300;
  o.doc_length = 64;
  BigramBackcopyCorpus c = generate_bigram_backcopy(o);
  CHECK(c.alphabet.size() == 32);
  CHECK(c.alphabet.substr(29) == "xyz");
  CHECK(c.text.size() == 300u * 65u);
  std::int64_t copies = 0;
  for (std::size_t d = 0; d < 300; ++d) {
    const std::string doc = c.text.substr(d * 65, 65);
    REQUIRE(doc[0] == '^');
    CHECK_FALSE(c.is_trigger(doc[1]));  // the first letter is never a trigger
    for (std::size_t t = 3; t < 65; ++t)
      if (c.is_trigger(doc[t - 1])) {
        CHECK(doc[t] == doc[t - 2]);
        ++copies;
      }
    CHECK(doc.find('^', 1) == std::string::npos);
  }
  CHECK(copies == c.copies);
  CHECK(copies > 300);  // triggers are common enough to matter (3 of 32 letters)
  // the table's rows are distributions, and Dirichlet(0.2) rows are peaked: the largest entry is large
  double mean_max = 0;
  for (int a = 0; a < 32; ++a) {
    double s = 0, mx = 0;
    for (int b = 0; b < 32; ++b) s += c.table[a * 32 + b], mx = std::max(mx, c.table[a * 32 + b]);
    CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
    mean_max += mx / 32;
  }
  CHECK(mean_max > 0.2);  // 0.28 for seed 1; a uniform row would give 1/32
  // the entropy rate lies between 0 and log(32), well below log(32)
  CHECK(c.nats_per_token() > 0.5);
  CHECK(c.nats_per_token() < 0.8 * std::log(32.0));
  // the same seed gives the same text; another seed another one
  CHECK(generate_bigram_backcopy(o).text == c.text);
  o.seed = 2;
  CHECK(generate_bigram_backcopy(o).text != c.text);
}

TEST_CASE("bigram-backcopy: options round-trip through JSON and are validated") {
  BigramBackcopyOptions o;
  o.seed = 7, o.documents = 10, o.doc_length = 20, o.letters = 12, o.triggers = 2, o.alpha = 0.5;
  BigramBackcopyOptions back = BigramBackcopyOptions::from_json(o.to_json());
  CHECK(back.seed == 7);
  CHECK(back.documents == 10);
  CHECK(back.doc_length == 20);
  CHECK(back.letters == 12);
  CHECK(back.triggers == 2);
  CHECK(back.alpha == 0.5);
  CHECK(generate_bigram_backcopy(back).alphabet == "abcdefghijxy");
  CHECK(error_of([] { BigramBackcopyOptions::from_json(R"({"seed":1,"colour":3})"); }).find("unknown key 'colour'") !=
        std::string::npos);
  BigramBackcopyOptions bad;
  bad.alpha = 0;
  CHECK(error_of([&] { bad.validate(); }).find("alpha = 0") != std::string::npos);
  bad = {};
  bad.letters = 3;
  CHECK(error_of([&] { bad.validate(); }).find("letters = 3") != std::string::npos);
}

TEST_CASE("bigram-backcopy dataset: document-aligned, BOS at position 0 of every window") {
  BigramBackcopyOptions o;
  o.documents = 200;
  BigramBackcopyCorpus info;
  auto ds = make_bigram_backcopy_dataset(o, &info);
  CHECK(ds->document_aligned());
  CHECK(ds->tokenizer()->decode_one(ds->bos()) == "^");
  CHECK(ds->vocab_size() == 33);
  ds->check_length(64);
  Rng rng(1);
  Batch b = ds->batch(Split::Train, 16, 64, rng);
  for (std::int64_t r = 0; r < 16; ++r) CHECK(b.inputs[r * 64] == ds->bos());
  // with T = 64 every validation document is one window
  CHECK(ds->eval_window_count(Split::Val, 64) == 20);
}

}  // TEST_SUITE
