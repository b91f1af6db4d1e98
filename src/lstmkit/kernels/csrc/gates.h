// The gate math of every fused family, one batch row per call: the LSTM (plain and coupled),
// layer-norm row statistics and their backward, the GRU (both forms) and the Elman RNN. Every
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
// Statistics of one row of n values: mean and 1/sqrt(var + eps).
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

// Backward of a row's layer norm: dx = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)), dxh = dy * w.
template <typename S>
inline void ln_row_backward(const S* dy, const S* xh, S rstd, const S* w, int64_t n, S* dx) {
  S s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t k = 0; k < n; ++k) { S d = dy[k] * w[k]; s1 += d; s2 += d * xh[k]; }
  S m1 = s1 / S(n), m2 = s2 / S(n);
  for (int64_t k = 0; k < n; ++k) dx[k] = rstd * (dy[k] * w[k] - m1 - xh[k] * m2);
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
