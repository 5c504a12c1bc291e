// The worker pool behind tensor/threads.h (moved here from gemm.cpp so the attention kernel shares it).
#include "tensor/threads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "tensor/cpu.h"

#ifdef GRADLAB_HAVE_OPENMP
#include <omp.h>
#endif

namespace gradlab {

namespace {

// ---------------------------------------------------------------------------------------------------------
// Threads. The packed rungs run on a small pool of persistent worker threads, sized by gradlab::max_threads()
// (the OpenMP thread count, so set_num_threads() governs it). Why not `#pragma omp parallel`? libgomp's
// idle and barrier waits busy-spin for milliseconds; on a machine whose cores are also busy (a build, other
// programs) a spinning waiter takes CPU time from the thread it waits for, and a 1 ms multiply took 30 ms
// at 2 threads. These waits spin only briefly, then yield the core, then sleep.
// ---------------------------------------------------------------------------------------------------------
class WorkerPool {
 public:
  using Task = void (*)(void* ctx, int thread, int nthreads);

  // Runs task(ctx, t, n) for t = 0..n-1, t = 0 on the calling thread; returns n, the threads used
  // (fewer than wanted when another call is using the pool: the work then runs on this thread alone).
  int run(int wanted, Task task, void* ctx) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (wanted <= 1 || !busy.owns_lock()) {
      task(ctx, 0, 1);
      return 1;
    }
    wanted = std::min(wanted, 255);  // the thread count travels in 8 bits of job_
    grow(wanted - 1);
    const int n = std::min<int>(wanted, int(workers_.size()) + 1);
    task_ = task;
    ctx_ = ctx;
    remaining_.store(n - 1);
    // Publish (generation, thread count) in one word: a worker reads both consistently. seq_cst, paired with
    // the sleepers' check (no lost wake-up).
    job_.store(((job_.load() >> 8) + 1) << 8 | uint64_t(n));
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    task(ctx, 0, n);
    int spins = 0;
    while (remaining_.load(std::memory_order_acquire) != 0) pause(spins);
    return n;
  }

 private:
  static void pause(int& spins) {
    if (++spins < 256) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }

  void grow(int count) {
    while (int(workers_.size()) < count) {
      const int index = int(workers_.size()) + 1;
      // The worker starts from the generation before the task that is about to be published, which it may
      // only see after it has been published (reading it inside the thread would skip that task).
      const uint64_t seen = job_.load();
      workers_.emplace_back([this, index, seen] { loop(index, seen); });
      workers_.back().detach();  // lives as long as the process (the pool is never destroyed)
    }
  }

  void loop(int index, uint64_t seen) {
    for (;;) {
      // Wait for a new task: spin a little, yield for ~0.2 ms (calls in a training step come back to back),
      // then sleep until woken.
      const auto yield_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      int spins = 0;
      while (job_.load(std::memory_order_acquire) == seen) {
        pause(spins);
        if (spins > 256 && (spins & 63) == 0 && std::chrono::steady_clock::now() > yield_until) {
          std::unique_lock<std::mutex> lock(sleep_mutex_);
          sleepers_.fetch_add(1);
          wake_.wait(lock, [&] { return job_.load() != seen; });
          sleepers_.fetch_sub(1);
        }
      }
      // Only a worker the job counts on touches task_ and ctx_; the caller does not publish another job before
      // all of them are done. A worker left out (index >= n) may skip jobs, and simply waits for the next.
      seen = job_.load(std::memory_order_acquire);
      const int n = int(seen & 0xff);
      if (index < n) {
        task_(ctx_, index, n);
        remaining_.fetch_sub(1, std::memory_order_release);
      }
    }
  }

  std::mutex busy_;  // one multiply at a time uses the workers
  std::vector<std::thread> workers_;
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<uint64_t> job_{0};  // (generation << 8) | threads of the current job
  std::atomic<int> remaining_{0};
  std::atomic<int> sleepers_{0};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
};

WorkerPool& worker_pool() {
  static WorkerPool* pool = new WorkerPool;  // never destroyed: workers may still be asleep at exit
  return *pool;
}

}  // namespace

// Inside someone else's OpenMP parallel region, stay on the calling thread (no oversubscription).
bool inside_parallel_region() {
#ifdef GRADLAB_HAVE_OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}

void parallel_run(int wanted, const std::function<void(int, int)>& body) {
  if (wanted <= 1 || inside_parallel_region()) {
    body(0, 1);
    return;
  }
  worker_pool().run(
      wanted, [](void* ctx, int t, int n) { (*static_cast<const std::function<void(int, int)>*>(ctx))(t, n); },
      const_cast<void*>(static_cast<const void*>(&body)));
}

void parallel_for_dynamic(std::int64_t n, int wanted, const std::function<void(std::int64_t, int)>& body) {
  if (n <= 0) return;
  std::atomic<std::int64_t> next{0};
  parallel_run(static_cast<int>(std::min<std::int64_t>(wanted, n)), [&](int thread, int) {
    for (std::int64_t item = next.fetch_add(1); item < n; item = next.fetch_add(1)) body(item, thread);
  });
}

void parallel_ranges(std::int64_t n, std::int64_t item_size,
                     const std::function<void(std::int64_t begin, std::int64_t end)>& body) {
  if (n <= 0) return;
  const std::int64_t align = std::max<std::int64_t>(1, 16 / std::max<std::int64_t>(item_size, 1));
  const std::int64_t blocks = (n + align - 1) / align;
  const int wanted = n * item_size >= kParallelMinElements ? static_cast<int>(std::min<std::int64_t>(max_threads(), blocks)) : 1;
  if (wanted <= 1) return body(0, n);
  parallel_run(wanted, [&](int t, int nt) {
    // thread t of nt takes blocks [blocks*t/nt, blocks*(t+1)/nt)
    const std::int64_t begin = std::min(n, blocks * t / nt * align), end = std::min(n, blocks * (t + 1) / nt * align);
    if (begin < end) body(begin, end);
  });
}

}  // namespace gradlab
