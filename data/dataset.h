#pragma once
// Datasets yield (inputs, targets) batches of token ids. Next-token text and the position tasks
// (data/tasks.h) share this interface: a target of -1 marks a position that carries no target, and the loss and
// accuracy count only the others.
//
// Text (TextDataset): the train split is the first floor(0.9 n) tokens, the val split the rest (the last 10%,
// as nanoGPT). Training windows: start s uniform in [0, len - T - 1] from the caller's seeded Rng, inputs =
// tokens[s, s+T), targets = tokens[s+1, s+T+1) (nanoGPT's get_batch).
//
// Evaluation rule (gradlab eval): consecutive non-overlapping windows of T+1 tokens, window k covering split
// tokens [k(T+1), (k+1)(T+1)), starting at token 0; inputs are its first T tokens and targets its last T. The
// last partial window is dropped. The mean cross-entropy over all targets of all windows is the loss.
//
// Documents (off by default; TextDataset::set_bos, `--bos CHAR`, built in for bigram-backcopy): a declared BOS
// token starts every document. Training windows then start only at a BOS: s is uniform over the split's BOS
// positions with s + T + 1 <= its length, so position 0 of every window is a BOS. A window longer than its
// document runs on into the next ones (packing: documents follow each other with their own BOS; no padding).
// Evaluation rule for documents: window 0 starts at the split's first BOS, window k at the first BOS at or
// after the end of window k-1 (its T+1 tokens), as long as T+1 tokens remain; tokens before the first BOS and
// between a window's end and the next BOS are not scored. With documents of exactly T+1 tokens every document
// is one window.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"
#include "tensor/rng.h"

namespace gradlab {

enum class Split { Train, Val };
const char* split_name(Split split);  // "train", "val"

struct Batch {
  std::int64_t B = 0, T = 0;
  std::vector<std::int32_t> inputs;   // (B, T) row-major
  std::vector<std::int32_t> targets;  // (B, T) row-major, -1 = ignored position
  std::int64_t target_count() const;  // positions with a target
};

// A uniform integer in [0, n) for any n > 0 (two draws when n does not fit 32 bits).
std::uint64_t uniform_index(Rng& rng, std::uint64_t n);

// The evaluation windows of the document rule above over tokens[0, n): their start offsets. T >= 1.
std::vector<std::int64_t> document_window_starts(const std::int32_t* tokens, std::int64_t n, std::int64_t T,
                                                 std::int32_t bos);

class Dataset {
 public:
  virtual ~Dataset();
  virtual std::string name() const = 0;
  virtual std::int64_t vocab_size() const = 0;
  // B sequences of length T for training (random windows or random task instances), drawn from rng.
  virtual Batch batch(Split split, std::int64_t B, std::int64_t T, Rng& rng) const = 0;
  // The evaluation set for length T: window_count windows, fixed (no Rng argument); windows [first, first+count).
  virtual std::int64_t eval_window_count(Split split, std::int64_t T) const = 0;
  virtual Batch eval_windows(Split split, std::int64_t T, std::int64_t first, std::int64_t count) const = 0;
  Batch eval_windows(Split split, std::int64_t T) const;  // all of them
  // Throws a one-line error when a split cannot give one window of length T (call it before training).
  virtual void check_length(std::int64_t T) const = 0;
  // true for the position tasks: accuracy is a meaningful metric.
  virtual bool is_task() const { return false; }
  // The text tokenizer (nullptr for tasks).
  virtual const Tokenizer* tokenizer() const { return nullptr; }
  // One line for the user: sizes of the splits, vocabulary.
  virtual std::string describe() const = 0;
};

class TextDataset : public Dataset {
 public:
  // tokens must lie in [0, tokenizer.vocab_size()) and be non-empty.
  TextDataset(std::string name, std::vector<std::int32_t> tokens, Tokenizer tokenizer);
  // Encodes text with the given tokenizer (e.g. the one saved with a model).
  static std::unique_ptr<TextDataset> from_text(std::string name, std::string_view text, Tokenizer tokenizer);
  // Builds the tokenizer from the whole text (char: its sorted characters; byte: 256 ids), then encodes.
  static std::unique_ptr<TextDataset> from_text(std::string name, std::string_view text, TokenizerKind kind);

  std::string name() const override { return name_; }
  std::int64_t vocab_size() const override { return tokenizer_.vocab_size(); }
  Batch batch(Split split, std::int64_t B, std::int64_t T, Rng& rng) const override;
  std::int64_t eval_window_count(Split split, std::int64_t T) const override;
  Batch eval_windows(Split split, std::int64_t T, std::int64_t first, std::int64_t count) const override;
  using Dataset::eval_windows;
  void check_length(std::int64_t T) const override;
  const Tokenizer* tokenizer() const override { return &tokenizer_; }
  std::string describe() const override;

  std::int64_t token_count() const { return static_cast<std::int64_t>(tokens_.size()); }
  std::int64_t split_size(Split split) const;
  const std::int32_t* split_begin(Split split) const;

  // Declares the BOS token that starts every document (the document rule above); -1 turns it off. Throws for
  // an id outside the vocabulary and when a split holds no BOS.
  void set_bos(std::int32_t bos_id);
  // The same from a character of the text ("^"): exactly one character of the vocabulary.
  void set_bos_character(const std::string& character);
  std::int32_t bos() const { return bos_; }
  bool document_aligned() const { return bos_ >= 0; }

 private:
  // BOS positions of a split (offsets from split_begin), ascending.
  const std::vector<std::int64_t>& bos_positions(Split split) const {
    return split == Split::Train ? bos_train_ : bos_val_;
  }
  // How many BOS positions s of a split allow a window: s + T + 1 <= split length.
  std::int64_t window_starts(Split split, std::int64_t T) const;

  std::string name_;
  std::vector<std::int32_t> tokens_;
  Tokenizer tokenizer_;
  std::int64_t n_train_ = 0;
  std::int32_t bos_ = -1;
  std::vector<std::int64_t> bos_train_, bos_val_;
};

}  // namespace gradlab
