#pragma once
// What this build and this processor can do. Reported at configure time by CMake and at start-up by every
// program (print_build_info), so that a slow run is never a mystery.
#include <cstdio>
#include <string>

namespace gradlab {

bool cpu_has_avx2_fma();     // the processor supports AVX2 and FMA (checked once, at run time)
bool built_with_avx2();      // the AVX2 kernels were compiled in (GRADLAB_AVX2=ON and a capable compiler)
bool use_avx2();             // both of the above, and GRADLAB_NO_AVX2 is not set in the environment
// AVX-512 runs one kernel only, the GEMM micro-kernel (tensor/gemm_avx512.cpp); everything else stays AVX2.
bool cpu_has_avx512();       // AVX-512 F and VL, AVX2 and FMA, and the OS saves the zmm/opmask state (XGETBV)
bool built_with_avx512();    // the AVX-512 GEMM kernel was compiled in (GRADLAB_AVX512=ON and a capable compiler)
bool use_avx512();           // both of the above, use_avx2(), and GRADLAB_NO_AVX512 is not set in the environment
// NEON (Advanced SIMD) is architectural on aarch64, so there is no CPU check and no environment switch:
// use_neon() is built_with_neon() (an aarch64 build with GRADLAB_NEON=ON, the default).
bool built_with_neon();      // the NEON kernels were compiled in
bool use_neon();
bool use_simd();             // use_avx2() || use_neon(): the _avx2/_neon kernels run instead of the portable loops
// Which SIMD kernels run here: "NEON", "AVX2+FMA", or "portable" (neither). Tests report it.
const char* simd_kernels();
bool built_with_openmp();
// The threads the kernels will use: OpenMP's count when built with it (OMP_NUM_THREADS, omp_set_num_threads),
// else OMP_NUM_THREADS or the hardware threads. Either way the worker pool (tensor/threads.h) runs them.
int max_threads();
void set_num_threads(int n); // n >= 1

// One line such as "gradlab 0.1: AVX2+FMA kernels on, OpenMP on, 2 threads on gradlab's worker pool"; the
// kernels part is "NEON kernels on", "AVX2+FMA kernels on", or "portable kernels (why)". After "AVX2+FMA kernels
// on" comes ", AVX-512 GEMM" when use_avx512(), or ", AVX-512 GEMM off (why)" on a CPU that has AVX-512.
std::string build_info();
void print_build_info(std::FILE* out = stderr);

}  // namespace gradlab
