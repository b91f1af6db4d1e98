// Small-batch GEMMs against weights packed once: y (M, N) (+)= a (M, K) W^T for M up to a few
// dozen rows, the shape of every recurrent step. W is packed in panels of 64 output columns
// (four AVX-512 or eight AVX2 float vectors), each panel's K rows contiguous, so a step streams
// the weights once per few rows of a at the memory rate; no per-call setup (oneDNN costs ~40 us a
// call, MKL's sgemm runs its generic path on AMD CPUs). Precisions: float32; bfloat16 (pairs of k
// per lane, float32 sums: AVX512-BF16 dot products, or AVX2 FMAs on the pairs widened in
// registers); int8 (quads of k per lane, u8 activations x s8 weights, exact int32 sums:
// AVX512-VNNI, or AVX2 16-bit multiply-adds, which cannot saturate; the streaming step's).
// Every kernel has a portable loop over the same packing. Which one runs is lstmkit.cpu's
// probe's answer, handed over once at load (set_isa), never more than the CPU reports;
// LSTMKIT_NO_X86 compiles the x86 kernels out (the build other architectures get).
//
// Packed layout (group g: 1 float32, 2 bfloat16, 4 int8; K padded to Kp, a multiple of g):
// panel p, group q, lane l, element e at ((p * Kp/g + q) * NB + l) * g + e, holding
// W[p*NB + l][q*g + e] (zero beyond N or K).
#pragma once
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(LSTMKIT_NO_X86)
#include <immintrin.h>
#define LSTMKIT_X86 1
#endif

namespace lstmkit {
namespace panels {

constexpr int64_t NB = 64;  // output columns per panel
constexpr int64_t MR = 4;   // rows of a per kernel call: the panel is read once per MR rows

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The vector paths this process runs: what the CPU reports, lowered by lstmkit.cpu's probe
// (LSTMKIT_MAX_ISA) through set_isa when Python loads the module. onednn_bf16: oneDNN's
// bfloat16 primitives run here (else a bfloat16 step GEMM runs in float32 on bfloat16 values).
struct Isa {
  bool avx2 = false, avx512 = false, bf16 = false, vnni = false, onednn_bf16 = false;
};
inline Isa detect() {
  Isa r;
#ifdef LSTMKIT_X86
  __builtin_cpu_init();
  r.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  r.avx512 = r.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
  r.bf16 = r.avx512 && __builtin_cpu_supports("avx512bf16");
  r.vnni = r.avx512 && __builtin_cpu_supports("avx512vnni");
  r.onednn_bf16 = r.avx512;  // until the probe says (oneDNN's bfloat16 needs AVX-512 at least)
#endif
  return r;
}
inline Isa& isa_state() {
  static Isa i = detect();
  return i;
}
inline const Isa& isa() { return isa_state(); }
// The probe's answer; never a path this CPU (or this build) lacks.
inline void set_isa(bool avx2, bool avx512, bool bf16, bool vnni, bool onednn_bf16) {
  const Isa hw = detect();
  Isa& i = isa_state();
  i.avx2 = avx2 && hw.avx2;
  i.avx512 = avx512 && hw.avx512 && i.avx2;
  i.bf16 = bf16 && hw.bf16 && i.avx512;
  i.vnni = vnni && hw.vnni && i.avx512;
  i.onednn_bf16 = onednn_bf16;
}

inline uint16_t to_bf16(float v) {  // round to nearest even, as torch's float -> bfloat16
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float from_bf16(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

// The packed index of W[n][k] for group g and padded depth Kp.
inline int64_t packed_at(int64_t n, int64_t k, int64_t Kp, int64_t g) {
  return ((n / NB * (Kp / g) + k / g) * NB + n % NB) * g + k % g;
}

// w (N, K), any strides and floating dtype -> packed float32 or bfloat16 (dtype), N and K padded.
inline at::Tensor pack(const at::Tensor& w, at::ScalarType dtype) {
  const at::Tensor src = w.to(at::kFloat).contiguous();
  const int64_t N = w.size(0), K = w.size(1), g = dtype == at::kBFloat16 ? 2 : 1;
  const int64_t Kp = round_up(K, g), n_all = round_up(N, NB) * Kp;
  const float* s = src.data_ptr<float>();
  if (dtype == at::kBFloat16) {
    at::Tensor out = at::zeros({n_all}, at::kBFloat16);
    auto* d = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) d[packed_at(n, k, Kp, g)] = to_bf16(s[n * K + k]);
    return out;
  }
  at::Tensor out = at::zeros({n_all}, at::kFloat);
  float* d = out.data_ptr<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) d[packed_at(n, k, Kp, g)] = s[n * K + k];
  return out;
}

// ---- one panel for M <= MR rows: y[m][0..cols) (+)= a_m . panel (beta 0 overwrites) ----------
#ifdef LSTMKIT_X86
#define LSTMKIT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

LSTMKIT_AVX512 inline __mmask16 lane_mask(int64_t cols, int j) {
  const int64_t n = std::min<int64_t>(std::max<int64_t>(cols - 16 * j, 0), 16);
  return n == 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1u);
}

// y (+)= acc for the valid lanes; scale (int8) is applied by the caller's kernel
template <int M>
LSTMKIT_AVX512 inline void store_rows(__m512 (&acc)[M][4], float* const* y, int64_t cols, bool beta) {
  for (int j = 0; j < 4; ++j) {
    const __mmask16 mk = lane_mask(cols, j);
    if (!mk) break;
    for (int m = 0; m < M; ++m) {
      __m512 v = acc[m][j];
      if (beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, y[m] + 16 * j));
      _mm512_mask_storeu_ps(y[m] + 16 * j, mk, v);
    }
  }
}

template <int M>
LSTMKIT_AVX512 void f32_avx512(const float* const* a, const float* w, int64_t K, float* const* y,
                               int64_t cols, bool beta) {
  // U independent sets of accumulators (k even / odd) keep more loads in flight at M <= 2
  constexpr int U = M <= 2 ? 2 : 1;
  __m512 acc[U][M][4];
  for (int u = 0; u < U; ++u)
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < 4; ++j) acc[u][m][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + U <= K; k += U) {
    for (int u = 0; u < U; ++u) {
      const float* wk = w + (k + u) * NB;
      const __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16);
      const __m512 w2 = _mm512_loadu_ps(wk + 32), w3 = _mm512_loadu_ps(wk + 48);
      for (int m = 0; m < M; ++m) {
        const __m512 b = _mm512_set1_ps(a[m][k + u]);
        acc[u][m][0] = _mm512_fmadd_ps(b, w0, acc[u][m][0]);
        acc[u][m][1] = _mm512_fmadd_ps(b, w1, acc[u][m][1]);
        acc[u][m][2] = _mm512_fmadd_ps(b, w2, acc[u][m][2]);
        acc[u][m][3] = _mm512_fmadd_ps(b, w3, acc[u][m][3]);
      }
    }
  }
  for (; k < K; ++k) {  // odd tail
    const float* wk = w + k * NB;
    for (int m = 0; m < M; ++m) {
      const __m512 b = _mm512_set1_ps(a[m][k]);
      for (int j = 0; j < 4; ++j)
        acc[0][m][j] = _mm512_fmadd_ps(b, _mm512_loadu_ps(wk + 16 * j), acc[0][m][j]);
    }
  }
  for (int u = 1; u < U; ++u)
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < 4; ++j) acc[0][m][j] = _mm512_add_ps(acc[0][m][j], acc[u][m][j]);
  store_rows<M>(acc[0], y, cols, beta);
}

template <int M>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void bf16_avx512(
    const uint16_t* const* a, const uint16_t* w, int64_t Kp, float* const* y, int64_t cols,
    bool beta) {
  __m512 acc[M][4];
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < 4; ++j) acc[m][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < Kp; k += 2, w += 2 * NB) {
    const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 32);
    const __m512i w2 = _mm512_loadu_si512(w + 64), w3 = _mm512_loadu_si512(w + 96);
    for (int m = 0; m < M; ++m) {
      int32_t pair;
      std::memcpy(&pair, a[m] + k, 4);
      const __m512bh b = (__m512bh)_mm512_set1_epi32(pair);
      acc[m][0] = _mm512_dpbf16_ps(acc[m][0], b, (__m512bh)w0);
      acc[m][1] = _mm512_dpbf16_ps(acc[m][1], b, (__m512bh)w1);
      acc[m][2] = _mm512_dpbf16_ps(acc[m][2], b, (__m512bh)w2);
      acc[m][3] = _mm512_dpbf16_ps(acc[m][3], b, (__m512bh)w3);
    }
  }
  store_rows<M>(acc, y, cols, beta);
}

// a: u8 activations (q + 128); y += sa_m * sw[n] * (sum u w - zc[n]), zc = 128 sum_k w
template <int M>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void i8_avx512(
    const uint8_t* const* a, const int8_t* w, int64_t Kp, const float* sa, const float* sw,
    const int32_t* zc, float* const* y) {
  __m512i acc[M][4];
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < 4; ++j) acc[m][j] = _mm512_setzero_si512();
  for (int64_t k = 0; k < Kp; k += 4, w += 4 * NB) {
    const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 64);
    const __m512i w2 = _mm512_loadu_si512(w + 128), w3 = _mm512_loadu_si512(w + 192);
    for (int m = 0; m < M; ++m) {
      int32_t quad;
      std::memcpy(&quad, a[m] + k, 4);
      const __m512i b = _mm512_set1_epi32(quad);
      acc[m][0] = _mm512_dpbusd_epi32(acc[m][0], b, w0);
      acc[m][1] = _mm512_dpbusd_epi32(acc[m][1], b, w1);
      acc[m][2] = _mm512_dpbusd_epi32(acc[m][2], b, w2);
      acc[m][3] = _mm512_dpbusd_epi32(acc[m][3], b, w3);
    }
  }
  for (int m = 0; m < M; ++m) {
    const __m512 s = _mm512_set1_ps(sa[m]);
    for (int j = 0; j < 4; ++j) {
      const __m512i dot = _mm512_sub_epi32(acc[m][j], _mm512_loadu_si512(zc + 16 * j));
      const __m512 scale = _mm512_mul_ps(s, _mm512_loadu_ps(sw + 16 * j));
      _mm512_storeu_ps(y[m] + 16 * j,
                       _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(dot), _mm512_loadu_ps(y[m] + 16 * j)));
    }
  }
}

// ---- AVX2 + FMA: the same panels as eight 8-float vectors, in 8-lane column groups --------
#define LSTMKIT_AVX2 __attribute__((target("avx2,fma,bmi2")))

LSTMKIT_AVX2 inline __m256i lane_mask8(int64_t cols, int j) {  // lanes of group j below cols
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::clamp<int64_t>(cols - 8 * j, 0, 8))), idx);
}

// y (+)= acc[m][g] for the valid lanes of column groups j0 .. j0+NG
template <int M, int NG>
LSTMKIT_AVX2 inline void store8(__m256 (&acc)[M][NG], float* const* y, int j0, int64_t cols, bool beta) {
  for (int g = 0; g < NG; ++g) {
    const int j = j0 + g;
    if (cols <= 8 * j) break;
    const __m256i mk = lane_mask8(cols, j);
    for (int m = 0; m < M; ++m) {
      __m256 v = acc[m][g];
      if (beta) v = _mm256_add_ps(v, _mm256_maskload_ps(y[m] + 8 * j, mk));
      _mm256_maskstore_ps(y[m] + 8 * j, mk, v);
    }
  }
}

// Column groups per pass for M rows: enough independent FMA chains to hide the FMA latency at
// M = 1, few enough accumulators to stay in the 16 ymm registers at M = 4.
template <int M> constexpr int f32_groups() { return M == 1 ? 8 : (M == 2 ? 4 : 2); }
template <int M> constexpr int bf16_groups() { return M == 1 ? 4 : 2; }

// float32: NG column groups (8 lanes each) per pass, M x NG accumulators
template <int M>
LSTMKIT_AVX2 void f32_avx2(const float* const* a, const float* w, int64_t K, float* const* y,
                           int64_t cols, bool beta) {
  constexpr int NG = f32_groups<M>();
  for (int j0 = 0; j0 < 8 && cols > 8 * j0; j0 += NG) {
    __m256 acc[M][NG];
    for (int m = 0; m < M; ++m)
      for (int g = 0; g < NG; ++g) acc[m][g] = _mm256_setzero_ps();
    const float* wk = w + 8 * j0;
    for (int64_t k = 0; k < K; ++k, wk += NB) {
      __m256 wv[NG];
      for (int g = 0; g < NG; ++g) wv[g] = _mm256_loadu_ps(wk + 8 * g);
      for (int m = 0; m < M; ++m) {
        const __m256 b = _mm256_broadcast_ss(a[m] + k);
        for (int g = 0; g < NG; ++g) acc[m][g] = _mm256_fmadd_ps(b, wv[g], acc[m][g]);
      }
    }
    store8<M, NG>(acc, y, j0, cols, beta);
  }
}

// bfloat16: each lane holds a (k, k+1) pair in 32 bits; shifting and masking widen the two
// halves to float32 exactly (bfloat16 is float32's top half), then FMAs with a's pair (a's rows
// arrive rounded to bfloat16 and widened to float32 once per call, so a broadcast is one load).
// At M <= 2 even and odd k sum into separate accumulators (enough independent chains).
template <int M>
LSTMKIT_AVX2 void bf16_avx2(const float* const* a, const uint16_t* w, int64_t Kp, float* const* y,
                            int64_t cols, bool beta) {
  constexpr int NG = bf16_groups<M>();
  constexpr int S = M <= 2 ? 2 : 1;  // accumulator sets
  const __m256i hi_mask = _mm256_set1_epi32(int(0xffff0000u));
  for (int j0 = 0; j0 < 8 && cols > 8 * j0; j0 += NG) {
    __m256 acc[S][M][NG];
    for (int u = 0; u < S; ++u)
      for (int m = 0; m < M; ++m)
        for (int g = 0; g < NG; ++g) acc[u][m][g] = _mm256_setzero_ps();
    const uint16_t* wk = w + 2 * 8 * j0;
    for (int64_t k = 0; k < Kp; k += 2, wk += 2 * NB) {
      __m256 we[NG], wo[NG];
      for (int g = 0; g < NG; ++g) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wk + 16 * g));
        we[g] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        wo[g] = _mm256_castsi256_ps(_mm256_and_si256(v, hi_mask));
      }
      for (int m = 0; m < M; ++m) {
        const __m256 b0 = _mm256_broadcast_ss(a[m] + k), b1 = _mm256_broadcast_ss(a[m] + k + 1);
        for (int g = 0; g < NG; ++g) {
          acc[0][m][g] = _mm256_fmadd_ps(b0, we[g], acc[0][m][g]);
          acc[S - 1][m][g] = _mm256_fmadd_ps(b1, wo[g], acc[S - 1][m][g]);
        }
      }
    }
    if constexpr (S == 2)
      for (int m = 0; m < M; ++m)
        for (int g = 0; g < NG; ++g) acc[0][m][g] = _mm256_add_ps(acc[0][m][g], acc[1][m][g]);
    store8<M, NG>(acc[0], y, j0, cols, beta);
  }
}

// int8: 16-bit multiply-adds (vpmaddwd) of u8 activations and s8 weights, both widened to 16
// bits, sum pairs exactly into int32 (vpmaddubsw would saturate: 2 * 255 * 127 > 32767). The
// activations arrive widened already (`wide`: each quad of u8 as four 16-bit lanes in 64 bits,
// see widen_quads), so a step broadcasts them with one load. Per group of 8 lanes, lanes 0-3
// and 4-7 accumulate apart; one hadd and a lane permutation at the end give lanes 0-7.
// y += sa_m * sw[n] * (sum u w - zc[n]), as the VNNI kernel.
template <int M>
LSTMKIT_AVX2 void i8_avx2(const uint64_t* const* wide, const int8_t* w, int64_t Kp, const float* sa,
                          const float* sw, const int32_t* zc, float* const* y) {
  const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  for (int j = 0; j < 8; ++j) {
    __m256i lo[M], hi[M];
    for (int m = 0; m < M; ++m) lo[m] = hi[m] = _mm256_setzero_si256();
    const int8_t* wk = w + 4 * 8 * j;
    for (int64_t q = 0; q < Kp / 4; ++q, wk += 4 * NB) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wk));
      const __m256i w_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));
      const __m256i w_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));
      for (int m = 0; m < M; ++m) {
        const __m256i b = _mm256_set1_epi64x(int64_t(wide[m][q]));
        lo[m] = _mm256_add_epi32(lo[m], _mm256_madd_epi16(w_lo, b));
        hi[m] = _mm256_add_epi32(hi[m], _mm256_madd_epi16(w_hi, b));
      }
    }
    const __m256i z = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zc + 8 * j));
    const __m256 s = _mm256_loadu_ps(sw + 8 * j);
    for (int m = 0; m < M; ++m) {
      const __m256i dot = _mm256_sub_epi32(
          _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(lo[m], hi[m]), order), z);
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(sa[m]), s);
      _mm256_storeu_ps(y[m] + 8 * j,
                       _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), _mm256_loadu_ps(y[m] + 8 * j)));
    }
  }
}

// u8 quads -> 64-bit words of four 16-bit lanes (i8_avx2's broadcast operand), Kp/4 of them
LSTMKIT_AVX2 inline void widen_quads(const uint8_t* a, int64_t Kp, uint64_t* out) {
  for (int64_t q = 0; q < Kp / 4; ++q) {
    uint32_t quad;
    std::memcpy(&quad, a + 4 * q, 4);
    out[q] = _pdep_u64(quad, 0x00ff00ff00ff00ffull);
  }
}
#endif

// The portable loops (any CPU; same packed data, same integer sums).
inline void f32_any(int M, const float* const* a, const float* w, int64_t K, float* const* y,
                    int64_t cols, bool beta) {
  for (int m = 0; m < M; ++m) {
    float acc[NB] = {};
    const float* wk = w;
    for (int64_t k = 0; k < K; ++k, wk += NB)
      for (int64_t l = 0; l < NB; ++l) acc[l] += a[m][k] * wk[l];
    for (int64_t l = 0; l < cols; ++l) y[m][l] = acc[l] + (beta ? y[m][l] : 0.f);
  }
}

inline void bf16_any(int M, const float* const* a, const uint16_t* w, int64_t Kp, float* const* y,
                     int64_t cols, bool beta) {
  for (int m = 0; m < M; ++m) {
    float acc[NB] = {};
    const uint16_t* wk = w;
    for (int64_t k = 0; k < Kp; k += 2, wk += 2 * NB) {
      const float a0 = a[m][k], a1 = a[m][k + 1];
      for (int64_t l = 0; l < NB; ++l) acc[l] += a0 * from_bf16(wk[2 * l]) + a1 * from_bf16(wk[2 * l + 1]);
    }
    for (int64_t l = 0; l < cols; ++l) y[m][l] = acc[l] + (beta ? y[m][l] : 0.f);
  }
}

inline void i8_any(int M, const uint8_t* const* a, const int8_t* w, int64_t Kp, const float* sa,
                   const float* sw, const int32_t* zc, float* const* y) {
  for (int m = 0; m < M; ++m) {
    int32_t acc[NB] = {};
    const int8_t* wk = w;
    for (int64_t k = 0; k < Kp; k += 4, wk += 4 * NB)
      for (int64_t l = 0; l < NB; ++l)
        for (int e = 0; e < 4; ++e) acc[l] += int32_t(a[m][k + e]) * int32_t(wk[4 * l + e]);
    for (int64_t l = 0; l < NB; ++l) y[m][l] += sa[m] * sw[l] * float(acc[l] - zc[l]);
  }
}

// Fixed-M dispatch of a vector kernel template (M = 1..MR).
#define LSTMKIT_BY_M(M_, KERNEL, ...)          \
  switch (M_) {                                \
    case 1: KERNEL<1>(__VA_ARGS__); break;     \
    case 2: KERNEL<2>(__VA_ARGS__); break;     \
    case 3: KERNEL<3>(__VA_ARGS__); break;     \
    default: KERNEL<4>(__VA_ARGS__); break;    \
  }

// y (M, N) with row stride ldy (+)= a (M, K) with row stride lda, times packed float32 or
// bfloat16 weights of N outputs (a is float32). For bfloat16 weights a's rows are rounded to
// bfloat16 in the workspace `lo` (M * Kp floats; bfloat16 lanes for the AVX512-BF16 kernel,
// their float32 values for the others). Panels run in parallel (torch's intra-op threads) when
// there is enough work; each writes its own columns.
inline void gemm(const float* a, int64_t lda, int64_t M, const at::Tensor& packed, int64_t N,
                 int64_t K, float* y, int64_t ldy, bool beta, float* lo = nullptr) {
  const Isa& cpu = isa();
  const bool bf = packed.scalar_type() == at::kBFloat16;
  const int64_t Kp = bf ? round_up(K, 2) : K, P = round_up(N, NB) / NB;
  uint16_t* lo16 = reinterpret_cast<uint16_t*>(lo);
  if (bf) {  // a's rows rounded to bfloat16 (the odd K's pad column is zero)
    for (int64_t m = 0; m < M; ++m) {
      const float* src = a + m * lda;
      if (cpu.bf16) {
        uint16_t* q = lo16 + m * Kp;
        for (int64_t k = 0; k < Kp; ++k) q[k] = k < K ? to_bf16(src[k]) : 0;
      } else {
        float* q = lo + m * Kp;
        for (int64_t k = 0; k < Kp; ++k) q[k] = k < K ? from_bf16(to_bf16(src[k])) : 0.f;
      }
    }
  }
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, M * Kp * NB));
  at::parallel_for(0, P, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t cols = std::min(NB, N - p * NB);
      for (int64_t m0 = 0; m0 < M; m0 += MR) {
        const int Mb = int(std::min(MR, M - m0));
        float* yrow[MR];
        for (int m = 0; m < Mb; ++m) yrow[m] = y + (m0 + m) * ldy + p * NB;
        if (bf) {
          const auto* w = reinterpret_cast<const uint16_t*>(packed.data_ptr<at::BFloat16>()) + p * Kp * NB;
          const uint16_t* arow16[MR];
          const float* arow[MR];
          for (int m = 0; m < Mb; ++m) {
            arow16[m] = lo16 + (m0 + m) * Kp;
            arow[m] = lo + (m0 + m) * Kp;
          }
#ifdef LSTMKIT_X86
          if (cpu.bf16) {
            LSTMKIT_BY_M(Mb, bf16_avx512, arow16, w, Kp, yrow, cols, beta);
            continue;
          }
          if (cpu.avx2) {
            LSTMKIT_BY_M(Mb, bf16_avx2, arow, w, Kp, yrow, cols, beta);
            continue;
          }
#endif
          bf16_any(Mb, arow, w, Kp, yrow, cols, beta);
        } else {
          const float* arow[MR];
          for (int m = 0; m < Mb; ++m) arow[m] = a + (m0 + m) * lda;
          const float* w = packed.data_ptr<float>() + p * Kp * NB;
#ifdef LSTMKIT_X86
          if (cpu.avx512) {
            LSTMKIT_BY_M(Mb, f32_avx512, arow, w, K, yrow, cols, beta);
            continue;
          }
          if (cpu.avx2) {
            LSTMKIT_BY_M(Mb, f32_avx2, arow, w, K, yrow, cols, beta);
            continue;
          }
#endif
          f32_any(Mb, arow, w, K, yrow, cols, beta);
        }
      }
    }
  });
}

}  // namespace panels
}  // namespace lstmkit
