// The gate math of every fused family, one batch row per call: the LSTM (plain and coupled),
// layer norm fused into the gate passes (forward and backward), the GRU (both forms) and the Elman RNN. Every
// pointer is __restrict__ so gcc vectorises the loops (with -fno-trapping-math for the clamped
// polynomial exp of fastmath.h). The time loops (lstm.cpp, gru.cpp, rnn.cpp) call these.
#pragma once
#include <cmath>
#include <cstdint>

#include "fastmath.h"

namespace lstmkit {

constexpr double LN_EPS = 1e-5;

// ---- LSTM --------------------------------------------------------------------------------------
// Absent peepholes point at zeros (no branches in the loops).
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


// ---- layer norm ------------------------------------------------------------------------------
// Row statistics of n values from their sums about a shift inside the row's range,
// s1 = sum(v - shift), s2 = sum((v - shift)^2): the mean is shift + off, and rstd =
// 1/sqrt(var + eps). Callers normalise as ((v - shift) - off) * rstd: the shift keeps the
// one-pass variance from cancelling when the mean is large against the spread, and the
// normalised values from the rounding of a large mean.
template <typename S> inline void stats_from_sums(double s1, double s2, int64_t n, S& off, S& rstd) {
  const double m1 = double(s1) / double(n);
  const double var = double(s2) / double(n) - m1 * m1;
  off = S(m1);
  rstd = S(1.0 / std::sqrt((var > 0 ? var : 0.0) + LN_EPS));
}

// One pass over a row: its statistics about shift = v[0] (see stats_from_sums).
template <typename S> inline void row_stats_1pass(const S* v, int64_t n, S& shift, S& off, S& rstd) {
  const S k0 = v[0];
  double s1 = 0, s2 = 0;  // double sums: as accurate as the two-pass statistics in float32
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t k = 0; k < n; ++k) { double d = double(v[k] - k0); s1 += d; s2 += d * d; }
  shift = k0;
  stats_from_sums(s1, s2, n, off, rstd);
}

// The writing pass of a row's layer-norm backward whose sums s1 = sum(dy * w), s2 = sum(dy * w * xh)
// are already taken: dx = rstd * (dy * w - s1 / n - xh * s2 / n).
template <typename S>
inline void ln_row_backward_from(const S* __restrict__ dy, const S* __restrict__ xh, S rstd,
                                 const S* __restrict__ w, int64_t n, S s1, S s2, S* __restrict__ dx) {
  const S m1 = s1 / S(n), m2 = s2 / S(n);
  for (int64_t k = 0; k < n; ++k) dx[k] = rstd * (dy[k] * w[k] - m1 - xh[k] * m2);
}

// The same writing pass for LN_hh in the LSTM backward, also accumulating the row's share of
// LN_hh's parameter gradients over the call (in double): gw += dy * xh (its gain), gb += dy (its
// shift, which is also the gradient of b_ih, b_hh and LN_ih's shift: every one adds to the gates).
template <typename S>
inline void ln_row_backward_acc(const S* __restrict__ dy, const S* __restrict__ xh, S rstd,
                                const S* __restrict__ w, int64_t n, S s1, S s2, S* __restrict__ dx,
                                double* __restrict__ gw, double* __restrict__ gb) {
  const S m1 = s1 / S(n), m2 = s2 / S(n);
  for (int64_t k = 0; k < n; ++k) {
    dx[k] = rstd * (dy[k] * w[k] - m1 - xh[k] * m2);
    gw[k] += double(dy[k] * xh[k]);
    gb[k] += double(dy[k]);
  }
}

// LN_ih's backward for one row, in place: d (the gates' d pre-activations) becomes d xp, the
// gradient of LN_ih's input x W_ih^T. xp: that input; mean, rstd: its statistics as the forward
// took them (torch's native layer norm); gw accumulates LN_ih's gain gradient, d * xhat.
template <typename S>
inline void ln_ih_row_backward(S* __restrict__ d, const S* __restrict__ xp, S mean, S rstd,
                               const S* __restrict__ w, int64_t n, double* __restrict__ gw) {
  S s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t k = 0; k < n; ++k) {
    S xh = (xp[k] - mean) * rstd;
    S e = d[k] * w[k];
    s1 += e;
    s2 += e * xh;
    gw[k] += double(d[k] * xh);
  }
  const S m1 = s1 / S(n), m2 = s2 / S(n);
  for (int64_t k = 0; k < n; ++k) d[k] = rstd * (d[k] * w[k] - m1 - (xp[k] - mean) * rstd * m2);
}

// The first pass of a row's backward with layer norm: d c_new through tanh(LN_c(c)) before
// LN_c (dcn = dm * o * (1 - tc^2), the gradient of LN_c's output), LN_c's backward sums
// (c1 = sum(dcn * w), c2 = sum(dcn * w * c_hat)) and its parameter gradients accumulated over
// the call in double (gw += dcn * c_hat, gb += dcn).
template <typename S>
inline void ln_c_backward_head(const S* __restrict__ dm, const S* __restrict__ o,
                               const S* __restrict__ tc, const S* __restrict__ w,
                               const S* __restrict__ chat, S* __restrict__ dcn, int64_t H, S& c1,
                               S& c2, double* __restrict__ gw, double* __restrict__ gb) {
  S a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
  for (int64_t j = 0; j < H; ++j) {
    S v = dm[j] * o[j] * (S(1) - tc[j] * tc[j]);  // backprop through tanh
    dcn[j] = v;
    S e = v * w[j];
    a1 += e;
    a2 += e * chat[j];
    gw[j] += double(v * chat[j]);
    gb[j] += double(v);
  }
  c1 = a1; c2 = a2;
}

// ---- LSTM with layer norm: the forward's row passes ------------------------------------------
// The row's LN_hh statistics (shift, off, rstd) are known (row_stats_1pass over the recurrent
// GEMM output a). One sequential pass normalises a (writing hhat for the backward) and turns it
// into the pre-activations in place, a = xr + hhat * w + b; the plain gate pass (gates_forward)
// then runs on a, as without layer norm (one code path for the gate math; as fast, within this
// box's noise, as the former single pass that normalised inside the gate loop).
template <typename S>
void ln_gate_input(S* R a, const S* R xr, const S* R lw, const S* R lb, S shift, S off, S rstd,
                   S* R hhat, int64_t G) {
  for (int64_t k = 0; k < G; ++k) {
    S n = ((a[k] - shift) - off) * rstd;
    hhat[k] = n;
    a[k] = xr[k] + n * lw[k] + lb[k];
  }
}

// Sums of v - shift and of its square over a row, in double (see stats_from_sums).
template <typename S> inline void row_sums_about(const S* R v, int64_t n, S shift, double& s1, double& s2) {
  double a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
  for (int64_t k = 0; k < n; ++k) { double d = double(v[k] - shift); a1 += d; a2 += d * d; }
  s1 = a1; s2 = a2;
}

// The forward's last pass over a row: c_hat = LN_c(c) before its affine (written for the
// backward), tc = tanh(c_hat * w + b), m = o * tc. A function of its own with __restrict__
// pointers: inline in the time loop, the stores could alias the loop object's weight pointers
// and gcc left it scalar.
template <typename S>
void ln_c_output(const S* R cn, S shift, S off, S rstd, const S* R lcw, const S* R lcb,
                 const S* R o, S* R chat, S* R tc, S* R m, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S v = ((cn[j] - shift) - off) * rstd;
    chat[j] = v;
    S tv = tanh_(v * lcw[j] + lcb[j]);
    tc[j] = tv;
    m[j] = o[j] * tv;
  }
}

// Backward with layer norm, statistics fused. The row's LN_c backward means are known
// (m1 = mean(dcn * w_c), m2 = mean(dcn * w_c * c_hat), taken in the pass that computes dcn);
// one pass then takes d c_new through LN_c inline, the gates' d pre-activations (written to
// da*_out: d of LN_hh's output), d c_prev, and accumulates LN_hh's backward sums (of da * w_hh
// and da * w_hh * hh_hat), so that only the pass writing d hh (ln_row_backward_from) remains.
template <typename S>
void gates_backward_ln(const S* R i_, const S* R f_, const S* R g_, const S* R o_, const S* R tcr,
                       const S* R cp, const S* R dmr, const S* R dcn, const S* R chat,
                       const S* R lcw, S crstd, S cm1, S cm2, const S* R dcr, const S* R kc,
                       const S* R wci, const S* R wcf, const S* R wco, const S* R hhat,
                       const S* R lw, S* R dai_out, S* R daf_out, S* R dag_out, S* R dao_out,
                       S* R dcp_out, int64_t H, S& hs1, S& hs2) {
  S s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t j = 0; j < H; ++j) {
    const int64_t ki = j, kf = H + j, kg = 2 * H + j, ko = 3 * H + j;
    S kk = kc[j];
    S i = i_[j], f = f_[j], g = g_[j], o = o_[j];
    S dcc = crstd * (dcn[j] * lcw[j] - cm1 - chat[j] * cm2);  // through LN_c
    S dao = dmr[j] * tcr[j] * o * (S(1) - o);
    S dcv = dcr[j] * (S(1) - kk) + dcc + dao * wco[j];
    S dai = dcv * g * i * (S(1) - i);
    S daf = dcv * cp[j] * f * (S(1) - f);
    S dag = dcv * i * (S(1) - g * g);
    dai_out[j] = dai; daf_out[j] = daf; dag_out[j] = dag; dao_out[j] = dao;
    dcp_out[j] = dcv * f + dai * wci[j] + daf * wcf[j] + dcr[j] * kk;
    S ei = dai * lw[ki], ef = daf * lw[kf], eg = dag * lw[kg], eo = dao * lw[ko];
    s1 += (ei + ef) + (eg + eo);
    s2 += (ei * hhat[ki] + ef * hhat[kf]) + (eg * hhat[kg] + eo * hhat[ko]);
  }
  hs1 = s1; hs2 = s2;
}

template <typename S>  // CIFG: f = 1 - i, rows (i, g, o)
void gates_backward_coupled_ln(const S* R i_, const S* R g_, const S* R o_, const S* R tcr,
                               const S* R cp, const S* R dmr, const S* R dcn, const S* R chat,
                               const S* R lcw, S crstd, S cm1, S cm2, const S* R dcr,
                               const S* R kc, const S* R wci, const S* R wco, const S* R hhat,
                               const S* R lw, S* R dai_out, S* R dag_out, S* R dao_out,
                               S* R dcp_out, int64_t H, S& hs1, S& hs2) {
  S s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t j = 0; j < H; ++j) {
    const int64_t ki = j, kg = H + j, ko = 2 * H + j;
    S kk = kc[j];
    S i = i_[j], g = g_[j], o = o_[j];
    S dcc = crstd * (dcn[j] * lcw[j] - cm1 - chat[j] * cm2);
    S dao = dmr[j] * tcr[j] * o * (S(1) - o);
    S dcv = dcr[j] * (S(1) - kk) + dcc + dao * wco[j];
    S dai = dcv * (g - cp[j]) * i * (S(1) - i);
    S dag = dcv * i * (S(1) - g * g);
    dai_out[j] = dai; dag_out[j] = dag; dao_out[j] = dao;
    dcp_out[j] = dcv * (S(1) - i) + dai * wci[j] + dcr[j] * kk;
    S ei = dai * lw[ki], eg = dag * lw[kg], eo = dao * lw[ko];
    s1 += ei + eg + eo;
    s2 += ei * hhat[ki] + eg * hhat[kg] + eo * hhat[ko];
  }
  hs1 = s1; hs2 = s2;
}

// ---- GRU (reset_after=True) -----------------------------------------------------------------
template <typename S>
void gru_gates_forward(const S* R xr, const S* R xz, const S* R xn, const S* R hr_, const S* R hz,
                       const S* R hn_raw, const S* R bhn, const S* R hp, S* R r_out, S* R z_out,
                       S* R n_out, S* R hn_out, S* R h_out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S r = sigmoid_(xr[j] + hr_[j]);
    S z = sigmoid_(xz[j] + hz[j]);
    S hn = hn_raw[j] + bhn[j];
    S n = tanh_(xn[j] + r * hn);
    r_out[j] = r; z_out[j] = z; n_out[j] = n; hn_out[j] = hn;
    h_out[j] = n + z * (hp[j] - n);  // (1 - z) * n + z * h_prev
  }
}

template <typename S>
void gru_gates_backward(const S* R r_, const S* R z_, const S* R n_, const S* R hn_, const S* R hp,
                        const S* R dh, S* R dr_out, S* R dz_out, S* R dhn_out, S* R dan_out,
                        S* R dh_direct, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S r = r_[j], z = z_[j], n = n_[j];
    S d = dh[j];
    dh_direct[j] = d * z;
    S dan = d * (S(1) - z) * (S(1) - n * n);  // through tanh
    dz_out[j] = d * (hp[j] - n) * z * (S(1) - z);  // through sigmoid
    dr_out[j] = dan * hn_[j] * r * (S(1) - r);
    dhn_out[j] = dan * r;
    dan_out[j] = dan;
  }
}
// ---- GRU (reset_after=False, Cho et al. 2014) -------------------------------------------------
// Two passes per step around the two recurrent GEMMs: r, z and q = r * hr (the n GEMM's input),
// then n and h. Every bias sits in xg (none is multiplied by r).
template <typename S>
void gru_cho_rz_forward(const S* R xr, const S* R xz, const S* R ar, const S* R az, const S* R hr,
                        S* R r_out, S* R z_out, S* R q_out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S r = sigmoid_(xr[j] + ar[j]);
    r_out[j] = r;
    z_out[j] = sigmoid_(xz[j] + az[j]);
    q_out[j] = r * hr[j];
  }
}

template <typename S>
void gru_cho_n_forward(const S* R xn, const S* R an, const S* R z_, const S* R hp, S* R n_out,
                       S* R h_out, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S n = tanh_(xn[j] + an[j]);
    n_out[j] = n;
    h_out[j] = n + z_[j] * (hp[j] - n);  // (1 - z) * n + z * h_prev
  }
}

// Backward, first pass (before the n GEMM's backward): d z and d n pre-activations, dh_new * z.
template <typename S>
void gru_cho_zn_backward(const S* R z_, const S* R n_, const S* R hp, const S* R dh, S* R dz_out,
                         S* R dan_out, S* R dh_direct, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S z = z_[j], n = n_[j], d = dh[j];
    dh_direct[j] = d * z;
    dan_out[j] = d * (S(1) - z) * (S(1) - n * n);  // through tanh
    dz_out[j] = d * (hp[j] - n) * z * (S(1) - z);  // through sigmoid
  }
}

// Second pass: dq = da_n W_hn is d (r * hr); d r pre-activation, and dq * r (d hr through q).
template <typename S>
void gru_cho_r_backward(const S* R r_, const S* R hr, const S* R dq, S* R dr_out, S* R dhr_q,
                        int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    S r = r_[j];
    dr_out[j] = dq[j] * hr[j] * r * (S(1) - r);
    dhr_q[j] = dq[j] * r;
  }
}

// ---- Elman RNN ------------------------------------------------------------------------------
template <typename S>
void rnn_forward_row(const S* R xg, const S* R hh, const S* R hp, const S* R kh, S* R h_new,
                     S* R h_out, int64_t H, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) { S a = xg[j] + hh[j]; h_new[j] = a > S(0) ? a : S(0); }
  } else {
    for (int64_t j = 0; j < H; ++j) h_new[j] = tanh_(xg[j] + hh[j]);
  }
  for (int64_t j = 0; j < H; ++j) h_out[j] = h_new[j] + kh[j] * (hp[j] - h_new[j]);  // keep blend
}
#undef R

}  // namespace lstmkit
