#include "data/dataset.h"

#include <algorithm>
#include <sstream>

#include "tensor/error.h"

namespace gradlab {

const char* split_name(Split split) { return split == Split::Train ? "train" : "val"; }

std::int64_t Batch::target_count() const {
  std::int64_t n = 0;
  for (std::int32_t t : targets) n += t >= 0;
  return n;
}

std::uint64_t uniform_index(Rng& rng, std::uint64_t n) {
  if (n == 0) throw_error("uniform_index: got n = 0, expected n > 0");
  if (n <= 0xFFFFFFFFull) return rng.below(static_cast<std::uint32_t>(n));
  // Rejection sampling on 64-bit draws removes the modulo bias.
  const std::uint64_t threshold = (0ull - n) % n;
  for (;;) {
    std::uint64_t r = (static_cast<std::uint64_t>(rng.next_u32()) << 32) | rng.next_u32();
    if (r >= threshold) return r % n;
  }
}

std::vector<std::int64_t> document_window_starts(const std::int32_t* tokens, std::int64_t n, std::int64_t T,
                                                 std::int32_t bos) {
  if (T < 1) throw_error("document_window_starts: got T = ", T, ", expected T >= 1");
  std::vector<std::int64_t> starts;
  for (std::int64_t i = 0; i + T + 1 <= n;) {
    if (tokens[i] != bos) {
      ++i;
      continue;
    }
    starts.push_back(i);
    i += T + 1;  // the next window starts at the first BOS at or after this one's end
  }
  return starts;
}

Dataset::~Dataset() = default;

Batch Dataset::eval_windows(Split split, std::int64_t T) const {
  return eval_windows(split, T, 0, eval_window_count(split, T));
}

namespace {

void check_batch_shape(const std::string& who, std::int64_t B, std::int64_t T) {
  if (B <= 0) throw_error(who, ": batch size ", B, ", expected > 0");
  if (T <= 0) throw_error(who, ": sequence length ", T, ", expected > 0");
  std::int64_t n = 0;
  if (__builtin_mul_overflow(B, T, &n) || n > (std::int64_t(1) << 34))
    throw_error(who, ": batch of ", B, " x ", T, " tokens is too large");
}

}  // namespace

TextDataset::TextDataset(std::string name, std::vector<std::int32_t> tokens, Tokenizer tokenizer)
    : name_(std::move(name)), tokens_(std::move(tokens)), tokenizer_(std::move(tokenizer)) {
  if (tokens_.empty()) throw_error("dataset '", name_, "': has no tokens, expected some text");
  const std::int64_t V = tokenizer_.vocab_size();
  for (std::size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i] < 0 || tokens_[i] >= V)
      throw_error("dataset '", name_, "': token ", i, " is id ", tokens_[i], ", outside the vocabulary [0, ", V, ")");
  // floor(0.9 n) in integers, so that no rounding decides the split.
  const auto n = static_cast<std::int64_t>(tokens_.size());
  n_train_ = n / 10 * 9 + (n % 10) * 9 / 10;
}

std::unique_ptr<TextDataset> TextDataset::from_text(std::string name, std::string_view text, Tokenizer tokenizer) {
  if (text.empty()) throw_error("dataset '", name, "': the text is empty");
  std::vector<std::int32_t> ids = tokenizer.encode(text);
  return std::make_unique<TextDataset>(std::move(name), std::move(ids), std::move(tokenizer));
}

std::unique_ptr<TextDataset> TextDataset::from_text(std::string name, std::string_view text, TokenizerKind kind) {
  if (text.empty()) throw_error("dataset '", name, "': the text is empty");
  Tokenizer tok = kind == TokenizerKind::Char ? Tokenizer::char_level(text) : Tokenizer::byte_level();
  return from_text(std::move(name), text, std::move(tok));
}

void TextDataset::set_bos(std::int32_t bos_id) {
  bos_train_.clear();
  bos_val_.clear();
  bos_ = -1;
  if (bos_id == -1) return;
  if (bos_id < 0 || bos_id >= vocab_size())
    throw_error("dataset '", name_, "': BOS id ", bos_id, " outside the vocabulary [0, ", vocab_size(), ")");
  for (Split split : {Split::Train, Split::Val}) {
    auto& pos = split == Split::Train ? bos_train_ : bos_val_;
    const std::int32_t* data = split_begin(split);
    for (std::int64_t i = 0; i < split_size(split); ++i)
      if (data[i] == bos_id) pos.push_back(i);
    if (pos.empty())
      throw_error("dataset '", name_, "': the ", split_name(split), " split holds no BOS token ",
                  tokenizer_.decode_one(bos_id), ", so it has no document start; expected every document to begin "
                  "with it");
  }
  bos_ = bos_id;
}

void TextDataset::set_bos_character(const std::string& character) {
  const std::vector<Utf8Char> chars = decode_utf8(character);
  if (chars.size() != 1 || !chars[0].valid)
    throw_error("dataset '", name_, "': BOS \"", character, "\" is ", chars.size(),
                " characters, expected exactly one character");
  std::int32_t id = -1;
  if (tokenizer_.kind() == TokenizerKind::Char) id = tokenizer_.id_of(chars[0].code_point);
  else if (character.size() == 1) id = static_cast<unsigned char>(character[0]);
  if (id < 0)
    throw_error("dataset '", name_, "': BOS ", describe_code_point(chars[0].code_point),
                " does not occur in the text, expected the character that starts every document");
  set_bos(id);
}

std::int64_t TextDataset::window_starts(Split split, std::int64_t T) const {
  const auto& pos = bos_positions(split);
  const std::int64_t last = split_size(split) - T - 1;  // the latest start that leaves T+1 tokens
  return std::upper_bound(pos.begin(), pos.end(), last) - pos.begin();
}

std::int64_t TextDataset::split_size(Split split) const {
  return split == Split::Train ? n_train_ : static_cast<std::int64_t>(tokens_.size()) - n_train_;
}

const std::int32_t* TextDataset::split_begin(Split split) const {
  return tokens_.data() + (split == Split::Train ? 0 : n_train_);
}

void TextDataset::check_length(std::int64_t T) const {
  if (T <= 0) throw_error("dataset '", name_, "': sequence length ", T, ", expected > 0");
  for (Split split : {Split::Train, Split::Val}) {
    if (split_size(split) < T + 1)
      throw_error("dataset '", name_, "': the ", split_name(split), " split has ", split_size(split),
                  " tokens, fewer than one window of T+1 = ", T + 1, " (the text has ", tokens_.size(),
                  " tokens; val is the last 10%); use a longer text or a smaller block size");
    if (document_aligned() && window_starts(split, T) == 0)
      throw_error("dataset '", name_, "': the ", split_name(split), " split has no document start (BOS ",
                  tokenizer_.decode_one(bos_), ") followed by T+1 = ", T + 1,
                  " tokens; use a smaller block size or longer documents");
  }
}

Batch TextDataset::batch(Split split, std::int64_t B, std::int64_t T, Rng& rng) const {
  // inputs, targets are (B, T); row b is tokens[s, s+T) and tokens[s+1, s+T+1) for a random start s
  check_batch_shape("dataset '" + name_ + "'", B, T);
  const std::int64_t len = split_size(split);
  if (len < T + 1)
    throw_error("dataset '", name_, "': the ", split_name(split), " split has ", len,
                " tokens, fewer than one window of T+1 = ", T + 1);
  const std::int32_t* data = split_begin(split);
  Batch out;
  out.B = B, out.T = T;
  out.inputs.resize(static_cast<std::size_t>(B * T));
  out.targets.resize(static_cast<std::size_t>(B * T));
  const std::int64_t doc_starts = document_aligned() ? window_starts(split, T) : 0;
  if (document_aligned() && doc_starts == 0)
    throw_error("dataset '", name_, "': the ", split_name(split), " split has no BOS followed by T+1 = ", T + 1,
                " tokens");
  for (std::int64_t b = 0; b < B; ++b) {
    // a random start, or with documents a random document start (BOS at position 0)
    const auto start =
        document_aligned()
            ? bos_positions(split)[uniform_index(rng, static_cast<std::uint64_t>(doc_starts))]
            : static_cast<std::int64_t>(uniform_index(rng, static_cast<std::uint64_t>(len - T)));
    for (std::int64_t t = 0; t < T; ++t) {
      out.inputs[b * T + t] = data[start + t];
      out.targets[b * T + t] = data[start + t + 1];
    }
  }
  return out;
}

std::int64_t TextDataset::eval_window_count(Split split, std::int64_t T) const {
  if (T <= 0) throw_error("dataset '", name_, "': sequence length ", T, ", expected > 0");
  if (document_aligned())
    return static_cast<std::int64_t>(document_window_starts(split_begin(split), split_size(split), T, bos_).size());
  return split_size(split) / (T + 1);
}

Batch TextDataset::eval_windows(Split split, std::int64_t T, std::int64_t first, std::int64_t count) const {
  // window k of the split covers tokens [k(T+1), (k+1)(T+1)): inputs its first T, targets its last T
  const std::int64_t total = eval_window_count(split, T);
  if (total == 0)
    throw_error("dataset '", name_, "': the ", split_name(split), " split has ", split_size(split),
                " tokens, fewer than one evaluation window of T+1 = ", T + 1);
  if (first < 0 || count <= 0 || first > total || count > total - first)
    throw_error("dataset '", name_, "': evaluation windows [", first, ", ", first + count, ") outside [0, ", total, ")");
  const std::int32_t* data = split_begin(split);
  std::vector<std::int64_t> doc_starts;
  if (document_aligned()) doc_starts = document_window_starts(data, split_size(split), T, bos_);
  Batch out;
  out.B = count, out.T = T;
  out.inputs.resize(static_cast<std::size_t>(count * T));
  out.targets.resize(static_cast<std::size_t>(count * T));
  for (std::int64_t w = 0; w < count; ++w) {
    const std::int64_t k = first + w;
    const std::int32_t* window = data + (document_aligned() ? doc_starts[static_cast<std::size_t>(k)] : k * (T + 1));
    for (std::int64_t t = 0; t < T; ++t) {
      out.inputs[w * T + t] = window[t];
      out.targets[w * T + t] = window[t + 1];
    }
  }
  return out;
}

std::string TextDataset::describe() const {
  std::ostringstream out;
  out << "dataset '" << name_ << "': " << tokens_.size() << " tokens (train " << split_size(Split::Train) << ", val "
      << split_size(Split::Val) << "), " << tokenizer_.kind_name() << " vocabulary of " << vocab_size();
  if (document_aligned())
    out << ", " << bos_train_.size() + bos_val_.size() << " documents (windows start at the BOS "
        << tokenizer_.decode_one(bos_) << ")";
  return out.str();
}

}  // namespace gradlab
