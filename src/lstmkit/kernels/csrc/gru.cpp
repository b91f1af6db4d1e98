// Fused GRU time loops. Symbols: T time, B batch, H hidden, G = 3H rows (r, z, n).
// reset_after=True (torch's form): per step one recurrent GEMM through torch and one fused
// elementwise pass; Python owns the input projection (x W_ih^T + b_ih + the r, z rows of b_hh).
// reset_after=False (Cho et al. 2014, the gru_cho_* entry points): the reset multiplies the n
// GEMM's input, so a step runs two GEMMs (r, z rows on hr; n rows on q = r * hr), each followed
// by one fused pass; every bias is in Python's input projection.
// Python owns masks and the weight gradients. Optional tensors arrive as empty tensors; every
// tensor is contiguous.
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"
#include "gates.h"
#include "kernels.h"

namespace {


using lstmkit::grain;
using lstmkit::on;
using lstmkit::ptr_or_null;

template <typename S>
std::vector<at::Tensor> forward_impl(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& w_hh,
                                     const at::Tensor& b_hn, const at::Tensor& rec,
                                     const at::Tensor& keep_h, bool save) {
  const int64_t T = xg.size(0), B = xg.size(1), G = xg.size(2), H = h0.size(1);
  auto opts = xg.options();
  at::Tensor h_all = at::empty({T + 1, B, H}, opts);
  h_all[0].copy_(h0);
  at::Tensor act = at::empty({save ? T : 1, B, G}, opts);
  at::Tensor hn = at::empty({save ? T : 1, B, H}, opts);
  at::Tensor hh = at::empty({B, G}, opts);
  at::Tensor hrb = on(rec) ? at::empty({B, H}, opts) : at::Tensor();
  lstmkit::StepGemm rec_gemm(w_hh, B, T, opts);
  std::vector<S> zeros(H, S(0));
  const S* bhn = on(b_hn) ? b_hn.data_ptr<S>() : zeros.data();
  const S* kh = ptr_or_null<S>(keep_h);
  const S* xg_p = xg.data_ptr<S>();
  S* h_p = h_all.data_ptr<S>();
  const S* hh_p = hh.data_ptr<S>();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t ts = save ? t : 0;
    if (on(rec)) {
      at::mul_out(hrb, h_all[t], rec);
      rec_gemm(hh, hrb);
    } else {
      rec_gemm(hh, h_all[t]);  // (B, G)
    }
    S* act_p = act.data_ptr<S>() + ts * B * G;
    S* hn_p = hn.data_ptr<S>() + ts * B * H;
    at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const S* x = xg_p + (t * B + b) * G;
        const S* a = hh_p + b * G;
        const S* hp = h_p + (t * B + b) * H;
        S* ar = act_p + b * G;
        S* hout = h_p + ((t + 1) * B + b) * H;
        lstmkit::gru_gates_forward(x, x + H, x + 2 * H, a, a + H, a + 2 * H, bhn, hp, ar, ar + H, ar + 2 * H,
                          hn_p + b * H, hout, H);
        if (kh) {  // h = keep * h_prev + (1 - keep) * h_new
          const S* k = kh + (t * B + b) * H;
          for (int64_t j = 0; j < H; ++j) hout[j] = hout[j] + k[j] * (hp[j] - hout[j]);
        }
      }
    });
  }
  return {h_all, act, hn};
}

template <typename S>
std::vector<at::Tensor> backward_impl(const at::Tensor& dy, const at::Tensor& dh_n,
                                      const at::Tensor& h_all, const at::Tensor& act,
                                      const at::Tensor& hn, const at::Tensor& w_hh,
                                      const at::Tensor& rec, const at::Tensor& keep_h) {
  const int64_t T = act.size(0), B = act.size(1), G = act.size(2), H = h_all.size(2);
  auto opts = act.options();
  lstmkit::StepGemm rec_gemm(w_hh.t(), B, T, opts);  // d h_prev (B, H) = d hh W_hh
  at::Tensor dh = on(dh_n) ? dh_n.clone() : at::zeros({B, H}, opts);
  at::Tensor dhh_all = at::empty({T, B, G}, opts);  // d of the recurrent GEMM output (n: d hn)
  at::Tensor dan_all = at::empty({T, B, H}, opts);  // d n pre-activation (= d xg_n)
  at::Tensor dh_new = at::empty({B, H}, opts);
  at::Tensor dh_direct = at::empty({B, H}, opts);
  at::Tensor dhr = at::empty({B, H}, opts);
  const S* dy_p = ptr_or_null<S>(dy);
  const S* kh = ptr_or_null<S>(keep_h);
  const S* rec_p = ptr_or_null<S>(rec);
  const S* h_p = h_all.data_ptr<S>();
  const S* act_p = act.data_ptr<S>();
  const S* hn_p = hn.data_ptr<S>();
  S* dh_p = dh.data_ptr<S>();
  S* dhn_p = dh_new.data_ptr<S>();
  S* dd_p = dh_direct.data_ptr<S>();
  const S* dhr_p = dhr.data_ptr<S>();
  for (int64_t t = T - 1; t >= 0; --t) {
    for (int64_t k = 0; k < B * H; ++k) {
      S v = dh_p[k] + (dy_p ? dy_p[t * B * H + k] : S(0));
      dh_p[k] = v;
      dhn_p[k] = kh ? v * (S(1) - kh[t * B * H + k]) : v;
    }
    S* dhh_p = dhh_all.data_ptr<S>() + t * B * G;
    S* dan_p = dan_all.data_ptr<S>() + t * B * H;
    at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const S* ar = act_p + (t * B + b) * G;
        S* d = dhh_p + b * G;
        lstmkit::gru_gates_backward(ar, ar + H, ar + 2 * H, hn_p + (t * B + b) * H, h_p + (t * B + b) * H,
                           dhn_p + b * H, d, d + H, d + 2 * H, dan_p + b * H, dd_p + b * H, H);
      }
    });
    at::Tensor dhh_t = dhh_all[t];
    rec_gemm(dhr, dhh_t);  // (B, H) backprop through the recurrent GEMM
    for (int64_t k = 0; k < B * H; ++k) {
      S v = dd_p[k] + (rec_p ? dhr_p[k] * rec_p[k] : dhr_p[k]);
      dh_p[k] = v + (kh ? dh_p[k] * kh[t * B * H + k] : S(0));
    }
  }
  return {dhh_all, dan_all, dh};
}


// ---- reset_after=False (Cho) -------------------------------------------------------------------
template <typename S>
std::vector<at::Tensor> cho_forward_impl(const at::Tensor& xg, const at::Tensor& h0,
                                         const at::Tensor& w_hh, const at::Tensor& rec,
                                         const at::Tensor& keep_h, bool save) {
  const int64_t T = xg.size(0), B = xg.size(1), G = xg.size(2), H = h0.size(1);
  auto opts = xg.options();
  at::Tensor h_all = at::empty({T + 1, B, H}, opts);
  h_all[0].copy_(h0);
  at::Tensor act = at::empty({save ? T : 1, B, G}, opts);
  at::Tensor arz = at::empty({B, 2 * H}, opts);  // hr W_h{r,z}^T
  at::Tensor an = at::empty({B, H}, opts);       // q W_hn^T
  at::Tensor q = at::empty({B, H}, opts);        // r * hr
  at::Tensor hrb = on(rec) ? at::empty({B, H}, opts) : at::Tensor();
  lstmkit::StepGemm rz_gemm(w_hh.narrow(0, 0, 2 * H), B, T, opts);
  lstmkit::StepGemm n_gemm(w_hh.narrow(0, 2 * H, H), B, T, opts);
  const S* kh = ptr_or_null<S>(keep_h);
  const S* xg_p = xg.data_ptr<S>();
  S* h_p = h_all.data_ptr<S>();
  const S* arz_p = arz.data_ptr<S>();
  const S* an_p = an.data_ptr<S>();
  S* q_p = q.data_ptr<S>();
  for (int64_t t = 0; t < T; ++t) {
    S* act_p = act.data_ptr<S>() + (save ? t : 0) * B * G;
    at::Tensor hr = h_all[t];
    if (on(rec)) {
      at::mul_out(hrb, hr, rec);
      hr = hrb;
    }
    const S* hr_p = hr.data_ptr<S>();
    rz_gemm(arz, hr);  // (B, 2H)
    at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const S* x = xg_p + (t * B + b) * G;
        const S* a = arz_p + b * 2 * H;
        S* ar = act_p + b * G;
        lstmkit::gru_cho_rz_forward(x, x + H, a, a + H, hr_p + b * H, ar, ar + H, q_p + b * H, H);
      }
    });
    n_gemm(an, q);  // (B, H)
    at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const S* x = xg_p + (t * B + b) * G;
        const S* hp = h_p + (t * B + b) * H;
        S* ar = act_p + b * G;
        S* hout = h_p + ((t + 1) * B + b) * H;
        lstmkit::gru_cho_n_forward(x + 2 * H, an_p + b * H, ar + H, hp, ar + 2 * H, hout, H);
        if (kh) {  // h = keep * h_prev + (1 - keep) * h_new
          const S* k = kh + (t * B + b) * H;
          for (int64_t j = 0; j < H; ++j) hout[j] = hout[j] + k[j] * (hp[j] - hout[j]);
        }
      }
    });
  }
  return {h_all, act};
}

// Returns {d xg (T, B, G): r, z, n pre-activations, d h0}.
template <typename S>
std::vector<at::Tensor> cho_backward_impl(const at::Tensor& dy, const at::Tensor& dh_n,
                                          const at::Tensor& h_all, const at::Tensor& act,
                                          const at::Tensor& w_hh, const at::Tensor& rec,
                                          const at::Tensor& keep_h) {
  const int64_t T = act.size(0), B = act.size(1), G = act.size(2), H = h_all.size(2);
  auto opts = act.options();
  lstmkit::StepGemm n_gemm(w_hh.narrow(0, 2 * H, H).t(), B, T, opts);   // dq = da_n W_hn
  lstmkit::StepGemm rz_gemm(w_hh.narrow(0, 0, 2 * H).t(), B, T, opts);  // [da_r, da_z] W_h{r,z}
  at::Tensor dh = on(dh_n) ? dh_n.clone() : at::zeros({B, H}, opts);
  at::Tensor da_all = at::empty({T, B, G}, opts);
  at::Tensor dh_new = at::empty({B, H}, opts);
  at::Tensor dh_direct = at::empty({B, H}, opts);
  at::Tensor drz = at::empty({B, 2 * H}, opts);
  at::Tensor dan = at::empty({B, H}, opts);
  at::Tensor dq = at::empty({B, H}, opts);
  at::Tensor dhr_q = at::empty({B, H}, opts);
  at::Tensor dhr = at::empty({B, H}, opts);
  at::Tensor hrb = on(rec) ? at::empty({B, H}, opts) : at::Tensor();
  const S* dy_p = ptr_or_null<S>(dy);
  const S* kh = ptr_or_null<S>(keep_h);
  const S* rec_p = ptr_or_null<S>(rec);
  const S* h_p = h_all.data_ptr<S>();
  const S* act_p = act.data_ptr<S>();
  S* dh_p = dh.data_ptr<S>();
  S* dhn_p = dh_new.data_ptr<S>();
  S* dd_p = dh_direct.data_ptr<S>();
  S* drz_p = drz.data_ptr<S>();
  S* dan_p = dan.data_ptr<S>();
  const S* dq_p = dq.data_ptr<S>();
  S* dhrq_p = dhr_q.data_ptr<S>();
  const S* dhr_p = dhr.data_ptr<S>();
  for (int64_t t = T - 1; t >= 0; --t) {
    for (int64_t k = 0; k < B * H; ++k) {
      S v = dh_p[k] + (dy_p ? dy_p[t * B * H + k] : S(0));
      dh_p[k] = v;
      dhn_p[k] = kh ? v * (S(1) - kh[t * B * H + k]) : v;
    }
    const S* hr_p = h_p + t * B * H;
    if (rec_p) {
      at::mul_out(hrb, h_all[t], rec);
      hr_p = hrb.data_ptr<S>();
    }
    at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const S* ar = act_p + (t * B + b) * G;
        lstmkit::gru_cho_zn_backward(ar + H, ar + 2 * H, h_p + (t * B + b) * H, dhn_p + b * H,
                                     drz_p + b * 2 * H + H, dan_p + b * H, dd_p + b * H, H);
      }
    });
    n_gemm(dq, dan);  // (B, H) d q
    S* da_t = da_all.data_ptr<S>() + t * B * G;
    at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const S* ar = act_p + (t * B + b) * G;
        S* d = drz_p + b * 2 * H;
        lstmkit::gru_cho_r_backward(ar, hr_p + b * H, dq_p + b * H, d, dhrq_p + b * H, H);
        S* out = da_t + b * G;
        std::memcpy(out, d, sizeof(S) * 2 * H);
        std::memcpy(out + 2 * H, dan_p + b * H, sizeof(S) * H);
      }
    });
    rz_gemm(dhr, drz);  // (B, H) backprop through the r, z GEMM
    for (int64_t k = 0; k < B * H; ++k) {
      S v = dhr_p[k] + dhrq_p[k];  // d hr
      v = dd_p[k] + (rec_p ? v * rec_p[k] : v);
      dh_p[k] = v + (kh ? dh_p[k] * kh[t * B * H + k] : S(0));
    }
  }
  return {da_all, dh};
}

}  // namespace

std::vector<at::Tensor> gru_forward(at::Tensor xg, at::Tensor h0, at::Tensor w_hh, at::Tensor b_hn,
                                    at::Tensor rec, at::Tensor keep_h, bool save) {
  lstmkit::check_floating(xg, "xg");
  const int64_t T = xg.size(0), B = xg.size(1), H = h0.dim() == 2 ? h0.size(1) : -1;
  lstmkit::check_shape(xg, "xg", {T, B, 3 * H});
  lstmkit::check(h0, "h0", xg, {B, H});
  lstmkit::check_weight(w_hh, "w_hh", xg, {3 * H, H});
  lstmkit::check_opt(b_hn, "b_hn", xg, {H});
  lstmkit::check_masks(rec, keep_h, xg, T, B, H);
  return LSTMKIT_DISPATCH(xg, "gru_forward", forward_impl<scalar_t>(xg, h0, w_hh, b_hn, rec, keep_h, save));
}

std::vector<at::Tensor> gru_backward(at::Tensor dy, at::Tensor dh_n, at::Tensor h_all, at::Tensor act,
                                     at::Tensor hn, at::Tensor w_hh, at::Tensor rec, at::Tensor keep_h) {
  lstmkit::check_floating(act, "act");
  const int64_t T = act.size(0), B = act.size(1), H = act.size(2) / 3;
  lstmkit::check_shape(act, "act", {T, B, 3 * H});
  lstmkit::check(h_all, "h_all", act, {T + 1, B, H});
  lstmkit::check(hn, "hn", act, {T, B, H});
  lstmkit::check_opt(dy, "dy", act, {T, B, H});
  lstmkit::check_opt(dh_n, "dh_n", act, {B, H});
  lstmkit::check_weight(w_hh, "w_hh", act, {3 * H, H});
  lstmkit::check_masks(rec, keep_h, act, T, B, H);
  return LSTMKIT_DISPATCH(act, "gru_backward", backward_impl<scalar_t>(dy, dh_n, h_all, act, hn, w_hh, rec, keep_h));
}

std::vector<at::Tensor> gru_cho_forward(at::Tensor xg, at::Tensor h0, at::Tensor w_hh, at::Tensor rec,
                                        at::Tensor keep_h, bool save) {
  lstmkit::check_floating(xg, "xg");
  const int64_t T = xg.size(0), B = xg.size(1), H = h0.dim() == 2 ? h0.size(1) : -1;
  lstmkit::check_shape(xg, "xg", {T, B, 3 * H});
  lstmkit::check(h0, "h0", xg, {B, H});
  lstmkit::check_weight(w_hh, "w_hh", xg, {3 * H, H});
  lstmkit::check_masks(rec, keep_h, xg, T, B, H);
  return LSTMKIT_DISPATCH(xg, "gru_cho_forward", cho_forward_impl<scalar_t>(xg, h0, w_hh, rec, keep_h, save));
}

std::vector<at::Tensor> gru_cho_backward(at::Tensor dy, at::Tensor dh_n, at::Tensor h_all, at::Tensor act,
                                         at::Tensor w_hh, at::Tensor rec, at::Tensor keep_h) {
  lstmkit::check_floating(act, "act");
  const int64_t T = act.size(0), B = act.size(1), H = act.size(2) / 3;
  lstmkit::check_shape(act, "act", {T, B, 3 * H});
  lstmkit::check(h_all, "h_all", act, {T + 1, B, H});
  lstmkit::check_opt(dy, "dy", act, {T, B, H});
  lstmkit::check_opt(dh_n, "dh_n", act, {B, H});
  lstmkit::check_weight(w_hh, "w_hh", act, {3 * H, H});
  lstmkit::check_masks(rec, keep_h, act, T, B, H);
  return LSTMKIT_DISPATCH(act, "gru_cho_backward", cho_backward_impl<scalar_t>(dy, dh_n, h_all, act, w_hh, rec, keep_h));
}
