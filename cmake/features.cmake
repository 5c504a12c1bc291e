# OpenMP, AVX2, AVX-512 and NEON are optional but loud: reported here and again by every program at start-up.

set(GRADLAB_OPENMP_STATUS "off (GRADLAB_OPENMP=OFF)")
if(GRADLAB_OPENMP)
  find_package(OpenMP QUIET COMPONENTS CXX)
  if(OpenMP_CXX_FOUND)
    set(GRADLAB_OPENMP_STATUS "on (OpenMP ${OpenMP_CXX_VERSION})")
  else()
    set(GRADLAB_OPENMP_STATUS "off (OpenMP not found; kernels run on one thread)")
  endif()
endif()

set(GRADLAB_AVX2_STATUS "off (GRADLAB_AVX2=OFF)")
set(GRADLAB_AVX2_FLAGS "")
if(GRADLAB_AVX2)
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag("-mavx2 -mfma" GRADLAB_COMPILER_HAS_AVX2)
  if(GRADLAB_COMPILER_HAS_AVX2 AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    set(GRADLAB_AVX2_FLAGS -mavx2 -mfma)
    set(GRADLAB_AVX2_STATUS "compiled (used at run time when the CPU has AVX2 and FMA)")
  else()
    set(GRADLAB_AVX2_STATUS "off (compiler or processor without AVX2; portable kernels only)")
  endif()
endif()

# AVX-512 serves one kernel, the GEMM micro-kernel (tensor/gemm_avx512.cpp), chosen at run time only on CPUs
# (and OSes) with AVX-512 F+VL. It sits on top of the AVX2 kernels (their packing, their dispatch), so it needs
# them. The compiler check builds a few of the intrinsics it uses, so an assembler or compiler that knows the
# flags but not the instructions falls back cleanly to the AVX2 kernel.
option(GRADLAB_AVX512 "Compile the AVX-512 GEMM micro-kernel (chosen at run time only on CPUs that have it)" ON)
set(GRADLAB_AVX512_STATUS "off (GRADLAB_AVX512=OFF)")
set(GRADLAB_AVX512_FLAGS "")
if(GRADLAB_AVX512)
  if(NOT GRADLAB_AVX2_FLAGS)
    set(GRADLAB_AVX512_STATUS "off (needs the AVX2+FMA kernels)")
  else()
    include(CheckCXXSourceCompiles)
    set(CMAKE_REQUIRED_FLAGS "-mavx512f -mavx512vl -mavx2 -mfma")
    check_cxx_source_compiles([=[
#include <immintrin.h>
int main() {
  float x[16] = {};
  __m512 a = _mm512_fmadd_ps(_mm512_set1_ps(x[1]), _mm512_loadu_ps(x), _mm512_setzero_ps());
  _mm512_mask_storeu_ps(x, __mmask16(0x7), _mm512_maskz_loadu_ps(__mmask16(0x3), x));
  _mm512_storeu_ps(x, a);
  return int(x[0]);
}]=] GRADLAB_COMPILER_HAS_AVX512)
    unset(CMAKE_REQUIRED_FLAGS)
    if(GRADLAB_COMPILER_HAS_AVX512)
      set(GRADLAB_AVX512_FLAGS -mavx512f -mavx512vl -mavx2 -mfma)
      set(GRADLAB_AVX512_STATUS "compiled (used at run time when the CPU and OS have AVX-512 F+VL)")
    else()
      set(GRADLAB_AVX512_STATUS "off (compiler without AVX-512 F+VL; the AVX2 GEMM kernel runs)")
    endif()
  endif()
endif()

# NEON (Advanced SIMD) is part of every aarch64 processor, so there is no run-time check: an aarch64 build
# compiles the _neon.cpp kernels (no extra flags needed) and always uses them.
option(GRADLAB_NEON "Compile the NEON kernels on aarch64 targets" ON)
set(GRADLAB_NEON_KERNELS OFF)
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(GRADLAB_NEON_STATUS "off (target processor ${CMAKE_SYSTEM_PROCESSOR} is not aarch64)")
elseif(NOT GRADLAB_NEON)
  set(GRADLAB_NEON_STATUS "off (GRADLAB_NEON=OFF; portable kernels only)")
else()
  set(GRADLAB_NEON_KERNELS ON)
  set(GRADLAB_NEON_STATUS "compiled (always used: every aarch64 processor has NEON)")
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  # GCC contracts a*b + c into one fused multiply-add by default in C++ wherever the target has FMA, and every
  # aarch64 has it: the portable loops would then round differently here than on x86-64 (and than the
  # reference tests expect bit for bit). Kernels that want FMA say so with vfmaq_f32 / std::fma.
  add_compile_options(-ffp-contract=off)
endif()
message(STATUS "gradlab: OpenMP ${GRADLAB_OPENMP_STATUS}")
message(STATUS "gradlab: AVX2+FMA kernels ${GRADLAB_AVX2_STATUS}")
message(STATUS "gradlab: AVX-512 GEMM kernel ${GRADLAB_AVX512_STATUS}")
message(STATUS "gradlab: NEON kernels ${GRADLAB_NEON_STATUS}")

# gradlab_library(name DEPS ...): one library per folder from the .cpp files in it (and its subfolders).
# Files ending in _avx2.cpp get the AVX2+FMA flags; they must only run behind cpu_has_avx2_fma().
# Files ending in _avx512.cpp get the AVX-512 flags (or are left out); they must only run behind use_avx512().
# Files ending in _neon.cpp are compiled only for aarch64 targets (GRADLAB_NEON_KERNELS), behind use_neon().
function(gradlab_library name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  set(avx2_sources ${sources})
  list(FILTER avx2_sources INCLUDE REGEX "_avx2\\.cpp$")
  if(NOT GRADLAB_AVX2_FLAGS)
    list(FILTER sources EXCLUDE REGEX "_avx2\\.cpp$")
  else()
    set_source_files_properties(${avx2_sources} PROPERTIES COMPILE_OPTIONS "${GRADLAB_AVX2_FLAGS}")
  endif()
  set(avx512_sources ${sources})
  list(FILTER avx512_sources INCLUDE REGEX "_avx512\\.cpp$")
  if(NOT GRADLAB_AVX512_FLAGS)
    list(FILTER sources EXCLUDE REGEX "_avx512\\.cpp$")
  else()
    set_source_files_properties(${avx512_sources} PROPERTIES COMPILE_OPTIONS "${GRADLAB_AVX512_FLAGS}")
  endif()
  if(NOT GRADLAB_NEON_KERNELS)
    list(FILTER sources EXCLUDE REGEX "_neon\\.cpp$")
  endif()
  list(FILTER sources EXCLUDE REGEX "/main\\.cpp$")
  if(NOT sources)
    # A folder with no code yet is still a target, so the dependency graph stays whole.
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${sources})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  if(GRADLAB_AVX2_FLAGS)
    target_compile_definitions(${name} PUBLIC GRADLAB_HAVE_AVX2_KERNELS=1)
  endif()
  if(GRADLAB_AVX512_FLAGS)
    target_compile_definitions(${name} PUBLIC GRADLAB_HAVE_AVX512_KERNELS=1)
  endif()
  if(GRADLAB_NEON_KERNELS)
    target_compile_definitions(${name} PUBLIC GRADLAB_HAVE_NEON_KERNELS=1)
  endif()
  if(OpenMP_CXX_FOUND AND GRADLAB_OPENMP)
    target_link_libraries(${name} PUBLIC OpenMP::OpenMP_CXX)
    target_compile_definitions(${name} PUBLIC GRADLAB_HAVE_OPENMP=1)
  endif()
endfunction()
