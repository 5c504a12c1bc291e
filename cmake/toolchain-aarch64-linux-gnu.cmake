# Cross-compiling gradlab for 64-bit ARM Linux with Debian's g++-aarch64-linux-gnu (libc6-arm64-cross holds the
# target's C library in /usr/aarch64-linux-gnu). scripts/arm64.sh uses this file and runs the tests under
# qemu-user; by hand:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake \
#         -DGRADLAB_BUILD_LESSONS=OFF -DGRADLAB_BUILD_BENCH=OFF
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Programs built here run on this x86 machine through qemu-user: ctest and doctest's test discovery use it.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)

# Libraries only from the target's root, never the x86 ones in /usr/lib/x86_64-linux-gnu; programs (cmake's
# helpers) from the host.
#
# The header-only packages gradlab needs (doctest, nlohmann-json, and stb's headers) are installed for the host in
# /usr/include, a folder that also holds x86 glibc headers, so it must not be put on the target's include path.
# Instead a second root, GRADLAB_HOST_HEADERS, holds links to just those three packages (usr/include/doctest,
# usr/include/nlohmann, usr/include/stb, usr/share/cmake/nlohmann_json), made here on first use. find_path and
# find_package look in both roots. (find_path resolves the stb link, so /usr/include/stb itself ends up on the
# include path: it holds only stb's headers.) Debian's libstb is built for the host only; scripts/arm64.sh
# compiles the target's copy from the headers and passes it as GRADLAB_STB_LIBRARY.
if(NOT GRADLAB_HOST_HEADERS)
  set(GRADLAB_HOST_HEADERS "${CMAKE_BINARY_DIR}/host-headers")
endif()
foreach(link usr/include/doctest usr/include/nlohmann usr/include/stb usr/share/cmake/nlohmann_json)
  if(EXISTS "/${link}" AND NOT EXISTS "${GRADLAB_HOST_HEADERS}/${link}")
    get_filename_component(parent "${GRADLAB_HOST_HEADERS}/${link}" DIRECTORY)
    file(MAKE_DIRECTORY "${parent}")
    file(CREATE_LINK "/${link}" "${GRADLAB_HOST_HEADERS}/${link}" SYMBOLIC)
  endif()
endforeach()
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu "${GRADLAB_HOST_HEADERS}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
