// Streaming LSTM step without autograd (cells, stateful inference, the server). The weights are
// packed once; a step is one pass over them (the x part, then the h part, each into the same
// gate pre-activations), one gate pass, and nothing allocated but the returned state. Plain,
// peephole and coupled LSTMs (no projection, no layer norm: Python sends those to lstm_step).
//
// Weight precisions (the step is bound by reading the weights: 2 MiB of float32 at H=256):
// - full: the weights' own dtype. float32 is packed in 64-wide column panels and run by an
//   AVX-512 or AVX2 kernel at every batch size (MKL's GEMM loses to it here); float64 runs one GEMM
//   over [x, h].
// - bfloat16: weights rounded to bfloat16 (half the bytes), activations rounded to bfloat16 each
//   step, products accumulated in float32 (AVX512-BF16 dot products where the CPU has them, else
//   AVX2 FMAs on the widened pairs).
// - int8: weights quantised per output row and part (x, h) to int8 with a float scale (a quarter
//   of the bytes); each step quantises each row of x and of h to 8 bits with its own scale
//   (dynamic quantisation, as torch.ao's dynamic LSTM), exact int32 dot products (AVX512-VNNI
//   where the CPU has it, else AVX2 16-bit multiply-adds), one float rescale.
// Every path has a portable loop over the same packed data, so results do not depend on the CPU
// beyond float summation order. Symbols: B batch, I input, H hidden, G gate rows (4H; 3H
// coupled), K depth of a part (I or H), N = G padded to whole panels.
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"
#include "gates.h"
#include "kernels.h"
#include "panels.h"

namespace {

namespace pn = lstmkit::panels;
using pn::NB;
using pn::MR;

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

// One packed part (x or h) of the weights, in the stepper's precision (panels.h's layout).
void LstmStepper::pack(const at::Tensor& w_part, Part& part) {
  const int64_t K = w_part.size(1), g = group();
  part.K = K;
  part.Kp = pn::round_up(K, g);
  if (kind_ != Kind::Int8) {
    part.w = pn::pack(w_part, kind_ == Kind::BF16 ? at::kBFloat16 : at::kFloat);
    return;
  }
  const int64_t Kp = part.Kp;
  at::Tensor w = w_part.to(at::kFloat).contiguous();  // (G, K)
  const float* src = w.data_ptr<float>();
  part.w = at::zeros({N_ * Kp}, at::kChar);
  part.scale = at::zeros({N_}, at::kFloat);
  part.zc = at::zeros({N_}, at::kInt);
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
    const float s = amax / 127.f > 0.f ? amax / 127.f : 1.f;  // all (or nearly) zero: q = 0
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      const auto q = static_cast<int8_t>(std::nearbyint(src[n * K + k] / s));
      dst[pn::packed_at(n, k, Kp, 4)] = q;
      sum += q;
    }
    sc[n] = s;
    zc[n] = 128 * sum;  // u8 activations carry +128: subtract 128 * sum_k w
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
  N_ = pn::round_up(G_, NB);
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

// y (M rows, stride N) += this part applied to M rows of a (row stride lda, float32).
void LstmStepper::run_part(const Part& part, const float* a, int64_t lda, int64_t M, float* y) {
  if (kind_ != Kind::Int8) {
    pn::gemm(a, lda, M, part.w, G_, part.K, y, N_, true, act16_.data());
    return;
  }
  const int64_t K = part.K, Kp = part.Kp, P = N_ / NB;
  const pn::Isa& cpu = pn::isa();
  for (int64_t m0 = 0; m0 < M; m0 += MR) {
    const int Mb = int(std::min(MR, M - m0));
    // each row quantised to 8 bits with its own scale (u = q + 128)
    const uint8_t* arow[MR];
    float sa[MR];
    for (int m = 0; m < Mb; ++m) {
      const float* r = a + (m0 + m) * lda;
      uint8_t* q = act8_.data() + m * Kp;
      float amax = 0.f, probe = 0.f;  // probe: NaN if any value is NaN or infinite
      for (int64_t k = 0; k < K; ++k) {
        amax = std::max(amax, std::fabs(r[k]));
        probe += r[k] * 0.f;
      }
      const float inv = 127.f / amax;
      if (!(amax > 0.f) || !std::isfinite(inv) || probe != 0.f) {  // ~zeros -> 0; NaN/inf -> NaN
        std::fill(q, q + Kp, uint8_t(128));
        sa[m] = probe == 0.f ? 0.f : NAN;
      } else {
        for (int64_t k = 0; k < K; ++k) q[k] = uint8_t(int32_t(std::nearbyint(r[k] * inv)) + 128);
        std::fill(q + K, q + Kp, uint8_t(128));
        sa[m] = amax / 127.f;
      }
      arow[m] = q;
    }
    const uint64_t* wrow[MR] = {};  // AVX2 without VNNI: the rows widened once for every panel
#ifdef LSTMKIT_X86
    if (cpu.avx2 && !cpu.vnni) {
      wide_.resize(MR * (Kp / 4));
      for (int m = 0; m < Mb; ++m) {
        pn::widen_quads(arow[m], Kp, wide_.data() + m * (Kp / 4));
        wrow[m] = wide_.data() + m * (Kp / 4);
      }
    }
#endif
    const int8_t* w = part.w.data_ptr<int8_t>();
    const float* sw = part.scale.data_ptr<float>();
    const int32_t* zc = part.zc.data_ptr<int32_t>();
    for (int64_t p = 0; p < P; ++p, w += Kp * NB) {
      float* yrow[MR];
      for (int m = 0; m < Mb; ++m) yrow[m] = y + (m0 + m) * N_ + p * NB;
#ifdef LSTMKIT_X86
      if (cpu.vnni) {
        LSTMKIT_BY_M(Mb, pn::i8_avx512, arow, w, Kp, sa, sw + p * NB, zc + p * NB, yrow);
        continue;
      }
      if (cpu.avx2) {
        LSTMKIT_BY_M(Mb, pn::i8_avx2, wrow, w, Kp, sa, sw + p * NB, zc + p * NB, yrow);
        continue;
      }
#endif
      pn::i8_any(Mb, arow, w, Kp, sa, sw + p * NB, zc + p * NB, yrow);
    }
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
  // panels: gate pre-activations of all rows in a (B, N) float32 buffer, bias first
  const int64_t Kp = std::max(px_.Kp, ph_.Kp);
  y_.resize(B * N_);
  act_.resize(G_);
  if (kind_ == Kind::BF16) act16_.resize(B * Kp);
  act8_.resize(MR * Kp);
  const float* bias = bias_.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    std::memcpy(y_.data() + b * N_, bias, G_ * sizeof(float));
    std::fill(y_.data() + b * N_ + G_, y_.data() + (b + 1) * N_, 0.f);
  }
  run_part(px_, xc.data_ptr<float>(), I_, B, y_.data());
  run_part(ph_, hc.data_ptr<float>(), H_, B, y_.data());
  step_rows<float>(y_.data(), N_, cc.data_ptr<float>(), wci_.data_ptr<float>(), wcf_.data_ptr<float>(),
                   wco_.data_ptr<float>(), h_new.data_ptr<float>(), c_new.data_ptr<float>(),
                   act_.data(), B, H_, G_, coupled_);
  return {h_new, c_new};
}
