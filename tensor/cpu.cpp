#include "tensor/cpu.h"

#include <cstdlib>

#include "tensor/error.h"
#ifdef GRADLAB_HAVE_OPENMP
#include <omp.h>
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

bool built_with_openmp() {
#ifdef GRADLAB_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

int max_threads() {
#ifdef GRADLAB_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1) throw_error("set_num_threads: got ", n, ", expected at least 1");
#ifdef GRADLAB_HAVE_OPENMP
  omp_set_num_threads(n);
#endif
}

std::string build_info() {
  std::string s = "gradlab 0.1: AVX2+FMA kernels ";
  if (!built_with_avx2())
    s += "off (not compiled in)";
  else if (!cpu_has_avx2_fma())
    s += "off (this CPU lacks AVX2/FMA)";
  else if (!use_avx2())
    s += "off (GRADLAB_NO_AVX2 is set)";
  else
    s += "on";
  s += ", OpenMP ";
  const int n = max_threads();
  s += built_with_openmp() ? "on, " + std::to_string(n) + (n == 1 ? " thread" : " threads") : "off (1 thread)";
  return s;
}

void print_build_info(std::FILE* out) { std::fprintf(out, "%s\n", build_info().c_str()); }

}  // namespace gradlab
