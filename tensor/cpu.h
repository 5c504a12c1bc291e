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
int max_threads();           // OpenMP threads the kernels will use (1 without OpenMP)
void set_num_threads(int n); // n >= 1; ignored without OpenMP

// One line such as "gradlab 0.1: AVX2+FMA on (CPU has it), OpenMP on, 2 threads".
std::string build_info();
void print_build_info(std::FILE* out = stderr);

}  // namespace gradlab
