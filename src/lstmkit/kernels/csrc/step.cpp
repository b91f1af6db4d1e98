// Streaming LSTM step without autograd (cells, stateful inference, the server). The weights are
// packed once; a step is one pass over them (the x part, then the h part, each into the same
// gate pre-activations), one gate pass, and nothing allocated but the returned state. Plain,
// peephole and coupled LSTMs (no projection, no layer norm: Python sends those to lstm_step).
//
// Weight precisions (the step is bound by reading the weights: 2 MiB of float32 at H=256):
// - full: the weights' own dtype. float32 is packed in 64-wide column panels and run by an
//   AVX-512 kernel for small batches; other batches and float64 run one GEMM over [x, h].
// - bfloat16: weights rounded to bfloat16 (half the bytes), activations rounded to bfloat16 each
//   step, products accumulated in float32 (AVX512-BF16 dot products where the CPU has them).
// - int8: weights quantised per output row and part (x, h) to int8 with a float scale (a quarter
//   of the bytes); each step quantises each row of x and of h to 8 bits with its own scale
//   (dynamic quantisation, as torch.ao's dynamic LSTM), exact int32 dot products (AVX512-VNNI
//   where the CPU has it), one float rescale.
// Every path has a portable loop over the same packed data, so results do not depend on the CPU
// beyond float summation order. Symbols: B batch, I input, H hidden, G gate rows (4H; 3H
// coupled), K depth of a part (I or H), N = G padded to whole panels.
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LSTMKIT_X86 1
#endif

#include "common.h"
#include "gates.h"
#include "kernels.h"

namespace {

constexpr int64_t NB = 64;    // output lanes per panel: 4 AVX-512 float vectors
constexpr int64_t MR = 4;     // batch rows per kernel call (the weights are read once per MR rows)

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// ---- which instructions this CPU has --------------------------------------------------------
struct Isa {
  bool avx512 = false, bf16 = false, vnni = false;
};
const Isa& isa() {
  static const Isa i = [] {
    Isa r;
    if (const char* e = std::getenv("LSTMKIT_PORTABLE_KERNELS"); e != nullptr && *e && *e != '0')
      return r;  // the portable loops only (tests compare them with the vector kernels)
#ifdef LSTMKIT_X86
    __builtin_cpu_init();
    r.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    r.bf16 = r.avx512 && __builtin_cpu_supports("avx512bf16");
    r.vnni = r.avx512 && __builtin_cpu_supports("avx512vnni");
#endif
    return r;
  }();
  return i;
}

uint16_t to_bf16(float v) {  // round to nearest even (what torch's float -> bfloat16 does)
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // NaN stays NaN
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float from_bf16(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

// ---- panel kernels: y[m][0..NB) += (a_m . w panel) for M <= MR rows -------------------------
// Packed layouts of one part (K padded to Kp, a multiple of the group g): panel p, group q,
// lane l, element e at ((p * Kp/g + q) * NB + l) * g + e, holding W[p*NB + l][q*g + e].

#ifdef LSTMKIT_X86
template <int M>
__attribute__((target("avx512f,avx512bw"))) void panel_f32_avx512(
    const float* const* a, const float* w, int64_t K, float* const* y) {
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
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < 4; ++j) {
      __m512 sum = acc[0][m][j];
      for (int u = 1; u < U; ++u) sum = _mm512_add_ps(sum, acc[u][m][j]);
      _mm512_storeu_ps(y[m] + 16 * j, _mm512_add_ps(_mm512_loadu_ps(y[m] + 16 * j), sum));
    }
}

template <int M>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void panel_bf16_avx512(
    const uint16_t* const* a, const uint16_t* w, int64_t Kp, float* const* y) {
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
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < 4; ++j)
      _mm512_storeu_ps(y[m] + 16 * j, _mm512_add_ps(_mm512_loadu_ps(y[m] + 16 * j), acc[m][j]));
}

// a: u8 activations (q + 128); y += sa_m * sw[n] * (sum u w - 128 colsum[n])
template <int M>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void panel_i8_avx512(
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
#endif

// The portable loops (any CPU; same packed data, same integer sums).
void panel_f32_any(int M, const float* const* a, const float* w, int64_t K, float* const* y) {
  for (int m = 0; m < M; ++m) {
    float acc[NB] = {};
    const float* wk = w;
    for (int64_t k = 0; k < K; ++k, wk += NB)
      for (int64_t l = 0; l < NB; ++l) acc[l] += a[m][k] * wk[l];
    for (int64_t l = 0; l < NB; ++l) y[m][l] += acc[l];
  }
}

void panel_bf16_any(int M, const uint16_t* const* a, const uint16_t* w, int64_t Kp, float* const* y) {
  for (int m = 0; m < M; ++m) {
    float acc[NB] = {};
    const uint16_t* wk = w;
    for (int64_t k = 0; k < Kp; k += 2, wk += 2 * NB) {
      const float a0 = from_bf16(a[m][k]), a1 = from_bf16(a[m][k + 1]);
      for (int64_t l = 0; l < NB; ++l) acc[l] += a0 * from_bf16(wk[2 * l]) + a1 * from_bf16(wk[2 * l + 1]);
    }
    for (int64_t l = 0; l < NB; ++l) y[m][l] += acc[l];
  }
}

void panel_i8_any(int M, const uint8_t* const* a, const int8_t* w, int64_t Kp, const float* sa,
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

// Fixed-M dispatch of an AVX-512 kernel template (M = 1..MR).
#define LSTMKIT_BY_M(M_, KERNEL, ...)                  \
  switch (M_) {                                        \
    case 1: KERNEL<1>(__VA_ARGS__); break;             \
    case 2: KERNEL<2>(__VA_ARGS__); break;             \
    case 3: KERNEL<3>(__VA_ARGS__); break;             \
    default: KERNEL<4>(__VA_ARGS__); break;            \
  }

template <typename S>
void step_rows(const S* a, int64_t lda, const S* c_prev, const S* wci, const S* wcf, const S* wco,
               S* h, S* c, S* act, int64_t B, int64_t H, int64_t G, bool coupled) {
  for (int64_t b = 0; b < B; ++b) {
    const S* ar = a + b * lda;
    const S* cp = c_prev + b * H;
    S* cn = c + b * H;
    if (coupled) {
      lstmkit::gates_forward_coupled(ar, ar + H, ar + 2 * H, cp, wci, wco, act, act + H, act + 2 * H,
                                     cn, H);
    } else {
      lstmkit::gates_forward(ar, ar + H, ar + 2 * H, ar + 3 * H, cp, wci, wcf, wco, act, act + H,
                             act + 2 * H, act + 3 * H, cn, H);
    }
    const S* o = act + G - H;
    S* hr = h + b * H;
    for (int64_t j = 0; j < H; ++j) hr[j] = o[j] * lstmkit::tanh_(cn[j]);
  }
}

}  // namespace

// One packed part (x or h) of the weights, in the stepper's precision.
void LstmStepper::pack(const at::Tensor& w_part, Part& part) {
  const int64_t K = w_part.size(1), g = group();
  part.K = K;
  part.Kp = round_up(K, g);
  const int64_t N = N_, Kp = part.Kp;
  at::Tensor w = w_part.to(at::kFloat).contiguous();  // (G, K)
  const float* src = w.data_ptr<float>();
  auto at_ = [&](int64_t n, int64_t k) -> int64_t {  // packed index of W[n][k]
    const int64_t p = n / NB, l = n % NB;
    return ((p * (Kp / g) + k / g) * NB + l) * g + k % g;
  };
  if (kind_ == Kind::Full) {
    part.w = at::zeros({N * Kp}, at::kFloat);
    float* dst = part.w.data_ptr<float>();
    for (int64_t n = 0; n < G_; ++n)
      for (int64_t k = 0; k < K; ++k) dst[at_(n, k)] = src[n * K + k];
  } else if (kind_ == Kind::BF16) {
    part.w = at::zeros({N * Kp}, at::kBFloat16);
    auto* dst = reinterpret_cast<uint16_t*>(part.w.data_ptr<at::BFloat16>());
    for (int64_t n = 0; n < G_; ++n)
      for (int64_t k = 0; k < K; ++k) dst[at_(n, k)] = to_bf16(src[n * K + k]);
  } else {
    part.w = at::zeros({N * Kp}, at::kChar);
    part.scale = at::zeros({N}, at::kFloat);
    part.zc = at::zeros({N}, at::kInt);
    auto* dst = part.w.data_ptr<int8_t>();
    float* sc = part.scale.data_ptr<float>();
    int32_t* zc = part.zc.data_ptr<int32_t>();
    for (int64_t n = 0; n < G_; ++n) {
      float amax = 0.f, probe = 0.f;  // probe: NaN if any value is NaN or infinite
      for (int64_t k = 0; k < K; ++k) {
        amax = std::max(amax, std::fabs(src[n * K + k]));
        probe += src[n * K + k] * 0.f;
      }
      TORCH_CHECK(probe == 0.f, "weights: expected finite values to quantise, got a NaN or an "
                  "infinity in gate row ", n);
      const float s = amax > 0.f ? amax / 127.f : 1.f;
      int32_t sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        const auto q = static_cast<int8_t>(std::nearbyint(src[n * K + k] / s));
        dst[at_(n, k)] = q;
        sum += q;
      }
      sc[n] = s;
      zc[n] = 128 * sum;  // u8 activations carry +128: subtract 128 * sum_k w
    }
  }
}

LstmStepper::LstmStepper(at::Tensor w_ih, at::Tensor w_hh, at::Tensor b_ih, at::Tensor b_hh,
                         at::Tensor w_ci, at::Tensor w_cf, at::Tensor w_co, bool coupled,
                         int64_t weights)
    : coupled_(coupled) {
  TORCH_CHECK(w_ih.dim() == 2 && w_hh.dim() == 2, "w_ih, w_hh: expected 2-D (G, I), (G, H)");
  TORCH_CHECK(w_ih.scalar_type() == at::kFloat || w_ih.scalar_type() == at::kDouble,
              "w_ih: expected float32 or float64, got ", w_ih.scalar_type());
  TORCH_CHECK(weights >= 0 && weights <= 2, "weights: expected 0 (full), 1 (bfloat16) or 2 (int8), got ",
              weights);
  kind_ = static_cast<Kind>(weights);
  TORCH_CHECK(kind_ == Kind::Full || w_ih.scalar_type() == at::kFloat,
              "weights: bfloat16 and int8 steps need float32 parameters, got ", w_ih.scalar_type());
  G_ = w_ih.size(0);
  I_ = w_ih.size(1);
  H_ = w_hh.size(1);
  N_ = round_up(G_, NB);
  TORCH_CHECK(G_ == (coupled ? 3 : 4) * H_, "w_hh: expected (", (coupled ? 3 : 4), "H, H) with G=",
              G_, ", got ", w_hh.sizes());
  lstmkit::check_weight(w_hh, "w_hh", w_ih, {G_, H_});
  // int32 sums of 8-bit products stay exact up to 2^31 / (255 * 127) terms
  TORCH_CHECK(kind_ != Kind::Int8 || std::max(I_, H_) <= 65536,
              "weights: int8 steps support input and hidden sizes up to 65536, got ", I_, ", ", H_);
  at::NoGradGuard no_grad;
  auto opts = w_ih.options();
  if (lstmkit::on(b_ih)) {
    lstmkit::check(b_ih, "b_ih", w_ih, {G_}, false);
    lstmkit::check(b_hh, "b_hh", w_ih, {G_}, false);
    bias_ = (b_ih + b_hh).contiguous();
  } else {
    bias_ = at::zeros({G_}, opts);
  }
  auto diag = [&](const at::Tensor& t, const char* name) {
    if (!lstmkit::on(t)) return at::zeros({H_}, opts);  // absent peepholes: zeros, no branches
    lstmkit::check(t, name, w_ih, {H_}, false);
    return t.contiguous().clone();
  };
  wci_ = diag(w_ci, "w_ci");
  wcf_ = diag(w_cf, "w_cf");
  wco_ = diag(w_co, "w_co");
  if (w_ih.scalar_type() == at::kFloat) {
    pack(w_ih, px_);
    pack(w_hh, ph_);
  }
  if (w_ih.scalar_type() == at::kDouble) w_ = at::cat({w_ih, w_hh}, 1).t().contiguous();  // (I+H, G)
}

int64_t LstmStepper::group() const { return kind_ == Kind::Int8 ? 4 : (kind_ == Kind::BF16 ? 2 : 1); }

int64_t LstmStepper::weight_bytes() const {
  int64_t n = 0;
  for (const Part* p : {&px_, &ph_})
    if (p->w.defined()) n += p->w.nbytes() + (p->scale.defined() ? p->scale.nbytes() + p->zc.nbytes() : 0);
  return n;
}

// y (MR rows of N floats) += this part applied to M rows of a (row stride lda, float32).
void LstmStepper::run_part(const Part& part, const float* a, int64_t lda, int64_t M, float* y) {
  const Isa& cpu = isa();
  const int64_t K = part.K, Kp = part.Kp, P = N_ / NB;
  float* yrow[MR];
  if (kind_ == Kind::Full) {
    const float* arow[MR];
    for (int64_t m = 0; m < M; ++m) arow[m] = a + m * lda;
    const float* w = part.w.data_ptr<float>();
    for (int64_t p = 0; p < P; ++p, w += Kp * NB) {
      for (int64_t m = 0; m < M; ++m) yrow[m] = y + m * N_ + p * NB;
#ifdef LSTMKIT_X86
      if (cpu.avx512) {
        LSTMKIT_BY_M(M, panel_f32_avx512, arow, w, K, yrow);
        continue;
      }
#endif
      panel_f32_any(int(M), arow, w, K, yrow);
    }
    return;
  }
  if (kind_ == Kind::BF16) {
    const uint16_t* arow[MR];
    for (int64_t m = 0; m < M; ++m) {  // round each row to bfloat16, zero padding
      uint16_t* q = act16_.data() + m * Kp;
      for (int64_t k = 0; k < K; ++k) q[k] = to_bf16(a[m * lda + k]);
      for (int64_t k = K; k < Kp; ++k) q[k] = 0;
      arow[m] = q;
    }
    const auto* w = reinterpret_cast<const uint16_t*>(part.w.data_ptr<at::BFloat16>());
    for (int64_t p = 0; p < P; ++p, w += Kp * NB) {
      for (int64_t m = 0; m < M; ++m) yrow[m] = y + m * N_ + p * NB;
#ifdef LSTMKIT_X86
      if (cpu.bf16) {
        LSTMKIT_BY_M(M, panel_bf16_avx512, arow, w, Kp, yrow);
        continue;
      }
#endif
      panel_bf16_any(int(M), arow, w, Kp, yrow);
    }
    return;
  }
  // int8: each row quantised to 8 bits with its own scale (u = q + 128)
  const uint8_t* arow[MR];
  float sa[MR];
  for (int64_t m = 0; m < M; ++m) {
    const float* r = a + m * lda;
    uint8_t* q = act8_.data() + m * Kp;
    float amax = 0.f, probe = 0.f;  // probe: NaN if any value is NaN or infinite
    for (int64_t k = 0; k < K; ++k) {
      amax = std::max(amax, std::fabs(r[k]));
      probe += r[k] * 0.f;
    }
    if (!(amax > 0.f) || probe != 0.f) {  // all zeros -> 0; NaN or inf -> NaN out
      std::fill(q, q + Kp, uint8_t(128));
      sa[m] = probe == 0.f ? 0.f : NAN;
    } else {
      const float inv = 127.f / amax;
      for (int64_t k = 0; k < K; ++k) q[k] = uint8_t(int32_t(std::nearbyint(r[k] * inv)) + 128);
      std::fill(q + K, q + Kp, uint8_t(128));
      sa[m] = amax / 127.f;
    }
    arow[m] = q;
  }
  const int8_t* w = part.w.data_ptr<int8_t>();
  const float* sw = part.scale.data_ptr<float>();
  const int32_t* zc = part.zc.data_ptr<int32_t>();
  for (int64_t p = 0; p < P; ++p, w += Kp * NB) {
    for (int64_t m = 0; m < M; ++m) yrow[m] = y + m * N_ + p * NB;
#ifdef LSTMKIT_X86
    if (cpu.vnni) {
      LSTMKIT_BY_M(M, panel_i8_avx512, arow, w, Kp, sa, sw + p * NB, zc + p * NB, yrow);
      continue;
    }
#endif
    panel_i8_any(int(M), arow, w, Kp, sa, sw + p * NB, zc + p * NB, yrow);
  }
}

std::vector<at::Tensor> LstmStepper::step(at::Tensor x, at::Tensor h, at::Tensor c) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == I_, "x: expected (B, I=", I_, "), got ", x.sizes());
  const int64_t B = x.size(0);
  const at::Tensor& ref = bias_;
  lstmkit::check(x, "x", ref, {B, I_}, false);
  lstmkit::check(h, "h", ref, {B, H_}, false);
  lstmkit::check(c, "c", ref, {B, H_}, false);
  at::NoGradGuard no_grad;
  at::Tensor xc = x.contiguous(), hc = h.contiguous(), cc = c.contiguous();
  at::Tensor h_new = at::empty({B, H_}, ref.options());
  at::Tensor c_new = at::empty({B, H_}, ref.options());
  if (!px_.w.defined()) {  // float64: one GEMM over [x, h]
    if (!xh_.defined() || xh_.size(0) != B) {
      xh_ = at::empty({B, I_ + H_}, ref.options());
      a_ = at::empty({B, G_}, ref.options());
    }
    xh_.narrow(1, 0, I_).copy_(xc);
    xh_.narrow(1, I_, H_).copy_(hc);
    at::addmm_out(a_, bias_, xh_, w_);  // (B, G) = b + [x, h] [W_ih | W_hh]^T
    AT_DISPATCH_FLOATING_TYPES(ref.scalar_type(), "lstm_stepper", [&] {
      std::vector<scalar_t> act(G_);
      step_rows<scalar_t>(a_.data_ptr<scalar_t>(), G_, cc.data_ptr<scalar_t>(),
                          wci_.data_ptr<scalar_t>(), wcf_.data_ptr<scalar_t>(),
                          wco_.data_ptr<scalar_t>(), h_new.data_ptr<scalar_t>(),
                          c_new.data_ptr<scalar_t>(), act.data(), B, H_, G_, coupled_);
    });
    return {h_new, c_new};
  }
  // panels: MR rows at a time, gate pre-activations in a (MR, N) float32 buffer
  y_.resize(MR * N_);
  act_.resize(G_);
  act16_.resize(MR * std::max(px_.Kp, ph_.Kp));
  act8_.resize(MR * std::max(px_.Kp, ph_.Kp));
  const float* xp = xc.data_ptr<float>();
  const float* hp = hc.data_ptr<float>();
  const float* bias = bias_.data_ptr<float>();
  for (int64_t b0 = 0; b0 < B; b0 += MR) {
    const int64_t M = std::min(MR, B - b0);
    for (int64_t m = 0; m < M; ++m) {
      float* yr = y_.data() + m * N_;
      std::memcpy(yr, bias, G_ * sizeof(float));
      std::fill(yr + G_, yr + N_, 0.f);
    }
    run_part(px_, xp + b0 * I_, I_, M, y_.data());
    run_part(ph_, hp + b0 * H_, H_, M, y_.data());
    step_rows<float>(y_.data(), N_, cc.data_ptr<float>() + b0 * H_, wci_.data_ptr<float>(),
                     wcf_.data_ptr<float>(), wco_.data_ptr<float>(), h_new.data_ptr<float>() + b0 * H_,
                     c_new.data_ptr<float>() + b0 * H_, act_.data(), M, H_, G_, coupled_);
  }
  return {h_new, c_new};
}
