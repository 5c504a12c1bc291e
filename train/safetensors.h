#pragma once
// safetensors: the checkpoint format of gradlab (and of Hugging Face).
//
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  JSON object: { "<tensor name>": {"dtype": "F32", "shape": [r, c], "data_offsets": [begin, end]},
//                             ...,
//                             "__metadata__": {"<key>": "<string value>", ...} }   (optional)
//   [rest]     the tensors' bytes, row-major, little-endian; offsets count from the start of this region.
//
// Reading trusts nothing: the whole header is validated before a single data byte is read or a tensor is
// allocated (see read_safetensors for the list). Every problem is one gradlab::Error line that names the file
// and, where there is one, the tensor.
//
// Writing is atomic: the bytes go to "<path>.tmp.<pid>", are fsync'ed, renamed over <path>, and the directory
// is fsync'ed. A crash at any moment leaves either the old file or the new one, never half of one.
// Fault injection (tests only): with the environment variable GRADLAB_FAULT_WRITE_BYTES=N, every AtomicWriter
// kills its own process with SIGKILL once N bytes have been written, so a test can prove the old file survives.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "tensor/tensor.h"

namespace gradlab {

// Integrity: write_safetensors stores a CRC32C of every tensor's bytes, and one of the other metadata, in the
// metadata key "gradlab.crc32c" (a JSON object {"<tensor>": "<8 hex digits>", ..., "__metadata__": "..."}).
// The reader verifies them and removes the key from the metadata it returns; a flipped byte or two same-size
// tensors with swapped offsets are refused naming the tensor. Files without the key (written before it, or by
// other programs) are read as before, with `checksummed` false.
constexpr const char* kSafetensorsChecksumKey = "gradlab.crc32c";

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;        // contiguous, F32 or F64
  std::map<std::string, std::string> metadata;  // "__metadata__" (empty when absent), without the checksum key
  bool checksummed = false;                     // the file carried checksums, and every one matched
};

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as in iSCSI and ext4: crc32c("123456789") = 0xE3069283.
// `crc` continues an earlier value (0 to start).
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);

// Limits of the reader.
constexpr std::uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;  // as in the reference implementation
constexpr int kSafetensorsMaxJsonDepth = 8;                        // a valid header needs 3
constexpr std::uint64_t kSafetensorsMaxJsonArray = 64;             // shape dimensions (offsets need 2)
constexpr std::uint64_t kSafetensorsMaxJsonValues = 250'000;       // ~25k tensors; GPT-2 XL has ~580

// Reads and validates a safetensors file. Rejected, with the file (and tensor) named:
//   a file shorter than 8 bytes; a header length beyond the file or above 100 MB; invalid JSON, JSON that is
//   not an object, nesting deeper than 8, an array longer than 64, more than 250000 JSON values (these caps keep
//   the parser's memory small and proportional), duplicate keys at any level; a tensor entry that is not an object,
//   lacks or has unknown keys; a dtype other than F32/F64 (the dtype is named; F16, BF16, I64, ... are known
//   but unsupported); shape entries that are not non-negative integers; a shape whose element or byte count
//   overflows 64 bits; data_offsets that are not two integers, end < begin, end beyond the data, a byte length
//   other than numel * dtype size; ranges that overlap, leave gaps, or leave trailing bytes unused;
//   "__metadata__" that is not an object of strings; an empty tensor name; a file that changes size while read.
SafetensorsFile read_safetensors(const std::string& path);

// The same validation on bytes in memory; `label` stands for the file name in errors (used by the fuzzer).
SafetensorsFile parse_safetensors(const void* bytes, std::size_t size, const std::string& label);

// Writes F32/F64 tensors (any strides; written row-major) sorted by name, with metadata, atomically.
// The header is padded with spaces so that the data starts at a multiple of 8 bytes.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The exact bytes write_safetensors would write (for tests and in-memory round trips).
std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// Throws "<label>: tensor 'name' has a non-finite value (nan) at flat index i" for the first tensor (in name
// order) holding a NaN or an infinity; `label` is usually the file path.
void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& label);

// Atomic file replacement: write pieces, then commit(). Destroying an uncommitted writer removes the
// temporary file and leaves <path> untouched.
class AtomicWriter {
 public:
  explicit AtomicWriter(std::string path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  void write(const void* data, std::size_t nbytes);
  void write(const std::string& bytes) { write(bytes.data(), bytes.size()); }
  void commit();  // fsync, close, rename over the target, fsync the directory
  const std::string& temp_path() const { return temp_path_; }

 private:
  std::string path_, temp_path_;
  int fd_ = -1;
  bool committed_ = false;
  std::uint64_t written_ = 0;
  std::int64_t fault_after_ = -1;  // GRADLAB_FAULT_WRITE_BYTES, -1 when unset
};

// Fault injection (tests only): with GRADLAB_FAULT_SAVE_POINT=N the process kills itself with SIGKILL at the
// N-th call (counted over the process). Every AtomicWriter::write and commit and every step of a checkpoint
// save (mkdir, rename, link, removal) is such a point, so a test can stop a save anywhere.
void fault_injection_point();

// Convenience: the whole content at once.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace gradlab
