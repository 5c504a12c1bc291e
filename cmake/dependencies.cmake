# System dependencies. Each missing one stops configuration with the package to install (Debian/Ubuntu, or
# Homebrew on macOS).

# macOS: Homebrew's prefix (/opt/homebrew on Apple silicon, /usr/local on Intel) is searched like /usr, so its
# doctest, nlohmann-json and google-benchmark are found. Not tested here: the project has no macOS machine.
if(APPLE)
  find_program(GRADLAB_BREW brew)
  if(GRADLAB_BREW)
    execute_process(COMMAND ${GRADLAB_BREW} --prefix OUTPUT_VARIABLE GRADLAB_BREW_PREFIX
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(GRADLAB_BREW_PREFIX)
      list(APPEND CMAKE_PREFIX_PATH ${GRADLAB_BREW_PREFIX})
    endif()
  endif()
  set(GRADLAB_INSTALL_HINT "brew install")
else()
  set(GRADLAB_INSTALL_HINT "sudo apt-get install")
endif()
macro(gradlab_package debian brew)
  if(APPLE)
    set(GRADLAB_PACKAGE ${brew})
  else()
    set(GRADLAB_PACKAGE ${debian})
  endif()
endmacro()

find_path(GRADLAB_DOCTEST_INCLUDE doctest/doctest.h PATHS /usr/include /usr/local/include)
if(GRADLAB_BUILD_TESTS AND NOT GRADLAB_DOCTEST_INCLUDE)
  gradlab_package(doctest-dev doctest)
  message(FATAL_ERROR "doctest not found: install it with `${GRADLAB_INSTALL_HINT} ${GRADLAB_PACKAGE}` (or pass -DGRADLAB_BUILD_TESTS=OFF)")
endif()

# stb: Debian's libstb-dev has the headers and a compiled libstb. Homebrew has no stb formula, so there the
# headers are fetched (any folder holding stb_image.h, stb_image_write.h, stb_truetype.h) and named with
# -DGRADLAB_STB_INCLUDE_DIR; without a libstb beside them, the three parts viz/ uses are compiled from them.
set(GRADLAB_STB_INCLUDE_DIR "" CACHE PATH "Folder with stb's headers (stb_image.h, stb_image_write.h, stb_truetype.h)")
find_path(GRADLAB_STB_INCLUDE stb_image_write.h HINTS ${GRADLAB_STB_INCLUDE_DIR}
          PATHS /usr/include/stb /usr/local/include/stb PATH_SUFFIXES stb)
find_library(GRADLAB_STB_LIBRARY stb)
if(NOT GRADLAB_STB_INCLUDE)
  if(APPLE)
    message(FATAL_ERROR "stb not found: Homebrew has no stb formula. Fetch the headers, e.g. "
                        "`git clone --depth 1 https://github.com/nothings/stb ~/stb`, and configure with "
                        "-DGRADLAB_STB_INCLUDE_DIR=$HOME/stb")
  endif()
  message(FATAL_ERROR "stb not found: install it with `sudo apt-get install libstb-dev`, or pass "
                      "-DGRADLAB_STB_INCLUDE_DIR=/path/to/stb (a folder holding stb_image_write.h)")
endif()
if(NOT GRADLAB_STB_LIBRARY)
  set(stb_source ${CMAKE_BINARY_DIR}/stb/stb.c)
  file(CONFIGURE OUTPUT ${stb_source} CONTENT [[
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#define STB_TRUETYPE_IMPLEMENTATION
#include <stb_truetype.h>
]])
  add_library(gradlab_stb STATIC ${stb_source})
  target_include_directories(gradlab_stb PRIVATE ${GRADLAB_STB_INCLUDE})
  target_compile_options(gradlab_stb PRIVATE -w)  # third-party code: its warnings are not ours to fix
  set(GRADLAB_STB_LIBRARY gradlab_stb)
  message(STATUS "gradlab: no compiled libstb found; building stb from the headers in ${GRADLAB_STB_INCLUDE}")
endif()

find_package(nlohmann_json 3.9 QUIET)
if(NOT nlohmann_json_FOUND)
  gradlab_package(nlohmann-json3-dev nlohmann-json)
  message(FATAL_ERROR "nlohmann JSON not found: install it with `${GRADLAB_INSTALL_HINT} ${GRADLAB_PACKAGE}`")
endif()

find_package(Threads REQUIRED)

find_package(benchmark QUIET)
if(GRADLAB_BUILD_BENCH AND NOT benchmark_FOUND)
  gradlab_package(libbenchmark-dev google-benchmark)
  message(STATUS "gradlab: Google Benchmark not found, bench/ is skipped (${GRADLAB_INSTALL_HINT} ${GRADLAB_PACKAGE})")
endif()

# OpenBLAS is optional and only ever used by the benchmarks, as the peer to measure against.
find_path(GRADLAB_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas)
find_library(GRADLAB_OPENBLAS_LIBRARY openblas)

# Apple's clang has no -fopenmp driver flag and no OpenMP runtime; Homebrew's libomp (keg-only, so not in the
# prefix itself) supplies both halves: -Xpreprocessor -fopenmp with its include folder, and -lomp. Set here so
# that features.cmake's find_package(OpenMP) checks these flags instead of guessing. Flags given on the command
# line win.
if(APPLE AND GRADLAB_OPENMP AND CMAKE_CXX_COMPILER_ID STREQUAL "AppleClang" AND GRADLAB_BREW
   AND NOT OpenMP_CXX_FLAGS)
  execute_process(COMMAND ${GRADLAB_BREW} --prefix libomp OUTPUT_VARIABLE GRADLAB_LIBOMP_PREFIX
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(GRADLAB_LIBOMP_PREFIX AND EXISTS "${GRADLAB_LIBOMP_PREFIX}/include/omp.h")
    set(OpenMP_CXX_FLAGS "-Xpreprocessor -fopenmp -I${GRADLAB_LIBOMP_PREFIX}/include" CACHE STRING "")
    set(OpenMP_CXX_LIB_NAMES omp CACHE STRING "")
    find_library(OpenMP_omp_LIBRARY omp PATHS ${GRADLAB_LIBOMP_PREFIX}/lib NO_DEFAULT_PATH)
  else()
    message(STATUS "gradlab: Apple clang needs Homebrew's libomp for OpenMP (brew install libomp)")
  endif()
endif()
