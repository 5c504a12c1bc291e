#include "tensor/cpu.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "tensor/error.h"
#ifdef GRADLAB_HAVE_OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace gradlab {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

bool built_with_avx2() {
#ifdef GRADLAB_HAVE_AVX2_KERNELS
  return true;
#else
  return false;
#endif
}

bool use_avx2() {
  // GRADLAB_NO_AVX2=1 forces the portable kernels, to compare the two paths on one machine.
  static const bool disabled = [] {
    const char* v = std::getenv("GRADLAB_NO_AVX2");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  return built_with_avx2() && cpu_has_avx2_fma() && !disabled;
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool fma = c & (1u << 12), osxsave = c & (1u << 27);
    if (!fma || !osxsave) return false;  // without OSXSAVE, XGETBV itself would fault
    // XCR0: the OS saves SSE (bit 1), AVX (2), opmask (5), upper halves of zmm0-15 (6) and zmm16-31 (7) state.
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0u));
    if ((xcr0_lo & 0xE6u) != 0xE6u) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16), avx512vl = b & (1u << 31);
    return avx2 && avx512f && avx512vl;
  }();
  return has;
#else
  return false;
#endif
}

bool built_with_avx512() {
#ifdef GRADLAB_HAVE_AVX512_KERNELS
  return true;
#else
  return false;
#endif
}

namespace {
bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && *v != '0';
}
}  // namespace

bool use_avx512() {
  // GRADLAB_NO_AVX512=1 keeps the AVX2 GEMM kernel, to compare the two on one machine (same bits either way).
  static const bool disabled = env_set("GRADLAB_NO_AVX512");
  return built_with_avx512() && use_avx2() && cpu_has_avx512() && !disabled;
}

bool built_with_neon() {
#ifdef GRADLAB_HAVE_NEON_KERNELS
  return true;
#else
  return false;
#endif
}

bool use_neon() { return built_with_neon(); }

bool use_simd() { return use_avx2() || use_neon(); }

const char* simd_kernels() { return use_neon() ? "NEON" : use_avx2() ? "AVX2+FMA" : "portable"; }

bool built_with_openmp() {
#ifdef GRADLAB_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

#ifndef GRADLAB_HAVE_OPENMP
namespace {
// Without OpenMP the pool still needs a thread count: OMP_NUM_THREADS when it is a number >= 1 (so a build
// with and one without OpenMP obey the same setting), else the hardware threads.
int default_threads() {
  if (const char* v = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (end != v && *end == '\0' && n >= 1 && n <= 4096) return static_cast<int>(n);
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}
std::atomic<int>& thread_count() {
  static std::atomic<int> count{default_threads()};
  return count;
}
}  // namespace
#endif

int max_threads() {
#ifdef GRADLAB_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return thread_count().load();
#endif
}

void set_num_threads(int n) {
  if (n < 1) throw_error("set_num_threads: got ", n, ", expected at least 1");
#ifdef GRADLAB_HAVE_OPENMP
  omp_set_num_threads(n);
#else
  thread_count().store(n);
#endif
}

std::string build_info() {
  std::string s = "gradlab 0.1: ";
  if (use_neon())
    s += "NEON kernels on";
  else if (use_avx2()) {
    s += "AVX2+FMA kernels on";
    if (use_avx512())
      s += ", AVX-512 GEMM";
    else if (cpu_has_avx512())
      s += built_with_avx512() ? ", AVX-512 GEMM off (GRADLAB_NO_AVX512 is set)"
                               : ", AVX-512 GEMM off (not compiled in)";
  }
#if defined(__aarch64__) || defined(_M_ARM64)
  else
    s += "portable kernels (NEON not compiled in: GRADLAB_NEON=OFF)";
#else
  else if (!built_with_avx2())
    s += "portable kernels (AVX2+FMA not compiled in)";
  else if (!cpu_has_avx2_fma())
    s += "portable kernels (this CPU lacks AVX2/FMA)";
  else
    s += "portable kernels (GRADLAB_NO_AVX2 is set)";
#endif
  // The matmuls and the other kernels run on gradlab's own worker pool (tensor/threads.h) whether or not
  // OpenMP is built in; OpenMP then only supplies the thread count and the ladder's "openmp" rung.
  s += built_with_openmp() ? ", OpenMP on, " : ", OpenMP off, ";
  const int n = max_threads();
  s += std::to_string(n) + (n == 1 ? " thread" : " threads") + " on gradlab's worker pool";
  return s;
}

void print_build_info(std::FILE* out) { std::fprintf(out, "%s\n", build_info().c_str()); }

}  // namespace gradlab
