// Chapter 1: tensors. The caching allocator behind Storage: a freed block comes back for the next tensor of
// its size class, classes never mix, blocks stay 64-byte aligned, and the cache respects its bound.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "tensor/tensor.h"

using namespace gradlab;

namespace {
// Sets a cache limit for one test and restores the previous one (and an empty cache) afterwards.
struct CacheLimitGuard {
  std::size_t saved = storage_cache_stats().limit_bytes;
  explicit CacheLimitGuard(std::size_t limit) {
    storage_cache_release();
    set_storage_cache_limit(limit);
  }
  ~CacheLimitGuard() {
    set_storage_cache_limit(saved);
    storage_cache_release();
  }
};

const void* address(const Tensor& t) { return t.data<float>(); }
}  // namespace

TEST_SUITE("tensor") {
  TEST_CASE("storage size classes: 64-byte steps to 4 KiB, then four per doubling") {
    CHECK(storage_size_class(0) == 64);
    CHECK(storage_size_class(1) == 64);
    CHECK(storage_size_class(64) == 64);
    CHECK(storage_size_class(65) == 128);
    CHECK(storage_size_class(4096) == 4096);
    CHECK(storage_size_class(4097) == 5120);  // 4096 * 1.25
    CHECK(storage_size_class(8192) == 8192);
    CHECK(storage_size_class(8193) == 10240);
    CHECK(storage_size_class(768 * 128 * 4) == 768 * 128 * 4);  // 1.5 * 2^18: a class of its own
    for (std::size_t n : {1u, 100u, 4000u, 5000u, 100000u, 393217u, 3000000u}) {
      const std::size_t c = storage_size_class(n);
      CHECK(c >= n);
      CHECK(c % 64 == 0);
      CHECK(c - n < std::max<std::size_t>(64, n / 4));  // at most 25% (or one 64-byte step) wasted
      CHECK(storage_size_class(c) == c);             // a class is its own class
    }
  }

  TEST_CASE("storage cache: a freed block comes back for the next tensor of its class") {
    CacheLimitGuard guard(std::size_t(64) << 20);
    const void* first;
    {
      Tensor a = Tensor::empty({768, 128});
      first = address(a);
    }
    CHECK(storage_cache_stats().cached_blocks == 1);
    CHECK(storage_cache_stats().cached_bytes == storage_size_class(768 * 128 * 4));
    const auto hits = storage_cache_stats().hits;
    Tensor b = Tensor::empty({128, 768});  // same byte count, other shape
    CHECK(address(b) == first);
    CHECK(storage_cache_stats().hits == hits + 1);
    CHECK(storage_cache_stats().cached_blocks == 0);
    // A slightly smaller request of the same class reuses the block too.
    const void* second = address(b);
    b = Tensor();
    Tensor c = Tensor::empty({768 * 128 - 100});
    CHECK(address(c) == second);
  }

  TEST_CASE("storage cache: different size classes do not mix") {
    CacheLimitGuard guard(std::size_t(64) << 20);
    const void* small_block;
    {
      Tensor small = Tensor::empty({16});  // 64 B
      small_block = address(small);
    }
    Tensor other = Tensor::empty({32});  // 128 B: another class
    CHECK(address(other) != small_block);
    Tensor big = Tensor::empty({768, 512});
    CHECK(address(big) != small_block);
    CHECK(storage_cache_stats().cached_blocks == 1);  // the 64 B block still waits for its class
    Tensor again = Tensor::empty({10});
    CHECK(address(again) == small_block);
  }

  TEST_CASE("storage cache: blocks are 64-byte aligned and zeros() clears a reused block") {
    CacheLimitGuard guard(std::size_t(64) << 20);
    for (std::int64_t n : {1, 7, 100, 1000, 5000, 98304}) {
      const void* p;
      {
        Tensor dirty = Tensor::full({n}, 3.5);
        p = address(dirty);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
      }
      Tensor z = Tensor::zeros({n});
      CHECK(address(z) == p);  // reused, so the zeros must have been written
      CHECK(reinterpret_cast<std::uintptr_t>(address(z)) % 64 == 0);
      bool all_zero = true;
      for (float v : z.to_floats()) all_zero = all_zero && v == 0.0f;
      CHECK(all_zero);
      Tensor d = Tensor::empty({n}, DType::F64);  // float64 of the same count: twice the bytes
      CHECK(reinterpret_cast<std::uintptr_t>(d.data<double>()) % 64 == 0);
    }
  }

  TEST_CASE("storage cache: the bound is respected") {
    const std::size_t block = storage_size_class(256 * 1024 * 4);  // 1 MiB
    CacheLimitGuard guard(3 * block);
    {
      std::vector<Tensor> live;
      for (int i = 0; i < 8; ++i) live.push_back(Tensor::empty({256 * 1024}));
    }  // eight 1 MiB blocks freed; only three fit in the cache
    CHECK(storage_cache_stats().cached_blocks == 3);
    CHECK(storage_cache_stats().cached_bytes == 3 * block);
    CHECK(storage_cache_stats().cached_bytes <= storage_cache_stats().limit_bytes);
    // Lowering the limit frees blocks at once.
    set_storage_cache_limit(block);
    CHECK(storage_cache_stats().cached_blocks == 1);
    storage_cache_release();
    CHECK(storage_cache_stats().cached_bytes == 0);
    CHECK(storage_cache_stats().limit_bytes == block);  // release keeps the limit
  }

  TEST_CASE("storage cache: limit 0 turns caching off, and GRADLAB_NO_CACHING_ALLOCATOR sets it") {
    CacheLimitGuard guard(0);
    const auto hits = storage_cache_stats().hits;
    for (int i = 0; i < 4; ++i) {
      Tensor t = Tensor::empty({1000});
      t.fill_(1.0);
    }
    CHECK(storage_cache_stats().cached_blocks == 0);
    CHECK(storage_cache_stats().hits == hits);  // every allocation went to the system

    const char* old = std::getenv("GRADLAB_NO_CACHING_ALLOCATOR");
    const std::string saved = old ? old : "";
    setenv("GRADLAB_NO_CACHING_ALLOCATOR", "1", 1);
    CHECK(storage_cache_limit_from_env() == 0);
    setenv("GRADLAB_NO_CACHING_ALLOCATOR", "0", 1);
    CHECK(storage_cache_limit_from_env() > 0);
    unsetenv("GRADLAB_NO_CACHING_ALLOCATOR");
    CHECK(storage_cache_limit_from_env() == std::size_t(1) << 30);
    if (old) setenv("GRADLAB_NO_CACHING_ALLOCATOR", saved.c_str(), 1);
  }
}
