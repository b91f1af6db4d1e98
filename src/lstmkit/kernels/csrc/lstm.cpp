// Fused LSTM time loop: per step one GEMM through torch and one fused elementwise pass.
//
// Symbols: T time, B batch, H hidden (cell), P output width (proj or H), G gate rows (4H; 3H coupled).
// The kernel sees raw pointers and shapes; Python owns layout, masks and the input projection
// (x W_ih^T for all steps, LN_ih, biases) and takes the weight gradients with GEMMs afterwards.
// With layer norm the backward also runs LN_ih's backward row by row (d xp for those GEMMs) and
// accumulates every layer-norm parameter's gradient (and the biases') as it goes: no (T, B, G)
// temporaries for them in Python.
// Optional tensors are passed as undefined/empty tensors. Every state tensor is contiguous; the
// GEMM weights (w_hh, w_hr) are the state's dtype, or bfloat16 under a float32 state (bfloat16
// GEMMs, float32 gate math: common.h's StepGemm). The gate math is gates.h's.
//
// Each pass is a struct whose methods are its named steps, called in order by run().
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "common.h"
#include "gates.h"
#include "kernels.h"

namespace {

using lstmkit::grain;
using lstmkit::on;
using lstmkit::ptr_or_null;

template <typename S>
struct LstmForward {
  const int64_t T, B, G, H, P;
  const bool coupled, save, proj, ln, blended, kh_on, rec_on;
  // outputs (with save=false the per-step ones hold one step: nothing is kept for a backward)
  at::Tensor h_all, c_all, act, tc, c_new, hh_hat, hh_rstd, c_hat, c_rstd;
  // per-step workspace
  at::Tensor hh, hr, m, hproj, rec_t;
  lstmkit::StepGemm rec_gemm, proj_gemm;
  std::vector<S> zeros;  // stands in for absent peepholes: no branches in the loops
  const S *xg_p, *wci, *wcf, *wco, *lnw, *lnb, *lcw, *lcb, *rec_p, *kc_p, *kh_p;
  S *h_p, *c_p, *hh_p;

  LstmForward(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
              const at::Tensor& w_hr, const at::Tensor& w_ci, const at::Tensor& w_cf,
              const at::Tensor& w_co, const at::Tensor& ln_hh_w, const at::Tensor& ln_hh_b,
              const at::Tensor& ln_c_w, const at::Tensor& ln_c_b, const at::Tensor& rec,
              const at::Tensor& keep_c, const at::Tensor& keep_h, bool coupled_, bool save_)
      : T(xg.size(0)), B(xg.size(1)), G(xg.size(2)), H(c0.size(1)), P(h0.size(1)),
        coupled(coupled_), save(save_), proj(on(w_hr)), ln(on(ln_hh_w)), blended(on(keep_c)),
        kh_on(on(keep_h)), rec_on(on(rec)) {
    auto opts = xg.options();
    const int64_t Ts = save ? T : 1;
    h_all = at::empty({T + 1, B, P}, opts);
    c_all = at::empty({T + 1, B, H}, opts);
    h_all[0].copy_(h0);
    c_all[0].copy_(c0);
    act = at::empty({Ts, B, G}, opts);
    tc = at::empty({Ts, B, H}, opts);
    c_new = blended ? at::empty({Ts, B, H}, opts) : at::empty({0}, opts);
    hh_hat = ln ? at::empty({Ts, B, G}, opts) : at::empty({0}, opts);
    hh_rstd = ln ? at::empty({Ts, B, 1}, opts) : at::empty({0}, opts);
    c_hat = ln ? at::empty({Ts, B, H}, opts) : at::empty({0}, opts);
    c_rstd = ln ? at::empty({Ts, B, 1}, opts) : at::empty({0}, opts);
    hh = at::empty({B, G}, opts);
    if (rec_on) {
      hr = at::empty({B, P}, opts);
      rec_t = rec;
    }
    if (proj) {
      m = at::empty({B, H}, opts);
      hproj = at::empty({B, P}, opts);
      proj_gemm = lstmkit::StepGemm(w_hr, B, T, opts);
    }
    rec_gemm = lstmkit::StepGemm(w_hh, B, T, opts);
    zeros.assign(H > P ? H : P, S(0));
    xg_p = xg.data_ptr<S>();
    wci = on(w_ci) ? w_ci.data_ptr<S>() : zeros.data();
    wcf = on(w_cf) ? w_cf.data_ptr<S>() : zeros.data();
    wco = on(w_co) ? w_co.data_ptr<S>() : zeros.data();
    lnw = ptr_or_null<S>(ln_hh_w);
    lnb = ptr_or_null<S>(ln_hh_b);
    lcw = ptr_or_null<S>(ln_c_w);
    lcb = ptr_or_null<S>(ln_c_b);
    rec_p = ptr_or_null<S>(rec);
    kc_p = ptr_or_null<S>(keep_c);  // keep masks arrive expanded to full width (H, P)
    kh_p = ptr_or_null<S>(keep_h);
    h_p = h_all.data_ptr<S>();
    c_p = c_all.data_ptr<S>();
    hh_p = hh.data_ptr<S>();
  }

  // hh (B, G) = (h_{t-1} * rec) W_hh^T: the recurrent GEMM
  void recurrent_gemm(int64_t t) {
    at::Tensor h_prev = h_all[t];
    if (rec_on) {
      at::mul_out(hr, h_prev, rec_t);
      rec_gemm(hh, hr);
    } else {
      rec_gemm(hh, h_prev);
    }
  }

  // One batch row of step t: LN_hh, gates and c, then m = o * tanh(LN_c(c)) (h itself without
  // a projection). The pre-activations are written in place over hh: without layer norm hh +
  // xg; with it, after one statistics pass over hh, xg + LN_hh(hh) (gates.h's ln_gate_input).
  // Then the gate pass, and with layer norm LN_c's sums and the tanh(LN_c(c)) pass.
  void gate_row(int64_t t, int64_t b) {
    const int64_t ts = save ? t : 0;
    const S* xr = xg_p + (t * B + b) * G;
    S* a = hh_p + b * G;
    const S* cp = c_p + (t * B + b) * H;
    S* ar = act.data_ptr<S>() + (ts * B + b) * G;
    S* cn = (blended ? c_new.data_ptr<S>() + ts * B * H : c_p + (t + 1) * B * H) + b * H;
    S* tcr = tc.data_ptr<S>() + (ts * B + b) * H;
    S* mr = proj ? m.data_ptr<S>() + b * H : h_p + ((t + 1) * B + b) * P;
    const S* o = ar + G - H;
    if (ln) {
      S hshift, hoff, rstd;
      lstmkit::row_stats_1pass(a, G, hshift, hoff, rstd);
      hh_rstd.data_ptr<S>()[ts * B + b] = rstd;
      lstmkit::ln_gate_input(a, xr, lnw, lnb, hshift, hoff, rstd,
                             hh_hat.data_ptr<S>() + (ts * B + b) * G, G);
    } else {
      for (int64_t k = 0; k < G; ++k) a[k] += xr[k];
    }
    if (coupled) {
      lstmkit::gates_forward_coupled(a, a + H, a + 2 * H, cp, wci, wco, ar, ar + H, ar + 2 * H, cn, H);
    } else {
      lstmkit::gates_forward(a, a + H, a + 2 * H, a + 3 * H, cp, wci, wcf, wco, ar, ar + H,
                             ar + 2 * H, ar + 3 * H, cn, H);
    }
    if (ln) {
      const S shift = cp[0];  // c_new stays near c_prev: a shift inside the row's range
      double s1, s2;
      lstmkit::row_sums_about(cn, H, shift, s1, s2);
      S coff, crstd;
      lstmkit::stats_from_sums(s1, s2, H, coff, crstd);
      S* chat = c_hat.data_ptr<S>() + (ts * B + b) * H;
      c_rstd.data_ptr<S>()[ts * B + b] = crstd;
      lstmkit::ln_c_output(cn, shift, coff, crstd, lcw, lcb, o, chat, tcr, mr, H);
      return;
    }
    for (int64_t j = 0; j < H; ++j) {
      S tv = lstmkit::tanh_(cn[j]);
      tcr[j] = tv;
      mr[j] = o[j] * tv;
    }
  }

  // h (B, P) = m W_hr^T (into the workspace when a keep blend follows)
  void project(int64_t t) { proj_gemm(kh_on ? hproj : h_all[t + 1], m); }

  // state = keep * prev + (1 - keep) * new (zoneout, padding)
  void keep_blend(int64_t t) {
    S* hn = h_p + (t + 1) * B * P;
    const S* hp = h_p + t * B * P;
    const S* hsrc = proj ? hproj.data_ptr<S>() : hn;
    const S* cn_all = c_new.numel() ? c_new.data_ptr<S>() + (save ? t : 0) * B * H : nullptr;
    const S* cp_all = c_p + t * B * H;
    S* cdst = c_p + (t + 1) * B * H;
    for (int64_t b = 0; b < B; ++b) {
      if (blended) {
        const S* k = kc_p + (t * B + b) * H;
        const S* cp = cp_all + b * H;
        const S* cn = cn_all + b * H;
        S* cd = cdst + b * H;
        for (int64_t j = 0; j < H; ++j) cd[j] = cn[j] + k[j] * (cp[j] - cn[j]);
      }
      if (kh_on) {
        const S* k = kh_p + (t * B + b) * P;
        for (int64_t j = 0; j < P; ++j) {
          S nv = hsrc[b * P + j];
          hn[b * P + j] = nv + k[j] * (hp[b * P + j] - nv);
        }
      }
    }
  }

  std::vector<at::Tensor> run() {
    for (int64_t t = 0; t < T; ++t) {
      recurrent_gemm(t);
      at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) gate_row(t, b);
      });
      if (proj) project(t);
      if (blended || kh_on) keep_blend(t);
    }
    return {h_all, c_all, act, tc, c_new, hh_hat, hh_rstd, c_hat, c_rstd};
  }
};

template <typename S>
struct LstmBackward {
  const int64_t T, B, G, H, P;
  const bool coupled, proj, ln, lnx, blended, kh_on;
  const at::Tensor &c_hat, &c_rstd, &hh_hat, &hh_rstd;
  // outputs; with layer norm, sums (chunks, 3G + 2H): per chunk of batch rows, the parameter
  // gradients d ln_hh_w (G), d shift (G: ln_hh_b, ln_ih_b, b_ih, b_hh), d ln_ih_w (G),
  // d ln_c_w (H), d ln_c_b (H), accumulated in double over the call
  at::Tensor dh, dc, da_all, dhh_all, dh_new_all, dxp_all, sums;
  // per-step workspace
  at::Tensor dm, dh_new, dh_prev, dc_prev, dcn_row;
  lstmkit::StepGemm rec_gemm, proj_gemm;
  std::vector<S> zeros;  // stands in for absent peepholes / keep masks
  const S *dy_p, *c_p, *act_p, *tc_p, *wci, *wcf, *wco, *lnw, *lcw, *rec_p, *kc_p, *kh_p;
  const S *xp_p, *xmean_p, *xrstd_p, *lxw;  // LN_ih: its input, statistics and gain
  S *dh_p, *dc_p, *dhn_p, *dhp_p, *dcp_p, *dcnr_p;

  LstmBackward(const at::Tensor& dy, const at::Tensor& dh_n, const at::Tensor& dc_n,
               const at::Tensor& h_all, const at::Tensor& c_all, const at::Tensor& act,
               const at::Tensor& tc, const at::Tensor& hh_hat_, const at::Tensor& hh_rstd_,
               const at::Tensor& c_hat_, const at::Tensor& c_rstd_, const at::Tensor& w_hh,
               const at::Tensor& w_hr, const at::Tensor& w_ci, const at::Tensor& w_cf,
               const at::Tensor& w_co, const at::Tensor& ln_hh_w, const at::Tensor& ln_c_w,
               const at::Tensor& rec, const at::Tensor& keep_c, const at::Tensor& keep_h,
               const at::Tensor& xp, const at::Tensor& x_mean, const at::Tensor& x_rstd,
               const at::Tensor& ln_ih_w, bool coupled_)
      : T(act.size(0)), B(act.size(1)), G(act.size(2)), H(c_all.size(2)), P(h_all.size(2)),
        coupled(coupled_), proj(on(w_hr)), ln(on(ln_hh_w)), lnx(on(ln_ih_w)), blended(on(keep_c)),
        kh_on(on(keep_h)),
        c_hat(c_hat_), c_rstd(c_rstd_), hh_hat(hh_hat_), hh_rstd(hh_rstd_) {
    auto opts = act.options();
    dh = on(dh_n) ? dh_n.clone() : at::zeros({B, P}, opts);
    dc = on(dc_n) ? dc_n.clone() : at::zeros({B, H}, opts);
    da_all = at::empty({T, B, G}, opts);
    dhh_all = ln ? at::empty({T, B, G}, opts) : da_all;
    dh_new_all = proj ? at::empty({T, B, P}, opts) : at::empty({0}, opts);
    // d xp (LN_ih's input gradient) is written over da, unless the peepholes' gradients (taken in
    // Python from da) need it kept
    dxp_all = !lnx ? at::empty({0}, opts) : on(w_ci) ? at::empty({T, B, G}, opts) : da_all;
    const int64_t chunks = (B + grain(B, G) - 1) / grain(B, G);
    sums = ln ? at::zeros({chunks, 3 * G + 2 * H}, opts.dtype(at::kDouble)) : at::empty({0}, opts);
    dh_new = at::empty({B, P}, opts);
    dh_prev = at::empty({B, P}, opts);
    dc_prev = at::empty({B, H}, opts);
    dcn_row = at::empty({B, H}, opts);
    if (proj) {
      dm = at::empty({B, H}, opts);
      proj_gemm = lstmkit::StepGemm(w_hr.t(), B, T, opts);  // d m (B, H) = d h W_hr
    }
    rec_gemm = lstmkit::StepGemm(w_hh.t(), B, T, opts);  // d h_prev (B, P) = d hh W_hh
    zeros.assign(H > P ? H : P, S(0));
    dy_p = ptr_or_null<S>(dy);
    c_p = c_all.data_ptr<S>();
    act_p = act.data_ptr<S>();
    tc_p = tc.data_ptr<S>();
    wci = on(w_ci) ? w_ci.data_ptr<S>() : zeros.data();
    wcf = on(w_cf) ? w_cf.data_ptr<S>() : zeros.data();
    wco = on(w_co) ? w_co.data_ptr<S>() : zeros.data();
    lnw = ptr_or_null<S>(ln_hh_w);
    lcw = ptr_or_null<S>(ln_c_w);
    xp_p = ptr_or_null<S>(xp);
    xmean_p = ptr_or_null<S>(x_mean);
    xrstd_p = ptr_or_null<S>(x_rstd);
    lxw = ptr_or_null<S>(ln_ih_w);
    rec_p = ptr_or_null<S>(rec);
    kc_p = ptr_or_null<S>(keep_c);
    kh_p = ptr_or_null<S>(keep_h);
    dh_p = dh.data_ptr<S>();
    dc_p = dc.data_ptr<S>();
    dhn_p = dh_new.data_ptr<S>();
    dhp_p = dh_prev.data_ptr<S>();
    dcp_p = dc_prev.data_ptr<S>();
    dcnr_p = dcn_row.data_ptr<S>();
  }

  // dh += dy[t] (already masked by Python); dh_new = dh * (1 - keep_h)
  void add_output_grad(int64_t t) {
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < P; ++j) {
        S v = dh_p[b * P + j] + (dy_p ? dy_p[(t * B + b) * P + j] : S(0));
        dh_p[b * P + j] = v;
        S kk = kh_on ? kh_p[(t * B + b) * P + j] : S(0);
        dhn_p[b * P + j] = v * (S(1) - kk);
      }
    }
  }

  // d m (B, H) = d h_new W_hr: backprop through the projection
  void project_back(int64_t t) {
    dh_new_all[t].copy_(dh_new);
    proj_gemm(dm, dh_new);
  }

  // One batch row of step t: through h = o * tanh(LN_c(c)), the gates, LN_hh and LN_ih; with
  // layer norm, acc is the row's chunk of sums (its parameter gradients).
  void gate_row(int64_t t, int64_t b, double* acc) {
    const S* dm_p = proj ? dm.data_ptr<S>() : dhn_p;
    S* dar = da_all.data_ptr<S>() + (t * B + b) * G;
    S* dhh = ln ? dhh_all.data_ptr<S>() + (t * B + b) * G : dar;
    S* dcn = dcnr_p + b * H;
    const S* ar = act_p + (t * B + b) * G;
    const S* tcr = tc_p + (t * B + b) * H;
    const S* cp = c_p + (t * B + b) * H;
    const S* dmr = dm_p + b * H;
    const S* o = ar + G - H;
    S* dcpr = dcp_p + b * H;
    const S* dcr = dc_p + b * H;
    const S* kc = blended ? kc_p + (t * B + b) * H : zeros.data();
    if (ln) {  // LN statistics fused: one pass for dcn and LN_c's sums, one for the gates and
      //          LN_hh's sums, one writing d hh, then LN_ih's backward (two passes)
      const S* chat = c_hat.data_ptr<S>() + (t * B + b) * H;
      const S* hhat = hh_hat.data_ptr<S>() + (t * B + b) * G;
      S c1, c2;
      lstmkit::ln_c_backward_head(dmr, o, tcr, lcw, chat, dcn, H, c1, c2, acc + 3 * G, acc + 3 * G + H);
      const S crstd = c_rstd.data_ptr<S>()[t * B + b];
      S s1, s2;
      if (coupled) {
        lstmkit::gates_backward_coupled_ln(ar, ar + H, ar + 2 * H, tcr, cp, dmr, dcn, chat, lcw, crstd,
                                           c1 / S(H), c2 / S(H), dcr, kc, wci, wco, hhat, lnw, dar,
                                           dar + H, dar + 2 * H, dcpr, H, s1, s2);
      } else {
        lstmkit::gates_backward_ln(ar, ar + H, ar + 2 * H, ar + 3 * H, tcr, cp, dmr, dcn, chat, lcw,
                                   crstd, c1 / S(H), c2 / S(H), dcr, kc, wci, wcf, wco, hhat, lnw,
                                   dar, dar + H, dar + 2 * H, dar + 3 * H, dcpr, H, s1, s2);
      }
      lstmkit::ln_row_backward_acc(dar, hhat, hh_rstd.data_ptr<S>()[t * B + b], lnw, G, s1, s2, dhh,
                                   acc, acc + G);
      if (lnx) {
        S* dx = dxp_all.data_ptr<S>() + (t * B + b) * G;
        if (dx != dar) std::memcpy(dx, dar, sizeof(S) * G);
        const int64_t r = t * B + b;
        lstmkit::ln_ih_row_backward(dx, xp_p + r * G, xmean_p[r], xrstd_p[r], lxw, G, acc + 2 * G);
      }
      return;
    }
    // dcn = dm * o * (1 - tc^2): backprop through tanh
    for (int64_t j = 0; j < H; ++j) dcn[j] = dmr[j] * o[j] * (S(1) - tcr[j] * tcr[j]);
    if (coupled) {
      lstmkit::gates_backward_coupled(ar, ar + H, ar + 2 * H, tcr, cp, dmr, dcn, dcr, kc, wci, wco,
                                      dar, dar + H, dar + 2 * H, dcpr, H);
    } else {
      lstmkit::gates_backward(ar, ar + H, ar + 2 * H, ar + 3 * H, tcr, cp, dmr, dcn, dcr, kc, wci,
                              wcf, wco, dar, dar + H, dar + 2 * H, dar + 3 * H, dcpr, H);
    }
  }

  // d h_prev = (d hh W_hh) * rec + dh * keep_h; d c_prev (keep already folded in by gate_row)
  void recurrent_back(int64_t t) {
    rec_gemm(dh_prev, ln ? dhh_all[t] : da_all[t]);  // (B, P)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < P; ++j) {
        S v = dhp_p[b * P + j];
        if (rec_p) v *= rec_p[b * P + j];
        S kk = kh_on ? kh_p[(t * B + b) * P + j] : S(0);
        dh_p[b * P + j] = v + dh_p[b * P + j] * kk;
      }
    }
    std::memcpy(dc_p, dcp_p, sizeof(S) * B * H);
  }

  std::vector<at::Tensor> run() {
    for (int64_t t = T - 1; t >= 0; --t) {
      add_output_grad(t);
      if (proj) project_back(t);
      // chunks of `grain` rows, each with its own slice of sums: the parameter gradients are the
      // same whatever the thread count
      const int64_t g = grain(B, G), chunks = (B + g - 1) / g, W = 3 * G + 2 * H;
      double* acc = ln ? sums.data_ptr<double>() : nullptr;
      at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          for (int64_t b = c * g; b < std::min(B, (c + 1) * g); ++b) gate_row(t, b, ln ? acc + c * W : nullptr);
        }
      });
      recurrent_back(t);
    }
    std::vector<at::Tensor> out = {da_all, dhh_all, dh_new_all, dxp_all, dh, dc};
    if (ln) {  // the parameter gradients in the state's dtype: ln_hh_w, shift, ln_ih_w, ln_c_w, ln_c_b
      at::Tensor total = sums.sum(0).to(da_all.scalar_type());
      for (auto [off, n] : {std::pair<int64_t, int64_t>{0, G}, {G, G}, {2 * G, G}, {3 * G, H}, {3 * G + H, H}})
        out.push_back(total.narrow(0, off, n).clone());
    }
    return out;
  }
};

}  // namespace

std::vector<at::Tensor> lstm_forward(
    at::Tensor xg, at::Tensor h0, at::Tensor c0, at::Tensor w_hh, at::Tensor w_hr,
    at::Tensor w_ci, at::Tensor w_cf, at::Tensor w_co, at::Tensor ln_hh_w, at::Tensor ln_hh_b,
    at::Tensor ln_c_w, at::Tensor ln_c_b, at::Tensor rec, at::Tensor keep_c, at::Tensor keep_h,
    bool coupled, bool save) {
  lstmkit::check_floating(xg, "xg");
  const int64_t T = xg.size(0), B = xg.size(1), G = xg.size(2);
  const int64_t H = c0.dim() == 2 ? c0.size(1) : -1, P = h0.dim() == 2 ? h0.size(1) : -1;
  TORCH_CHECK(G == (coupled ? 3 : 4) * H, "xg: expected ", (coupled ? 3 : 4), "H = ",
              (coupled ? 3 : 4) * H, " gate rows (coupled=", coupled, "), got ", G);
  lstmkit::check_shape(xg, "xg", {T, B, G});
  lstmkit::check(h0, "h0", xg, {B, P}, false);
  lstmkit::check(c0, "c0", xg, {B, H}, false);
  lstmkit::check_weight(w_hh, "w_hh", xg, {G, P});
  if (lstmkit::on(w_hr)) lstmkit::check_weight(w_hr, "w_hr", xg, {P, H});
  else TORCH_CHECK(P == H, "w_hr: expected a projection (P, H) when P=", P, " != H=", H);
  lstmkit::check_opt(w_ci, "w_ci", xg, {H});
  lstmkit::check_opt(w_cf, "w_cf", xg, {H});
  lstmkit::check_opt(w_co, "w_co", xg, {H});
  lstmkit::check_opt(ln_hh_w, "ln_hh_w", xg, {G});
  lstmkit::check_opt(ln_hh_b, "ln_hh_b", xg, {G});
  lstmkit::check_opt(ln_c_w, "ln_c_w", xg, {H});
  lstmkit::check_opt(ln_c_b, "ln_c_b", xg, {H});
  TORCH_CHECK(lstmkit::on(ln_hh_w) == lstmkit::on(ln_c_w) && lstmkit::on(ln_hh_w) == lstmkit::on(ln_hh_b)
              && lstmkit::on(ln_c_w) == lstmkit::on(ln_c_b), "ln_*: expected all layer-norm tensors or none");
  lstmkit::check_opt(rec, "rec", xg, {B, P});
  lstmkit::check_opt(keep_c, "keep_c", xg, {T, B, H});
  lstmkit::check_opt(keep_h, "keep_h", xg, {T, B, P});
  return LSTMKIT_DISPATCH(xg, "lstm_forward", LstmForward<scalar_t>(
      xg, h0, c0, w_hh, w_hr, w_ci, w_cf, w_co, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, rec, keep_c,
      keep_h, coupled, save).run());
}

std::vector<at::Tensor> lstm_backward(
    at::Tensor dy, at::Tensor dh_n, at::Tensor dc_n, at::Tensor h_all, at::Tensor c_all,
    at::Tensor act, at::Tensor tc, at::Tensor c_new, at::Tensor hh_hat, at::Tensor hh_rstd,
    at::Tensor c_hat, at::Tensor c_rstd, at::Tensor w_hh, at::Tensor w_hr, at::Tensor w_ci,
    at::Tensor w_cf, at::Tensor w_co, at::Tensor ln_hh_w, at::Tensor ln_c_w, at::Tensor rec,
    at::Tensor keep_c, at::Tensor keep_h, at::Tensor xp, at::Tensor x_mean, at::Tensor x_rstd,
    at::Tensor ln_ih_w, bool coupled) {
  lstmkit::check_floating(act, "act");
  const int64_t T = act.size(0), B = act.size(1), G = act.size(2);
  const int64_t H = c_all.dim() == 3 ? c_all.size(2) : -1, P = h_all.dim() == 3 ? h_all.size(2) : -1;
  TORCH_CHECK(G == (coupled ? 3 : 4) * H, "act: expected ", (coupled ? 3 : 4) * H,
              " gate rows (coupled=", coupled, "), got ", G);
  lstmkit::check_shape(act, "act", {T, B, G});
  lstmkit::check(h_all, "h_all", act, {T + 1, B, P});
  lstmkit::check(c_all, "c_all", act, {T + 1, B, H});
  lstmkit::check(tc, "tc", act, {T, B, H});
  lstmkit::check_opt(c_new, "c_new", act, {T, B, H});
  TORCH_CHECK(lstmkit::on(c_new) == lstmkit::on(keep_c), "c_new: expected it exactly when keep_c is given");
  lstmkit::check_opt(dy, "dy", act, {T, B, P});
  lstmkit::check_opt(dh_n, "dh_n", act, {B, P});
  lstmkit::check_opt(dc_n, "dc_n", act, {B, H});
  const bool ln = lstmkit::on(ln_hh_w);
  if (ln) {
    lstmkit::check(hh_hat, "hh_hat", act, {T, B, G});
    lstmkit::check(hh_rstd, "hh_rstd", act, {T, B, 1});
    lstmkit::check(c_hat, "c_hat", act, {T, B, H});
    lstmkit::check(c_rstd, "c_rstd", act, {T, B, 1});
    lstmkit::check(ln_hh_w, "ln_hh_w", act, {G});
    lstmkit::check(ln_c_w, "ln_c_w", act, {H});
  }
  TORCH_CHECK(!lstmkit::on(ln_ih_w) || ln, "ln_ih_w: expected it only with the other layer-norm tensors");
  if (lstmkit::on(ln_ih_w)) {
    lstmkit::check(ln_ih_w, "ln_ih_w", act, {G});
    lstmkit::check(xp, "xp", act, {T, B, G});
    lstmkit::check(x_mean, "x_mean", act, {T, B, 1});
    lstmkit::check(x_rstd, "x_rstd", act, {T, B, 1});
  }
  lstmkit::check_weight(w_hh, "w_hh", act, {G, P});
  if (lstmkit::on(w_hr)) lstmkit::check_weight(w_hr, "w_hr", act, {P, H});
  else TORCH_CHECK(P == H, "w_hr: expected a projection (P, H) when P=", P, " != H=", H);
  lstmkit::check_opt(w_ci, "w_ci", act, {H});
  lstmkit::check_opt(w_cf, "w_cf", act, {H});
  lstmkit::check_opt(w_co, "w_co", act, {H});
  lstmkit::check_opt(rec, "rec", act, {B, P});
  lstmkit::check_opt(keep_c, "keep_c", act, {T, B, H});
  lstmkit::check_opt(keep_h, "keep_h", act, {T, B, P});
  return LSTMKIT_DISPATCH(act, "lstm_backward", LstmBackward<scalar_t>(
      dy, dh_n, dc_n, h_all, c_all, act, tc, hh_hat, hh_rstd, c_hat, c_rstd, w_hh, w_hr, w_ci,
      w_cf, w_co, ln_hh_w, ln_c_w, rec, keep_c, keep_h, xp, x_mean, x_rstd, ln_ih_w, coupled).run());
}

// Streaming step without autograd: x (B, I), h (B, P), c (B, H) -> {h (B, P), c (B, H)}.
std::vector<at::Tensor> lstm_step(
    at::Tensor x, at::Tensor h, at::Tensor c, at::Tensor w_ih, at::Tensor w_hh, at::Tensor b_ih,
    at::Tensor b_hh, at::Tensor w_hr, at::Tensor w_ci, at::Tensor w_cf, at::Tensor w_co,
    at::Tensor ln_ih_w, at::Tensor ln_ih_b, at::Tensor ln_hh_w, at::Tensor ln_hh_b,
    at::Tensor ln_c_w, at::Tensor ln_c_b, bool coupled) {
  TORCH_CHECK(x.dim() == 2 && x.device().is_cpu(), "x: expected a 2-D (B, I) CPU tensor, got ",
              x.dim(), "-D on ", x.device());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "x: expected float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(w_ih.dim() == 2 && w_ih.size(1) == x.size(1) && w_ih.scalar_type() == x.scalar_type(),
              "w_ih: expected (G, I=", x.size(1), ") of dtype ", x.scalar_type(), ", got ", w_ih.sizes(),
              " of ", w_ih.scalar_type());
  TORCH_CHECK(!lstmkit::on(b_ih) || (b_ih.sizes() == at::IntArrayRef({w_ih.size(0)})
              && lstmkit::on(b_hh) && b_hh.sizes() == b_ih.sizes()),
              "b_ih, b_hh: expected both of shape (G,) = (", w_ih.size(0), ",) or neither");
  TORCH_CHECK(!lstmkit::on(ln_ih_w) || (ln_ih_w.sizes() == at::IntArrayRef({w_ih.size(0)})
              && lstmkit::on(ln_ih_b)), "ln_ih_w, ln_ih_b: expected both of shape (G,) or neither");
  at::NoGradGuard no_grad;
  at::Tensor xg;
  const bool bias = b_ih.defined() && b_ih.numel() > 0;
  if (ln_ih_w.defined() && ln_ih_w.numel() > 0) {
    xg = at::layer_norm(at::mm(x, w_ih.t()), {w_ih.size(0)}, ln_ih_w, ln_ih_b, lstmkit::LN_EPS);
    if (bias) xg.add_(b_ih).add_(b_hh);
  } else if (bias) {
    xg = at::addmm(b_ih + b_hh, x, w_ih.t());
  } else {
    xg = at::mm(x, w_ih.t());
  }
  at::Tensor none = at::empty({0}, x.options());
  auto out = lstm_forward(xg.unsqueeze(0), h.contiguous(), c.contiguous(), w_hh, w_hr, w_ci, w_cf,
                          w_co, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, none, none, none, coupled, false);
  return {out[0][1], out[1][1]};
}
