// Storage, the aligned memory block under every tensor, and the caching allocator in front of the system's
// (tensor/storage.h).
#include "tensor/storage.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "tensor/error.h"

namespace gradlab {

// ---------------------------------------------------------------------------------------------------------
// Storage: 64-byte aligned so AVX2 loads of whole rows start on cache lines.
//
// A caching allocator sits between Storage and the system. A training step frees and allocates the same few
// hundred activation and gradient buffers every step; from the system each large one is a fresh mmap whose
// pages fault in one by one (thousands of page faults per step). Here a freed block goes onto a free list
// for its size class and the next Storage of that class takes it back, pages already mapped.
//
// Size classes: multiples of 64 B up to 4 KiB; above that four classes per doubling (2^k * 1, 1.25, 1.5,
// 1.75), so a block serves requests at most 25% smaller than itself and a model needs few classes. The cache
// holds at most `limit` bytes of free blocks (1 GiB; beyond it freed blocks go back to the system), so memory
// cannot grow without bound. GRADLAB_NO_CACHING_ALLOCATOR=1 sets the limit to 0: every block is really
// freed, which AddressSanitizer needs to see a use after free.

std::size_t storage_size_class(std::size_t nbytes) {
  if (nbytes <= 4096) return std::max<std::size_t>(64, (nbytes + 63) / 64 * 64);
  const std::size_t step = std::bit_floor(nbytes - 1) / 4;  // 2^k < nbytes <= 2^(k+1): step 2^k / 4
  return (nbytes + step - 1) / step * step;
}

std::size_t storage_cache_limit_from_env() {
  const char* v = std::getenv("GRADLAB_NO_CACHING_ALLOCATOR");
  const bool disabled = v != nullptr && *v != '\0' && *v != '0';
  return disabled ? 0 : std::size_t(1) << 30;
}

namespace {
struct StorageCache {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;  // size class -> blocks (used LIFO)
  StorageCacheStats stats{0, 0, storage_cache_limit_from_env(), 0, 0};

  // Really frees cached blocks until at most `keep` bytes stay cached.
  void shrink_to(std::size_t keep) {
    for (auto& [bytes, blocks] : free_blocks)
      while (stats.cached_bytes > keep && !blocks.empty()) {
        std::free(blocks.back());
        blocks.pop_back();
        stats.cached_bytes -= bytes;
        --stats.cached_blocks;
      }
  }
};

StorageCache& storage_cache() {
  static StorageCache* cache = new StorageCache;  // never destroyed: tensors may be freed during exit
  return *cache;
}
}  // namespace

StorageCacheStats storage_cache_stats() {
  StorageCache& c = storage_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void set_storage_cache_limit(std::size_t bytes) {
  StorageCache& c = storage_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.limit_bytes = bytes;
  c.shrink_to(bytes);
}

void storage_cache_release() {
  StorageCache& c = storage_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.shrink_to(0);
}

Storage::Storage(std::size_t nbytes) : nbytes_(nbytes) {
  const std::size_t bytes = storage_size_class(nbytes);
  StorageCache& c = storage_cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      data_ = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= bytes;
      --c.stats.cached_blocks;
      ++c.stats.hits;
      return;
    }
    ++c.stats.misses;
  }
  data_ = std::aligned_alloc(64, bytes);
  if (!data_) {  // the system is out of memory: give the cached blocks back and try once more
    storage_cache_release();
    data_ = std::aligned_alloc(64, bytes);
  }
  if (!data_) throw_error("Storage: could not allocate ", nbytes, " bytes");
}

Storage::~Storage() {
  const std::size_t bytes = storage_size_class(nbytes_);
  StorageCache& c = storage_cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.stats.cached_bytes + bytes <= c.stats.limit_bytes) {
      try {
        c.free_blocks[bytes].push_back(data_);
        c.stats.cached_bytes += bytes;
        ++c.stats.cached_blocks;
        return;
      } catch (const std::bad_alloc&) {
        // no room for the list entry: free the block below instead
      }
    }
  }
  std::free(data_);
}

}  // namespace gradlab
