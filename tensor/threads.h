#pragma once
// gradlab's threads: one small pool of persistent workers shared by every parallel kernel (the GEMM, the
// fused attention). Why not OpenMP regions? libgomp's waits busy-spin for milliseconds; on a 2-core machine
// whose cores are also busy, or when two kernels with different thread systems alternate in a training step,
// a spinning waiter takes the core from the very thread it waits for. These waits spin briefly, then yield,
// then sleep. The pool size follows gradlab::max_threads() (so set_num_threads() governs it).
#include <cstdint>
#include <functional>

namespace gradlab {

// Runs body(thread, nthreads) for thread = 0..nthreads-1, thread 0 on the caller; nthreads <= wanted (1 when
// another call already uses the pool, or inside an OpenMP parallel region). Returns when all are done.
void parallel_run(int wanted, const std::function<void(int thread, int nthreads)>& body);

// Items 0..n-1 handed out one at a time from a shared counter (dynamic scheduling, for uneven work);
// body(item, thread). Results must not depend on which thread ran an item.
void parallel_for_dynamic(std::int64_t n, int wanted, const std::function<void(std::int64_t item, int thread)>& body);

// Splitting elementwise and row-wise work over the pool.
// Arrays below this many elements stay on the calling thread: waking a worker would cost more than it saves.
constexpr std::int64_t kParallelMinElements = 32 * 1024;

// Items 0..n-1 of item_size floats each (1 for elementwise work, C for rows): runs body(begin, end) on
// consecutive ranges covering [0, n), one range per thread, on up to max_threads() threads when
// n * item_size >= kParallelMinElements, else body(0, n) on the caller. For elementwise work (item_size 1)
// range boundaries fall on multiples of 16 floats (a cache line), so a kernel's 8-wide vector loop leaves
// the same scalar tail as a serial call: results are bit-identical for every thread count.
void parallel_ranges(std::int64_t n, std::int64_t item_size,
                     const std::function<void(std::int64_t begin, std::int64_t end)>& body);

// True inside someone else's OpenMP parallel region (then kernels stay on the calling thread).
bool inside_parallel_region();

}  // namespace gradlab
