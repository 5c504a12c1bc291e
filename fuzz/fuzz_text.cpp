// Fuzz target: a training or evaluation text, any bytes.
//
// Checks the documented behaviour of data/tokenizer.h on arbitrary bytes, invalid UTF-8 included:
//   - decode_utf8 covers every byte exactly once, in order; each invalid byte is one U+FFFD of length 1, and
//     count_invalid_utf8 counts them; re-encoding the code points gives the text back when it is valid UTF-8;
//   - the char tokenizer built from the text encodes it, and decode(encode(text)) is the text with each
//     invalid byte replaced by U+FFFD; the byte tokenizer round-trips every byte;
//   - read_text_file returns the bytes (from an in-memory file) or, for an empty one, an error;
//   - TextDataset accepts the text or refuses a too-short split with an error, and its windows stay in range.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_common.h"
#include "data/dataset.h"
#include "data/textfile.h"
#include "data/tokenizer.h"
#include "tensor/error.h"
#include "tensor/rng.h"

using namespace gradlab;
using gradlab_fuzz::fail;

namespace {

void check_batch(const Batch& b, std::int64_t vocab, const char* what) {
  if (static_cast<std::int64_t>(b.inputs.size()) != b.B * b.T || b.targets.size() != b.inputs.size())
    fail(what, "batch sizes disagree with B*T");
  for (std::size_t i = 0; i < b.inputs.size(); ++i) {
    if (b.inputs[i] < 0 || b.inputs[i] >= vocab) fail(what, "input id out of range");
    if (b.targets[i] < -1 || b.targets[i] >= vocab) fail(what, "target id out of range");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // UTF-8 decoding
  const std::vector<Utf8Char> chars = decode_utf8(text);
  std::size_t next = 0, invalid = 0;
  std::string reencoded;
  for (const Utf8Char& c : chars) {
    if (c.offset != next || c.length < 1 || c.length > 4) fail("decode_utf8 does not tile the bytes", "");
    if (!c.valid && (c.code_point != 0xFFFD || c.length != 1)) fail("an invalid byte is not one U+FFFD", "");
    if (c.code_point > 0x10FFFF || (c.code_point >= 0xD800 && c.code_point <= 0xDFFF))
      fail("decode_utf8 produced a non-scalar value", std::to_string(static_cast<std::uint32_t>(c.code_point)));
    invalid += c.valid ? 0 : 1;
    next += c.length;
    append_utf8(reencoded, c.code_point);
  }
  if (next != size) fail("decode_utf8 stopped early", "");
  if (invalid != count_invalid_utf8(text)) fail("count_invalid_utf8 disagrees with decode_utf8", "");
  if (invalid == 0 && reencoded != text) fail("valid UTF-8 does not re-encode to itself", "");

  // Tokenizers
  const Tokenizer bytes = Tokenizer::byte_level();
  if (bytes.decode(bytes.encode(text)) != text) fail("the byte tokenizer does not round-trip", "");
  try {
    const Tokenizer chars_tok = Tokenizer::char_level(text);
    const std::vector<std::int32_t> ids = chars_tok.encode(text);
    if (ids.size() != chars.size()) fail("char tokenizer: one id per character expected", "");
    if (chars_tok.decode(ids) != reencoded) fail("char tokenizer: decode(encode(text)) is not the replaced text", "");
    if (Tokenizer::from_json(chars_tok.to_json()).vocab() != chars_tok.vocab()) fail("char vocab JSON round trip", "");
  } catch (const Error& e) {
    if (size != 0) fail("char_level refused a non-empty text", e.what());  // documented: only empty text throws
    gradlab_fuzz::check_error_message(e.what());
  }

  // The file reader
  {
    gradlab_fuzz::MemFile mem(data, size);
    try {
      if (read_text_file(mem.path) != text) fail("read_text_file returned other bytes", "");
      if (size == 0) fail("read_text_file accepted an empty file", "");
    } catch (const Error& e) {
      if (size != 0) fail("read_text_file refused a non-empty file", e.what());
      gradlab_fuzz::check_error_message(e.what());
    }
  }

  // The dataset over the text, with a window length taken from the first byte
  if (size == 0) return 0;
  const std::int64_t T = 1 + data[0] % 16;
  try {
    auto ds = TextDataset::from_text("fuzz", text, TokenizerKind::Char);
    ds->check_length(T);
    Rng rng(size);
    for (Split split : {Split::Train, Split::Val}) {
      check_batch(ds->batch(split, 2, T, rng), ds->vocab_size(), "TextDataset::batch");
      if (ds->eval_window_count(split, T) > 0) check_batch(ds->eval_windows(split, T), ds->vocab_size(), "eval_windows");
    }
  } catch (const Error& e) {
    gradlab_fuzz::check_error_message(e.what());
  }
  return 0;
}
