// The start-up line names the kernels that run (tensor/cpu.h), and an aarch64 build runs the NEON ones.
// On x86-64 it also says whether the AVX-512 GEMM kernel runs.
#include <doctest/doctest.h>

#include <string>

#include "tensor/cpu.h"

using namespace gradlab;

TEST_SUITE("tensor") {
  TEST_CASE("cpu: build_info names the kernels in use (NEON, AVX2+FMA or portable)") {
    const std::string info = build_info();
    INFO(info);
    CHECK(info.rfind("gradlab 0.1: ", 0) == 0);
    const bool neon = info.find("NEON kernels on") != std::string::npos;
    const bool avx2 = info.find("AVX2+FMA kernels on") != std::string::npos;
    const bool portable = info.find("portable kernels") != std::string::npos;
    CHECK(int(neon) + int(avx2) + int(portable) == 1);  // exactly one of the three
    CHECK(neon == use_neon());
    CHECK(avx2 == use_avx2());
    CHECK(portable == !use_simd());
    CHECK(std::string(simd_kernels()) == (neon ? "NEON" : avx2 ? "AVX2+FMA" : "portable"));
    // The AVX-512 GEMM kernel: named after "AVX2+FMA kernels on" (which stays, for the scripts that look for it)
    // when it runs, with a reason when the CPU has it but it does not run, not at all otherwise.
    const bool avx512 = info.find(", AVX-512 GEMM,") != std::string::npos;
    CHECK(avx512 == use_avx512());
    if (use_avx512()) CHECK((use_avx2() && cpu_has_avx512() && built_with_avx512()));
    if (!cpu_has_avx512()) CHECK(info.find("AVX-512") == std::string::npos);
    if (cpu_has_avx512() && use_avx2() && !use_avx512()) CHECK(info.find("AVX-512 GEMM off (") != std::string::npos);
#if defined(__x86_64__)
    // our CPUID + XGETBV check against the compiler's own (which also asks the OS about the zmm state)
    CHECK(cpu_has_avx512() == (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                               cpu_has_avx2_fma()));
#endif
#if defined(__aarch64__)
    // every aarch64 processor has NEON: a build for it with the kernels compiled in always uses them
    CHECK(use_neon() == built_with_neon());
    CHECK_FALSE(use_avx2());
#else
    CHECK_FALSE(use_neon());
#endif
  }
}
