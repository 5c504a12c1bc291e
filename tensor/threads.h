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

// True inside someone else's OpenMP parallel region (then kernels stay on the calling thread).
bool inside_parallel_region();

}  // namespace gradlab
