// Writes the seed corpus of the fuzz targets with gradlab's own writers, so that the seeds are valid inputs
// the fuzzer then mutates. Usage: fuzz_make_seeds <corpus dir>   (writes <dir>/<target>/seed-*)
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "train/checkpoint.h"
#include "nn/gpt.h"
#include "train/safetensors.h"
#include "data/tasks.h"
#include "data/tokenizer.h"
#include "train/trainer.h"
#include "tensor/rng.h"

using namespace gradlab;

namespace {

std::string dir_of_corpus;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = dir_of_corpus + "/" + target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::cout << dir << "/" << name << " (" << bytes.size() << " bytes)\n";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A model file as load_model reads it: the smallest GPT, its config and tokenizer in the metadata.
std::string model_file(const GPTConfig& config, const Tokenizer* tok, const std::string& task) {
  const std::string path = std::filesystem::temp_directory_path() / "gradlab_fuzz_seed.safetensors";
  GPT model(config, 1);
  save_model(path, model, tok, task, 7);
  std::string bytes = slurp(path);
  std::filesystem::remove(path);
  return bytes;
}

std::string words(std::initializer_list<const char*> ws, char first) {
  std::string out(1, first);
  bool sep = false;
  for (const char* w : ws) {
    if (sep) out += '\0';
    out += w;
    sep = true;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds <corpus dir>\n";
    return 2;
  }
  dir_of_corpus = argv[1];

  // safetensors
  GPTConfig tiny;
  tiny.vocab_size = 4;
  tiny.block_size = 4;
  tiny.n_layer = 1;
  tiny.n_head = 1;
  tiny.n_embd = 4;
  const Tokenizer tok = Tokenizer::char_level("abc\n");
  put("fuzz_safetensors", "seed-model-char", model_file(tiny, &tok, ""));
  GPTConfig sm = tiny;
  sm.mask = "stablemask";
  sm.pos = PosKind::Rope;
  sm.n_head = 2;
  sm.bias = false;
  sm.norm = NormKind::RMSNorm;
  sm.mlp = MlpKind::SwiGLU;
  const Tokenizer bytes_tok = Tokenizer::byte_level();
  sm.vocab_size = bytes_tok.vocab_size();
  put("fuzz_safetensors", "seed-model-stablemask-byte", model_file(sm, &bytes_tok, ""));
  {
    auto task = make_task(task_names().front(), tiny.block_size);
    GPTConfig tc = tiny;
    tc.vocab_size = task->vocab_size();
    put("fuzz_safetensors", "seed-model-task", model_file(tc, nullptr, task_names().front()));
  }
  {
    std::map<std::string, Tensor> ts;
    ts["a"] = Tensor::from_floats({2, 3}, {0.5f, -1.0f, 2.0f, 0.0f, 3.25f, -0.125f});
    ts["b"] = Tensor::from_values({3}, {1e-3, -2.5, 7.0}, DType::F64);
    ts["scalar"] = Tensor::full({}, 1.5f);
    ts["empty"] = Tensor::zeros({0, 4});
    put("fuzz_safetensors", "seed-plain", serialize_safetensors(ts, {{"note", "plain tensors"}}));
  }
  put("fuzz_safetensors", "seed-empty-header", std::string("\x02\0\0\0\0\0\0\0{}", 10));

  // config / metadata strings
  put("fuzz_config_json", "seed-gpt-default", std::string(1, '\0') + GPTConfig().to_json());
  put("fuzz_config_json", "seed-gpt-stablemask", std::string(1, '\0') + sm.to_json());
  put("fuzz_config_json", "seed-tokenizer-char", std::string(1, '\1') + tok.to_json());
  put("fuzz_config_json", "seed-tokenizer-byte", std::string(1, '\1') + bytes_tok.to_json());
  put("fuzz_config_json", "seed-train-config", std::string(1, '\2') + TrainConfig().to_json());
  {
    Rng rng(42);
    (void)rng.normal();  // leaves a Box-Muller spare in the state
    put("fuzz_config_json", "seed-rng", std::string(1, '\3') + rng_state_to_string(rng.get_state()));
  }

  // texts
  put("fuzz_text", "seed-ascii", "First Citizen:\nBefore we proceed any further, hear me speak.\n");
  put("fuzz_text", "seed-utf8", "na\xc3\xaf" "ve caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82 \xe4\xb8\xad\xe6\x96\x87\n");
  put("fuzz_text", "seed-latin1", "caf\xe9 na\xefve \xa3 5\n");
  put("fuzz_text", "seed-broken-utf8", "\xc3(\xe2\x82\xf0\x9f\x99 \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80");
  put("fuzz_text", "seed-one-char", "a");

  // command lines (first byte: bit 0 allows positionals)
  put("fuzz_args", "seed-train", words({"--n_layer", "8", "--n-embd=64", "--mask", "stablemask", "--bias", "--out", "run"}, '\0'));
  put("fuzz_args", "seed-doubles", words({"--dropout=0.1", "--learning_rate", "3e-4", "--min_lr", "1e-5", "--out=x"}, '\0'));
  put("fuzz_args", "seed-positionals", words({"--out", "d", "a.txt", "--", "--not-a-flag"}, '\1'));
  put("fuzz_args", "seed-help", words({"--help"}, '\0'));
  put("fuzz_args", "seed-errors", words({"--n_layr", "3", "--seed", "-1", "--bias=maybe", "--out"}, '\0'));
  return 0;
}
