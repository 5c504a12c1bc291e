// Fuzz target: the JSON and text strings a checkpoint carries in its metadata.
//
// The first byte picks the reader, the rest is the string:
//   0  GPTConfig::from_json       ("config" of model.safetensors)
//   1  Tokenizer::from_json       ("tokenizer")
//   2  TrainConfig::from_json     ("train_config" of train_state.safetensors)
//   3  rng_state_from_string      ("rng")
// Each must throw a one-line gradlab::Error or return a value that survives its own round trip:
// from_json(to_json(x)) gives to_json(x) again (and the RNG state text parses back to the same state).
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_common.h"
#include "train/checkpoint.h"
#include "nn/gpt.h"
#include "data/tokenizer.h"
#include "train/trainer.h"
#include "tensor/error.h"

using namespace gradlab;
using gradlab_fuzz::fail;

namespace {

template <typename T>
void check_json_round_trip(const T& value, const char* what) {
  const std::string once = value.to_json();
  std::string twice;
  try {
    twice = T::from_json(once).to_json();
  } catch (const Error& e) {
    fail(what, std::string("to_json output is refused by from_json: ") + e.what() + "\n" + once);
  }
  if (once != twice) fail(what, "to_json is not stable under from_json:\n" + once + "\n" + twice);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int which = data[0] % 4;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (which) {
      case 0:
        check_json_round_trip(GPTConfig::from_json(text), "GPTConfig");
        break;
      case 1: {
        Tokenizer tok = Tokenizer::from_json(text);
        if (tok.vocab_size() < 1) fail("a tokenizer with no tokens", text);
        check_json_round_trip(tok, "Tokenizer");
        break;
      }
      case 2:
        check_json_round_trip(TrainConfig::from_json(text), "TrainConfig");
        break;
      case 3: {
        Rng::State s = rng_state_from_string(text, "fuzz");
        Rng::State t = rng_state_from_string(rng_state_to_string(s), "fuzz round trip");
        if (std::memcmp(&s.state, &t.state, sizeof s.state) != 0 || s.inc != t.inc || s.has_spare != t.has_spare ||
            std::memcmp(&s.spare, &t.spare, sizeof s.spare) != 0)
          fail("the RNG state text does not round-trip", rng_state_to_string(s));
        break;
      }
    }
  } catch (const Error& e) {
    gradlab_fuzz::check_error_message(e.what(), /*strict=*/false);
  }
  return 0;
}
