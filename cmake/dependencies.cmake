# System dependencies. Each missing one stops configuration with the Debian/Ubuntu package to install.

find_path(GRADLAB_DOCTEST_INCLUDE doctest/doctest.h PATHS /usr/include /usr/local/include)
if(GRADLAB_BUILD_TESTS AND NOT GRADLAB_DOCTEST_INCLUDE)
  message(FATAL_ERROR "doctest not found: install it with `sudo apt-get install doctest-dev` (or pass -DGRADLAB_BUILD_TESTS=OFF)")
endif()

find_path(GRADLAB_STB_INCLUDE stb_image_write.h PATHS /usr/include/stb /usr/local/include/stb)
find_library(GRADLAB_STB_LIBRARY stb)
if(NOT GRADLAB_STB_INCLUDE OR NOT GRADLAB_STB_LIBRARY)
  message(FATAL_ERROR "stb not found: install it with `sudo apt-get install libstb-dev`")
endif()

find_package(nlohmann_json 3.9 QUIET)
if(NOT nlohmann_json_FOUND)
  message(FATAL_ERROR "nlohmann JSON not found: install it with `sudo apt-get install nlohmann-json3-dev`")
endif()

find_package(Threads REQUIRED)

find_package(benchmark QUIET)
if(GRADLAB_BUILD_BENCH AND NOT benchmark_FOUND)
  message(STATUS "gradlab: Google Benchmark not found, bench/ is skipped (sudo apt-get install libbenchmark-dev)")
endif()

# OpenBLAS is optional and only ever used by the benchmarks, as the peer to measure against.
find_path(GRADLAB_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas)
find_library(GRADLAB_OPENBLAS_LIBRARY openblas)
