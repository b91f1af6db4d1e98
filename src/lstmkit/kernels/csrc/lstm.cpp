// Fused LSTM time loop: per step one GEMM through torch (at::mm_out) and one fused elementwise pass.
//
// Symbols: T time, B batch, H hidden (cell), P output width (proj or H), G gate rows (4H; 3H coupled).
// The kernel sees raw pointers and shapes; Python owns layout, masks and the input projection
// (x W_ih^T for all steps, LN_ih, biases) and takes the weight gradients with GEMMs afterwards.
// Optional tensors are passed as undefined/empty tensors. Every tensor is contiguous.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"
#include "fastmath.h"
#include "kernels.h"

namespace {

constexpr double LN_EPS = 1e-5;

using lstmkit::exp_;
using lstmkit::sigmoid_;
using lstmkit::tanh_;

// The gate passes, one row each. Every pointer is __restrict__ so gcc vectorises the loops
// (with -fno-trapping-math for the clamped exp). Absent peepholes point at zeros.
#define R __restrict__
template <typename S>
void gates_forward(const S* R ai, const S* R af, const S* R ag, const S* R ao, const S* R cp,
                   const S* R wci, const S* R wcf, const S* R wco, S* R i_out, S* R f_out,
                   S* R g_out, S* R o_out, S* R c_out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S c0_ = cp[j];
    S i = sigmoid_(ai[j] + wci[j] * c0_);
    S f = sigmoid_(af[j] + wcf[j] * c0_);
    S g = tanh_(ag[j]);
    S c = f * c0_ + i * g;  // c = f * c_prev + i * g
    S o = sigmoid_(ao[j] + wco[j] * c);
    i_out[j] = i; f_out[j] = f; g_out[j] = g; o_out[j] = o;
    c_out[j] = c;
  }
}

template <typename S>  // CIFG: f = 1 - i, rows (i, g, o)
void gates_forward_coupled(const S* R ai, const S* R ag, const S* R ao, const S* R cp,
                           const S* R wci, const S* R wco, S* R i_out, S* R g_out, S* R o_out,
                           S* R c_out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S c0_ = cp[j];
    S i = sigmoid_(ai[j] + wci[j] * c0_);
    S g = tanh_(ag[j]);
    S c = (S(1) - i) * c0_ + i * g;
    S o = sigmoid_(ao[j] + wco[j] * c);
    i_out[j] = i; g_out[j] = g; o_out[j] = o;
    c_out[j] = c;
  }
}

// dcr: carried d c (before the keep blend); dcc: d c_new from h through tanh (and LN_c);
// kc: keep_c row. Writes d pre-activations and d c_prev (keep part included).
template <typename S>
void gates_backward(const S* R i_, const S* R f_, const S* R g_, const S* R o_, const S* R tcr,
                    const S* R cp, const S* R dmr, const S* R dcc, const S* R dcr, const S* R kc,
                    const S* R wci, const S* R wcf, const S* R wco, S* R dai_out, S* R daf_out,
                    S* R dag_out, S* R dao_out, S* R dcp_out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S kk = kc[j];
    S i = i_[j], f = f_[j], g = g_[j], o = o_[j];
    S dao = dmr[j] * tcr[j] * o * (S(1) - o);  // h = o * tanh(c), through sigmoid
    S dcv = dcr[j] * (S(1) - kk) + dcc[j] + dao * wco[j];
    S dai = dcv * g * i * (S(1) - i);
    S daf = dcv * cp[j] * f * (S(1) - f);
    dai_out[j] = dai;
    daf_out[j] = daf;
    dag_out[j] = dcv * i * (S(1) - g * g);  // through tanh
    dao_out[j] = dao;
    dcp_out[j] = dcv * f + dai * wci[j] + daf * wcf[j] + dcr[j] * kk;
  }
}

template <typename S>
void gates_backward_coupled(const S* R i_, const S* R g_, const S* R o_, const S* R tcr,
                            const S* R cp, const S* R dmr, const S* R dcc, const S* R dcr,
                            const S* R kc, const S* R wci, const S* R wco, S* R dai_out,
                            S* R dag_out, S* R dao_out, S* R dcp_out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S kk = kc[j];
    S i = i_[j], g = g_[j], o = o_[j];
    S dao = dmr[j] * tcr[j] * o * (S(1) - o);
    S dcv = dcr[j] * (S(1) - kk) + dcc[j] + dao * wco[j];
    S dai = dcv * (g - cp[j]) * i * (S(1) - i);  // f = 1 - i
    dai_out[j] = dai;
    dag_out[j] = dcv * i * (S(1) - g * g);
    dao_out[j] = dao;
    dcp_out[j] = dcv * (S(1) - i) + dai * wci[j] + dcr[j] * kk;
  }
}
#undef R

template <typename S> const S* ptr_or_null(const at::Tensor& t) {
  return (t.defined() && t.numel() > 0) ? t.data_ptr<S>() : nullptr;
}

// Layer-norm statistics of one row of n values: mean and 1/sqrt(var + eps).
template <typename S> inline void row_stats(const S* v, int64_t n, S& mean, S& rstd) {
  S s = 0, ss = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) s += v[k];
  S m = s / S(n);
#pragma omp simd reduction(+ : ss)
  for (int64_t k = 0; k < n; ++k) { S d = v[k] - m; ss += d * d; }
  mean = m;
  rstd = S(1.0 / std::sqrt(double(ss) / double(n) + LN_EPS));
}

using lstmkit::grain;

template <typename S>
std::vector<at::Tensor> forward_impl(
    const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
    const at::Tensor& w_hr, const at::Tensor& w_ci, const at::Tensor& w_cf, const at::Tensor& w_co,
    const at::Tensor& ln_hh_w, const at::Tensor& ln_hh_b, const at::Tensor& ln_c_w,
    const at::Tensor& ln_c_b, const at::Tensor& rec, const at::Tensor& keep_c,
    const at::Tensor& keep_h, bool coupled, bool save) {
  const int64_t T = xg.size(0), B = xg.size(1), G = xg.size(2);
  const int64_t H = c0.size(1), P = h0.size(1);
  const bool proj = w_hr.defined() && w_hr.numel() > 0;
  const bool ln = ln_hh_w.defined() && ln_hh_w.numel() > 0;
  const bool blended = keep_c.defined() && keep_c.numel() > 0;
  const bool kh_on = keep_h.defined() && keep_h.numel() > 0;
  const bool rec_on = rec.defined() && rec.numel() > 0;
  auto opts = xg.options();
  // Saved for backward (or, with save=false, only what the loop needs).
  at::Tensor h_all = at::empty({T + 1, B, P}, opts);
  at::Tensor c_all = at::empty({T + 1, B, H}, opts);
  h_all[0].copy_(h0);
  c_all[0].copy_(c0);
  at::Tensor act = at::empty({save ? T : 1, B, G}, opts);
  at::Tensor tc = at::empty({save ? T : 1, B, H}, opts);
  at::Tensor c_new = blended ? at::empty({save ? T : 1, B, H}, opts) : at::empty({0}, opts);
  at::Tensor hh_hat = ln ? at::empty({save ? T : 1, B, G}, opts) : at::empty({0}, opts);
  at::Tensor hh_rstd = ln ? at::empty({save ? T : 1, B, 1}, opts) : at::empty({0}, opts);
  at::Tensor c_hat = ln ? at::empty({save ? T : 1, B, H}, opts) : at::empty({0}, opts);
  at::Tensor c_rstd = ln ? at::empty({save ? T : 1, B, 1}, opts) : at::empty({0}, opts);
  at::Tensor hh = at::empty({B, G}, opts);
  at::Tensor hr = rec_on ? at::empty({B, P}, opts) : at::Tensor();
  at::Tensor m = proj ? at::empty({B, H}, opts) : at::Tensor();
  at::Tensor hproj = proj ? at::empty({B, P}, opts) : at::Tensor();
  // (P, G) contiguous: a plain NN GEMM is faster than the transposed view; the copy pays off
  // over a sequence, not for one streaming step
  at::Tensor w_hh_t = T > 2 ? w_hh.t().contiguous() : w_hh.t();
  at::Tensor w_hr_t = proj ? (T > 2 ? w_hr.t().contiguous() : w_hr.t()) : at::Tensor();

  const S* xg_p = xg.data_ptr<S>();
  S* h_p = h_all.data_ptr<S>();
  S* c_p = c_all.data_ptr<S>();
  std::vector<S> zeros(H > P ? H : P, S(0));  // stands in for absent peepholes: no branches in loops
  const bool peep = w_ci.defined() && w_ci.numel() > 0;
  const S* wci = peep ? w_ci.data_ptr<S>() : zeros.data();
  const S* wcf = (w_cf.defined() && w_cf.numel() > 0) ? w_cf.data_ptr<S>() : zeros.data();
  const S* wco = peep ? w_co.data_ptr<S>() : zeros.data();
  const S* lnw = ptr_or_null<S>(ln_hh_w);
  const S* lnb = ptr_or_null<S>(ln_hh_b);
  const S* lcw = ptr_or_null<S>(ln_c_w);
  const S* lcb = ptr_or_null<S>(ln_c_b);
  const S* rec_p = ptr_or_null<S>(rec);
  const S* kc_p = ptr_or_null<S>(keep_c);
  const S* kh_p = ptr_or_null<S>(keep_h);
  const int64_t kc_w = H;  // keep masks arrive expanded to full width
  const int64_t kh_w = P;
  S* hh_p = hh.data_ptr<S>();

  for (int64_t t = 0; t < T; ++t) {
    const int64_t ts = save ? t : 0;
    at::Tensor h_prev = h_all[t];
    if (rec_on) {
      at::mul_out(hr, h_prev, rec);
      at::mm_out(hh, hr, w_hh_t);  // (B, G)
    } else {
      at::mm_out(hh, h_prev, w_hh_t);
    }
    S* act_p = act.data_ptr<S>() + ts * B * G;
    S* tc_p = tc.data_ptr<S>() + ts * B * H;
    S* cn_p = blended ? c_new.data_ptr<S>() + ts * B * H : c_p + (t + 1) * B * H;
    S* hhh_p = ln ? hh_hat.data_ptr<S>() + ts * B * G : nullptr;
    S* hhr_p = ln ? hh_rstd.data_ptr<S>() + ts * B : nullptr;
    S* ch_p = ln ? c_hat.data_ptr<S>() + ts * B * H : nullptr;
    S* cr_p = ln ? c_rstd.data_ptr<S>() + ts * B : nullptr;
    S* m_p = proj ? m.data_ptr<S>() : h_p + (t + 1) * B * P;
    const S* cprev_all = c_p + t * B * H;
    at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const S* xr = xg_p + (t * B + b) * G;
        S* hr_ = hh_p + b * G;  // pre-activation row, written in place
        const S* cp = cprev_all + b * H;
        S* ar = act_p + b * G;
        S* cn = cn_p + b * H;
        S* tcr = tc_p + b * H;
        S* mr = m_p + b * (proj ? H : P);
        if (ln) {
          S mean, rstd;
          row_stats(hr_, G, mean, rstd);
          S* hhat = hhh_p + b * G;
          hhr_p[b] = rstd;
          for (int64_t k = 0; k < G; ++k) {
            S v = (hr_[k] - mean) * rstd;
            hhat[k] = v;
            hr_[k] = xr[k] + v * lnw[k] + lnb[k];
          }
        } else {
          for (int64_t k = 0; k < G; ++k) hr_[k] = hr_[k] + xr[k];
        }
        if (coupled) {
          gates_forward_coupled(hr_, hr_ + H, hr_ + 2 * H, cp, wci, wco, ar, ar + H, ar + 2 * H, cn, H);
        } else {
          gates_forward(hr_, hr_ + H, hr_ + 2 * H, hr_ + 3 * H, cp, wci, wcf, wco, ar, ar + H,
                        ar + 2 * H, ar + 3 * H, cn, H);
        }
        const S* o_r = ar + G - H;
        if (ln) {
          S mean, rstd;
          row_stats(cn, H, mean, rstd);
          S* chat = ch_p + b * H;
          cr_p[b] = rstd;
          for (int64_t j = 0; j < H; ++j) {
            S v = (cn[j] - mean) * rstd;
            chat[j] = v;
            S tv = tanh_(v * lcw[j] + lcb[j]);
            tcr[j] = tv;
            mr[j] = o_r[j] * tv;
          }
        } else {
          for (int64_t j = 0; j < H; ++j) {
            S tv = tanh_(cn[j]);
            tcr[j] = tv;
            mr[j] = o_r[j] * tv;
          }
        }
      }
    });
    S* hn = h_p + (t + 1) * B * P;
    if (proj) {
      if (kh_on) {
        at::mm_out(hproj, m, w_hr_t);
      } else {
        at::Tensor dst = h_all[t + 1];
        at::mm_out(dst, m, w_hr_t);
      }
    }
    // keep blend: state = keep * prev + (1 - keep) * new (zoneout, padding)
    if (blended || kh_on) {
      const S* hp = h_p + t * B * P;
      const S* hsrc = proj ? hproj.data_ptr<S>() : hn;
      S* cdst = c_p + (t + 1) * B * H;
      for (int64_t b = 0; b < B; ++b) {
        if (blended) {
          const S* k = kc_p + (t * B + b) * kc_w;
          const S* cp = cprev_all + b * H;
          const S* cn = cn_p + b * H;
          S* cd = cdst + b * H;
          for (int64_t j = 0; j < H; ++j) {
            S kk = k[j];
            cd[j] = cn[j] + kk * (cp[j] - cn[j]);
          }
        }
        if (kh_on) {
          const S* k = kh_p + (t * B + b) * kh_w;
          for (int64_t j = 0; j < P; ++j) {
            S kk = k[j];
            S nv = hsrc[b * P + j];
            hn[b * P + j] = nv + kk * (hp[b * P + j] - nv);
          }
        }
      }
    }
  }
  return {h_all, c_all, act, tc, c_new, hh_hat, hh_rstd, c_hat, c_rstd};
}

// Backward of a row's layer norm: dx = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)), dxh = dy * w.
template <typename S>
inline void ln_row_backward(const S* dy, const S* xh, S rstd, const S* w, int64_t n, S* dx) {
  S s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t k = 0; k < n; ++k) { S d = dy[k] * w[k]; s1 += d; s2 += d * xh[k]; }
  S m1 = s1 / S(n), m2 = s2 / S(n);
  for (int64_t k = 0; k < n; ++k) dx[k] = rstd * (dy[k] * w[k] - m1 - xh[k] * m2);
}

template <typename S>
std::vector<at::Tensor> backward_impl(
    const at::Tensor& dy, const at::Tensor& dh_n, const at::Tensor& dc_n, const at::Tensor& h_all,
    const at::Tensor& c_all, const at::Tensor& act, const at::Tensor& tc, const at::Tensor& c_new,
    const at::Tensor& hh_hat, const at::Tensor& hh_rstd, const at::Tensor& c_hat,
    const at::Tensor& c_rstd, const at::Tensor& w_hh, const at::Tensor& w_hr,
    const at::Tensor& w_ci, const at::Tensor& w_cf, const at::Tensor& w_co,
    const at::Tensor& ln_hh_w, const at::Tensor& ln_c_w, const at::Tensor& rec,
    const at::Tensor& keep_c, const at::Tensor& keep_h, bool coupled) {
  const int64_t T = act.size(0), B = act.size(1), G = act.size(2);
  const int64_t H = c_all.size(2), P = h_all.size(2);
  const bool proj = w_hr.defined() && w_hr.numel() > 0;
  const bool ln = ln_hh_w.defined() && ln_hh_w.numel() > 0;
  const bool blended = keep_c.defined() && keep_c.numel() > 0;
  const bool kh_on = keep_h.defined() && keep_h.numel() > 0;
  const bool rec_on = rec.defined() && rec.numel() > 0;
  const bool dy_on = dy.defined() && dy.numel() > 0;
  auto opts = act.options();
  at::Tensor dh = (dh_n.defined() && dh_n.numel() > 0) ? dh_n.clone() : at::zeros({B, P}, opts);
  at::Tensor dc = (dc_n.defined() && dc_n.numel() > 0) ? dc_n.clone() : at::zeros({B, H}, opts);
  at::Tensor da_all = at::empty({T, B, G}, opts);
  at::Tensor dhh_all = ln ? at::empty({T, B, G}, opts) : da_all;
  at::Tensor dh_new_all = proj ? at::empty({T, B, P}, opts) : at::empty({0}, opts);
  at::Tensor dcn_all = ln ? at::empty({T, B, H}, opts) : at::empty({0}, opts);
  at::Tensor dm = proj ? at::empty({B, H}, opts) : at::Tensor();
  at::Tensor dh_new = at::empty({B, P}, opts);
  at::Tensor dh_prev = at::empty({B, P}, opts);
  at::Tensor dc_prev = at::empty({B, H}, opts);
  at::Tensor dcn_row = at::empty({B, H}, opts);

  const S* dy_p = dy_on ? dy.data_ptr<S>() : nullptr;
  const S* c_p = c_all.data_ptr<S>();
  const S* act_p = act.data_ptr<S>();
  const S* tc_p = tc.data_ptr<S>();
  std::vector<S> zeros(H > P ? H : P, S(0));  // stands in for absent peepholes / keep masks
  const S* wci = (w_ci.defined() && w_ci.numel() > 0) ? w_ci.data_ptr<S>() : zeros.data();
  const S* wcf = (w_cf.defined() && w_cf.numel() > 0) ? w_cf.data_ptr<S>() : zeros.data();
  const S* wco = (w_co.defined() && w_co.numel() > 0) ? w_co.data_ptr<S>() : zeros.data();
  const S* lnw = ptr_or_null<S>(ln_hh_w);
  const S* lcw = ptr_or_null<S>(ln_c_w);
  const S* rec_p = ptr_or_null<S>(rec);
  const S* kc_p = ptr_or_null<S>(keep_c);
  const S* kh_p = ptr_or_null<S>(keep_h);
  const int64_t kc_w = H;
  const int64_t kh_w = P;
  S* dh_p = dh.data_ptr<S>();
  S* dc_p = dc.data_ptr<S>();
  S* dhn_p = dh_new.data_ptr<S>();
  S* dhp_p = dh_prev.data_ptr<S>();
  S* dcp_p = dc_prev.data_ptr<S>();
  S* dcnr_p = dcn_row.data_ptr<S>();
  at::Tensor dtot = ln ? at::empty({B, H}, opts) : at::Tensor();
  S* dtot_p = ln ? dtot.data_ptr<S>() : nullptr;

  for (int64_t t = T - 1; t >= 0; --t) {
    // dh += dy[t] (already masked by Python); dh_new = dh * (1 - keep_h)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < P; ++j) {
        S v = dh_p[b * P + j] + (dy_p ? dy_p[(t * B + b) * P + j] : S(0));
        dh_p[b * P + j] = v;
        S kk = kh_on ? kh_p[(t * B + b) * kh_w + (j)] : S(0);
        dhn_p[b * P + j] = v * (S(1) - kk);
      }
    }
    if (proj) {
      dh_new_all[t].copy_(dh_new);
      at::mm_out(dm, dh_new, w_hr);  // (B, H) backprop through the projection
    }
    const S* dm_p = proj ? dm.data_ptr<S>() : dhn_p;
    S* da_p = da_all.data_ptr<S>() + t * B * G;
    S* dhh_p = ln ? dhh_all.data_ptr<S>() + t * B * G : da_p;
    S* dcn_p = ln ? dcn_all.data_ptr<S>() + t * B * H : dcnr_p;
    const S* cprev_all = c_p + t * B * H;
    at::parallel_for(0, B, grain(B, G), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const S* ar = act_p + (t * B + b) * G;
        const S* tcr = tc_p + (t * B + b) * H;
        const S* cp = cprev_all + b * H;
        const S* dmr = dm_p + b * H;
        const S* o = ar + G - H;
        S* dcn = dcn_p + b * H;
        S* dar = da_p + b * G;
        S* dcpr = dcp_p + b * H;
        const S* dcr = dc_p + b * H;
        const S* kc = blended ? kc_p + (t * B + b) * kc_w : zeros.data();
        // dcn = dm * o * (1 - tc^2): backprop through tanh
        for (int64_t j = 0; j < H; ++j) dcn[j] = dmr[j] * o[j] * (S(1) - tcr[j] * tcr[j]);
        const S* dcc = dcn;  // d c_new through tanh (and LN_c)
        if (ln) {
          S* dct = dtot_p + b * H;
          ln_row_backward(dcn, c_hat.data_ptr<S>() + (t * B + b) * H,
                          c_rstd.data_ptr<S>()[t * B + b], lcw, H, dct);
          dcc = dct;
        }
        if (coupled) {
          gates_backward_coupled(ar, ar + H, ar + 2 * H, tcr, cp, dmr, dcc, dcr, kc, wci, wco, dar,
                                 dar + H, dar + 2 * H, dcpr, H);
        } else {
          gates_backward(ar, ar + H, ar + 2 * H, ar + 3 * H, tcr, cp, dmr, dcc, dcr, kc, wci, wcf,
                         wco, dar, dar + H, dar + 2 * H, dar + 3 * H, dcpr, H);
        }
        if (ln) {
          ln_row_backward(dar, hh_hat.data_ptr<S>() + (t * B + b) * G,
                          hh_rstd.data_ptr<S>()[t * B + b], lnw, G, dhh_p + b * G);
        }
      }
    });
    at::Tensor dhh_t = ln ? dhh_all[t] : da_all[t];
    at::mm_out(dh_prev, dhh_t, w_hh);  // (B, P)
    // dh = dh_prev * rec + dh * keep_h ; dc = dc_prev (keep already folded in)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < P; ++j) {
        S v = dhp_p[b * P + j];
        if (rec_p) v *= rec_p[b * P + j];
        S kk = kh_on ? kh_p[(t * B + b) * kh_w + (j)] : S(0);
        dh_p[b * P + j] = v + dh_p[b * P + j] * kk;
      }
    }
    std::memcpy(dc_p, dcp_p, sizeof(S) * B * H);
  }
  return {da_all, dhh_all, dh_new_all, dcn_all, dh, dc};
}

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
  lstmkit::check(xg, "xg", xg, {T, B, G});
  lstmkit::check(h0, "h0", xg, {B, P}, false);
  lstmkit::check(c0, "c0", xg, {B, H}, false);
  lstmkit::check(w_hh, "w_hh", xg, {G, P}, false);
  if (lstmkit::on(w_hr)) lstmkit::check(w_hr, "w_hr", xg, {P, H}, false);
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
  return LSTMKIT_DISPATCH(xg, "lstm_forward", forward_impl<scalar_t>(xg, h0, c0, w_hh, w_hr, w_ci, w_cf, w_co, ln_hh_w, ln_hh_b,
                                 ln_c_w, ln_c_b, rec, keep_c, keep_h, coupled, save));
}

std::vector<at::Tensor> lstm_backward(
    at::Tensor dy, at::Tensor dh_n, at::Tensor dc_n, at::Tensor h_all, at::Tensor c_all,
    at::Tensor act, at::Tensor tc, at::Tensor c_new, at::Tensor hh_hat, at::Tensor hh_rstd,
    at::Tensor c_hat, at::Tensor c_rstd, at::Tensor w_hh, at::Tensor w_hr, at::Tensor w_ci,
    at::Tensor w_cf, at::Tensor w_co, at::Tensor ln_hh_w, at::Tensor ln_c_w, at::Tensor rec,
    at::Tensor keep_c, at::Tensor keep_h, bool coupled) {
  lstmkit::check_floating(act, "act");
  const int64_t T = act.size(0), B = act.size(1), G = act.size(2);
  const int64_t H = c_all.dim() == 3 ? c_all.size(2) : -1, P = h_all.dim() == 3 ? h_all.size(2) : -1;
  TORCH_CHECK(G == (coupled ? 3 : 4) * H, "act: expected ", (coupled ? 3 : 4) * H,
              " gate rows (coupled=", coupled, "), got ", G);
  lstmkit::check(act, "act", act, {T, B, G});
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
  lstmkit::check(w_hh, "w_hh", act, {G, P}, false);
  if (lstmkit::on(w_hr)) lstmkit::check(w_hr, "w_hr", act, {P, H}, false);
  else TORCH_CHECK(P == H, "w_hr: expected a projection (P, H) when P=", P, " != H=", H);
  lstmkit::check_opt(w_ci, "w_ci", act, {H});
  lstmkit::check_opt(w_cf, "w_cf", act, {H});
  lstmkit::check_opt(w_co, "w_co", act, {H});
  lstmkit::check_opt(rec, "rec", act, {B, P});
  lstmkit::check_opt(keep_c, "keep_c", act, {T, B, H});
  lstmkit::check_opt(keep_h, "keep_h", act, {T, B, P});
  return LSTMKIT_DISPATCH(act, "lstm_backward", backward_impl<scalar_t>(dy, dh_n, dc_n, h_all, c_all, act, tc, c_new, hh_hat, hh_rstd,
                                  c_hat, c_rstd, w_hh, w_hr, w_ci, w_cf, w_co, ln_hh_w, ln_c_w,
                                  rec, keep_c, keep_h, coupled));
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
    xg = at::layer_norm(at::mm(x, w_ih.t()), {w_ih.size(0)}, ln_ih_w, ln_ih_b, LN_EPS);
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
