#pragma once
// Storage: one 64-byte aligned block of memory shared by every view of a tensor, and the caching allocator
// that keeps freed blocks for reuse (tensor/storage.cpp says why and how).
#include <cstddef>
#include <cstdint>

namespace gradlab {

// One aligned block of memory, shared by every view of it.
class Storage {
 public:
  Storage(std::size_t nbytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
};

// The caching allocator behind Storage (storage.cpp): freed blocks wait on per-size-class free lists for
// the next Storage of that class, up to a bound. GRADLAB_NO_CACHING_ALLOCATOR=1 turns it off (limit 0).
struct StorageCacheStats {
  std::size_t cached_bytes;   // held in free lists now
  std::size_t cached_blocks;
  std::size_t limit_bytes;    // most bytes the free lists may hold; 0 = caching off
  std::uint64_t hits;         // allocations served from a free list
  std::uint64_t misses;       // allocations served by the system
};
StorageCacheStats storage_cache_stats();
void set_storage_cache_limit(std::size_t bytes);  // frees cached blocks beyond the new limit
void storage_cache_release();                      // frees every cached block; the limit stays
std::size_t storage_size_class(std::size_t nbytes);  // bytes of the block that serves nbytes (multiple of 64)
std::size_t storage_cache_limit_from_env();          // the start-up limit: 0 if GRADLAB_NO_CACHING_ALLOCATOR is set

}  // namespace gradlab
