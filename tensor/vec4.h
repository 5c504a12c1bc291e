#pragma once
// The 4-float GCC/Clang vector extension the portable kernels use (SSE on x86, NEON on ARM), with unaligned
// loads and stores through memcpy. Compilers without the extension take the kernels' plain loops instead.
#include <cstring>

#if defined(__GNUC__)
namespace gradlab {
typedef float v4 __attribute__((vector_size(16)));
inline v4 load4(const float* p) {
  v4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, v4 v) { std::memcpy(p, &v, sizeof v); }
}  // namespace gradlab
#endif
