#include "data/bigram_backcopy.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensor/error.h"
#include "tensor/rng.h"

namespace gradlab {

namespace {

const char kPlainLetters[] = "abcdefghijklmnopqrstuvwABCDEFGHIJKLMNOPQRSTUVWXYZ";  // 49
const char kTriggerLetters[] = "xyz";

// Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 through Gamma(shape + 1) * U^(1/shape).
double gamma_draw(Rng& rng, double shape) {
  if (shape < 1.0) {
    double u = rng.uniform();
    while (u <= 0.0) u = rng.uniform();
    return gamma_draw(rng, shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = rng.normal(), v = 1.0 + c * x;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = rng.uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0.0 && std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

// An index drawn from the probabilities p[0..n) (they sum to 1 up to rounding; the last index takes the rest).
int draw(Rng& rng, const double* p, int n) {
  double r = rng.uniform();
  for (int k = 0; k < n - 1; ++k) {
    if (r < p[k]) return k;
    r -= p[k];
  }
  return n - 1;
}

}  // namespace

void BigramBackcopyOptions::validate() const {
  if (documents < 1 || documents > 10'000'000)
    throw_error("bigram-backcopy: documents = ", documents, ", expected 1..10000000");
  if (doc_length < 2 || doc_length > 65536)
    throw_error("bigram-backcopy: doc_length = ", doc_length, ", expected 2..65536 letters per document");
  if (triggers < 0 || triggers > 3) throw_error("bigram-backcopy: triggers = ", triggers, ", expected 0..3 (x, y, z)");
  const std::int64_t plain_max = static_cast<std::int64_t>(sizeof kPlainLetters) - 1;
  if (letters < triggers + 2 || letters - triggers > plain_max)
    throw_error("bigram-backcopy: letters = ", letters, " with ", triggers, " triggers, expected ", triggers + 2,
                "..", plain_max + triggers, " (at least 2 letters that are not triggers)");
  if (!(alpha > 0.0) || !std::isfinite(alpha) || alpha > 1e6)
    throw_error("bigram-backcopy: alpha = ", alpha, ", expected a Dirichlet concentration in (0, 1e6]");
  if (documents * (doc_length + 1) > (std::int64_t(1) << 30))
    throw_error("bigram-backcopy: ", documents, " documents of ", doc_length + 1,
                " tokens exceed the 1 GiB text limit");
}

std::string BigramBackcopyOptions::to_json() const {
  nlohmann::ordered_json j;
  j["kind"] = "bigram-backcopy";
  j["seed"] = seed;
  j["documents"] = documents;
  j["doc_length"] = doc_length;
  j["letters"] = letters;
  j["triggers"] = triggers;
  j["alpha"] = alpha;
  j["bos"] = std::string(1, kBigramBackcopyBos);
  return j.dump();
}

BigramBackcopyOptions BigramBackcopyOptions::from_json(const std::string& json) {
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw_error("bigram-backcopy options: not a JSON object: ", json);
  BigramBackcopyOptions o;
  for (const auto& [key, value] : j.items()) {
    const bool number = value.is_number();
    if (key == "kind" || key == "bos" || key == "tokenizer") continue;
    if (!number) throw_error("bigram-backcopy options: '", key, "' is ", value.dump(), ", expected a number");
    if (key == "seed") o.seed = value.get<std::uint64_t>();
    else if (key == "documents") o.documents = value.get<std::int64_t>();
    else if (key == "doc_length") o.doc_length = value.get<std::int64_t>();
    else if (key == "letters") o.letters = value.get<std::int64_t>();
    else if (key == "triggers") o.triggers = value.get<std::int64_t>();
    else if (key == "alpha") o.alpha = value.get<double>();
    else throw_error("bigram-backcopy options: unknown key '", key, "'");
  }
  o.validate();
  return o;
}

bool BigramBackcopyCorpus::is_trigger(char c) const {
  const std::int64_t n = static_cast<std::int64_t>(alphabet.size());
  for (std::int64_t k = n - options.triggers; k < n; ++k)
    if (alphabet[static_cast<std::size_t>(k)] == c) return true;
  return false;
}

std::string BigramBackcopyCorpus::describe() const {
  std::ostringstream out;
  out << "bigram-backcopy corpus: " << options.documents << " documents of '^' + " << options.doc_length
      << " letters (" << text.size() << " chars), " << options.letters << " letters with triggers "
      << alphabet.substr(alphabet.size() - static_cast<std::size_t>(options.triggers)) << ", Dirichlet("
      << options.alpha << ") bigram rows, seed " << options.seed << "; " << copies << " copied letters; entropy rate "
      << nats_per_token() << " nats/token";
  return out.str();
}

BigramBackcopyCorpus generate_bigram_backcopy(const BigramBackcopyOptions& options) {
  options.validate();
  BigramBackcopyCorpus c;
  c.options = options;
  const int n = static_cast<int>(options.letters), plain = n - static_cast<int>(options.triggers);
  c.alphabet = std::string(kPlainLetters, static_cast<std::size_t>(plain)) +
               std::string(kTriggerLetters, static_cast<std::size_t>(options.triggers));
  Rng rng(options.seed, /*stream=*/0x62626370);  // "bbcp"
  // the bigram table: each row a Dirichlet(alpha) draw (normalised Gamma(alpha) variates)
  c.table.assign(static_cast<std::size_t>(n * n), 0.0);
  std::vector<double> row_entropy(static_cast<std::size_t>(n), 0.0);
  for (int a = 0; a < n; ++a) {
    double* row = c.table.data() + a * n;
    double sum = 0.0;
    while (!(sum > 0.0)) {  // all n draws underflowing to 0 is possible for tiny alpha: draw again
      sum = 0.0;
      for (int b = 0; b < n; ++b) sum += row[b] = gamma_draw(rng, options.alpha);
    }
    for (int b = 0; b < n; ++b) {
      row[b] /= sum;
      if (row[b] > 0.0) row_entropy[a] -= row[b] * std::log(row[b]);
    }
  }
  // the documents
  const std::int64_t L = options.doc_length;
  c.text.reserve(static_cast<std::size_t>(options.documents * (L + 1)));
  std::vector<int> doc(static_cast<std::size_t>(L));
  for (std::int64_t d = 0; d < options.documents; ++d) {
    c.text += kBigramBackcopyBos;
    if (d > 0) c.predicted += 1;  // the BOS after a full document is certain: entropy 0
    doc[0] = static_cast<int>(rng.below(static_cast<std::uint32_t>(plain)));
    c.entropy_nats += std::log(static_cast<double>(plain));
    for (std::int64_t t = 1; t < L; ++t) {
      const int prev = doc[static_cast<std::size_t>(t - 1)];
      if (prev >= plain && t >= 2) {
        doc[static_cast<std::size_t>(t)] = doc[static_cast<std::size_t>(t - 2)];  // the back-copy: entropy 0
        c.copies += 1;
      } else {
        doc[static_cast<std::size_t>(t)] = draw(rng, c.table.data() + prev * n, n);
        c.entropy_nats += row_entropy[static_cast<std::size_t>(prev)];
      }
    }
    for (int k : doc) c.text += c.alphabet[static_cast<std::size_t>(k)];
    c.predicted += L;
  }
  return c;
}

std::unique_ptr<TextDataset> make_bigram_backcopy_dataset(const BigramBackcopyOptions& options,
                                                          BigramBackcopyCorpus* info) {
  BigramBackcopyCorpus corpus = generate_bigram_backcopy(options);
  auto ds = TextDataset::from_text("bigram-backcopy", corpus.text, TokenizerKind::Char);
  ds->set_bos(ds->tokenizer()->id_of(static_cast<char32_t>(kBigramBackcopyBos)));
  if (info) *info = std::move(corpus);
  return ds;
}

}  // namespace gradlab
