// Vectorisable transcendental functions shared by the kernels (float: polynomial exp that gcc
// vectorises under -O3 -fno-trapping-math; double: libm). Every one is forced inline
// (LSTMKIT_INLINE): in a large translation unit gcc's inliner otherwise leaves exp_ out of line
// in some gate loops, and a call in a loop stops it vectorising (the plain LSTM's forward gate
// pass and the layer-norm tanh pass ran scalar that way).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#define LSTMKIT_INLINE inline __attribute__((always_inline))

namespace lstmkit {

// exp that gcc vectorises (float): Cephes-style range reduction + degree-6 polynomial,
// exponent built with integer arithmetic. Relative error ~2 ulp over the clamped range.
LSTMKIT_INLINE float exp_(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}
LSTMKIT_INLINE double exp_(double x) { return std::exp(x); }

template <typename S> LSTMKIT_INLINE S sigmoid_(S x) { return S(1) / (S(1) + exp_(-x)); }
// tanh(x) = 2 sigmoid(2x) - 1 (float: absolute error ~1e-7); double uses libm.
LSTMKIT_INLINE float tanh_(float x) { return 2.0f / (1.0f + exp_(-2.0f * x)) - 1.0f; }
LSTMKIT_INLINE double tanh_(double x) { return std::tanh(x); }

}  // namespace lstmkit
