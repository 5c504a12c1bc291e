// The start-up line names the kernels that run (tensor/cpu.h), and an aarch64 build runs the NEON ones.
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
#if defined(__aarch64__)
    // every aarch64 processor has NEON: a build for it with the kernels compiled in always uses them
    CHECK(use_neon() == built_with_neon());
    CHECK_FALSE(use_avx2());
#else
    CHECK_FALSE(use_neon());
#endif
  }
}
