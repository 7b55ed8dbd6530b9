// Eight-lane float / int vectors (GCC vector extensions) for quantizer loops compiled with
// INSITU_QUANT_CLONES: the AVX2 clone maps them to ymm registers, the baseline clone to pairs of
// xmm. Lane arithmetic is IEEE single precision like the scalar code's, so a loop that gives each
// lane its own candidate or element keeps ggml's results bit for bit. Internal; vectors never
// cross a call boundary (the helpers are always inlined), so the AVX ABI note does not apply.
#pragma once

#include <cstdint>
#include <cstring>

#pragma GCC diagnostic ignored "-Wpsabi"

namespace insitu::qvec {

typedef float V8f __attribute__((vector_size(32)));
typedef int32_t V8i __attribute__((vector_size(32)));
typedef uint64_t V4u __attribute__((vector_size(32)));

#define INSITU_VEC_INLINE inline __attribute__((always_inline))

INSITU_VEC_INLINE V8f load8(const float* p) {
  V8f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

INSITU_VEC_INLINE void store8(float* p, V8f v) { std::memcpy(p, &v, sizeof(v)); }

// Whether any lane of a comparison result is set.
INSITU_VEC_INLINE bool any(V8i m) {
  const V4u u = (V4u)m;  // a vector cast reinterprets the bits
  return (u[0] | u[1] | u[2] | u[3]) != 0;
}

INSITU_VEC_INLINE V8f abs8(V8f v) { return (V8f)((V8i)v & 0x7fffffff); }

}  // namespace insitu::qvec
