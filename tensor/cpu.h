#pragma once
// What this build and this processor can do. Reported at configure time by CMake and at start-up by every
// program (print_build_info), so that a slow run is never a mystery.
#include <cstdio>
#include <string>

namespace gradlab {

bool cpu_has_avx2_fma();     // the processor supports AVX2 and FMA (checked once, at run time)
bool built_with_avx2();      // the AVX2 kernels were compiled in (GRADLAB_AVX2=ON and a capable compiler)
bool use_avx2();             // both of the above, and GRADLAB_NO_AVX2 is not set in the environment
bool built_with_openmp();
// The threads the kernels will use: OpenMP's count when built with it (OMP_NUM_THREADS, omp_set_num_threads),
// else OMP_NUM_THREADS or the hardware threads. Either way the worker pool (tensor/threads.h) runs them.
int max_threads();
void set_num_threads(int n); // n >= 1

// One line such as "gradlab 0.1: AVX2+FMA kernels on, OpenMP on, 2 threads on gradlab's worker pool".
std::string build_info();
void print_build_info(std::FILE* out = stderr);

}  // namespace gradlab
