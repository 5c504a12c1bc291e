#pragma once
// Helpers of the hostile-input tests: a temporary directory, file bytes, the commands called in-process with
// their streams captured, and a real checkpoint directory written once by `gradlab train`.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hostile {

struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path + "/" + name; }
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

// A command's result: exit code and what it wrote.
struct Run {
  int code = -1;
  std::string out, err;
  int err_lines() const;  // number of '\n' in err
};
Run train(const std::vector<std::string>& args);
Run eval(const std::vector<std::string>& args);

// A small ASCII training text (the grammar corpus is not needed: any text with enough characters works).
std::string ascii_text(std::size_t n_chars);

// A checkpoint directory made by `gradlab train` (2 steps of a 1-layer model on ascii_text) in a process-wide
// temporary directory; copy_checkpoint() gives each test its own copy to damage.
const std::string& reference_checkpoint();
const std::string& reference_text_file();  // the text it was trained on
void copy_checkpoint(const std::string& to_dir);
// The flags of that tiny run (without --data / --out / --max_iters).
std::vector<std::string> tiny_flags();

// A safetensors file split into its parts, to damage one of them and put it back together.
struct SafetensorsParts {
  nlohmann::ordered_json header;
  std::string data;
  static SafetensorsParts parse(const std::string& bytes);  // of a valid file
  std::string bytes() const;                                 // length prefix + header (padded to 8) + data
  // The [begin, end) byte range of a tensor's data.
  std::pair<std::size_t, std::size_t> range(const std::string& tensor) const;
};

}  // namespace hostile
