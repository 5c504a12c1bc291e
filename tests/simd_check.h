#pragma once
// For the tests that hold a SIMD kernel against its reference: which SIMD kernels this build runs (AVX2+FMA on
// x86-64, NEON on aarch64), and the line each such test prints once its comparisons ran, which the arm64 CI
// stage (scripts/arm64.sh) counts so that a test that returned early cannot pass for a NEON one.
#include <doctest/doctest.h>

#include <string>

#include "tensor/cpu.h"

// GRADLAB_SIMD(erf) names erf_neon in an aarch64 build, erf_avx2 in an x86-64 one with the AVX2 kernels; use
// it only where GRADLAB_HAVE_SIMD_KERNELS is defined, and call the result only when gradlab::use_simd().
#if defined(GRADLAB_HAVE_NEON_KERNELS)
#define GRADLAB_HAVE_SIMD_KERNELS 1
#define GRADLAB_SIMD(name) name##_neon
#elif defined(GRADLAB_HAVE_AVX2_KERNELS)
#define GRADLAB_HAVE_SIMD_KERNELS 1
#define GRADLAB_SIMD(name) name##_avx2
#endif

// True when a SIMD kernel is in use here and so is to be compared; says so when there is none.
inline bool simd_in_use() {
  if (!gradlab::use_simd()) MESSAGE("no SIMD kernels in use (" << gradlab::build_info() << "): nothing to compare");
  return gradlab::use_simd();
}

// Printed at the end of a validation test, after its checks: "SIMD kernel validated: NEON <what>".
inline void report_simd_validated(const char* what) {
  MESSAGE("SIMD kernel validated: " << std::string(gradlab::simd_kernels()) << " " << std::string(what));
}
