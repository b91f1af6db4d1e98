// Fused Elman RNN time loop (tanh or relu): per step one recurrent GEMM through torch and one
// fused elementwise pass. Symbols: T time, B batch, H hidden. Python owns the input projection
// (x W_ih^T + b_ih + b_hh), masks and the weight gradients. Optional tensors arrive empty.
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind
#include <ATen/Parallel.h>

#include <cstdint>
#include <vector>

#include "common.h"
#include "gates.h"
#include "kernels.h"

namespace {


using lstmkit::on;
using lstmkit::ptr_or_null;

template <typename S>
std::vector<at::Tensor> forward_impl(const at::Tensor& xg, const at::Tensor& h0, const at::Tensor& w_hh,
                                     const at::Tensor& rec, const at::Tensor& keep_h, bool relu) {
  const int64_t T = xg.size(0), B = xg.size(1), H = h0.size(1);
  auto opts = xg.options();
  at::Tensor h_all = at::empty({T + 1, B, H}, opts);
  h_all[0].copy_(h0);
  at::Tensor h_new = at::empty({T, B, H}, opts);  // before the keep blend
  at::Tensor hh = at::empty({B, H}, opts);
  at::Tensor hrb = on(rec) ? at::empty({B, H}, opts) : at::Tensor();
  lstmkit::StepGemm rec_gemm(w_hh, B, T, opts);
  std::vector<S> zeros(H, S(0));
  const S* kh = ptr_or_null<S>(keep_h);
  const S* xg_p = xg.data_ptr<S>();
  S* h_p = h_all.data_ptr<S>();
  S* hn_p = h_new.data_ptr<S>();
  const S* hh_p = hh.data_ptr<S>();
  for (int64_t t = 0; t < T; ++t) {
    if (on(rec)) {
      at::mul_out(hrb, h_all[t], rec);
      rec_gemm(hh, hrb);
    } else {
      rec_gemm(hh, h_all[t]);  // (B, H)
    }
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = (t * B + b) * H;
      lstmkit::rnn_forward_row(xg_p + row, hh_p + b * H, h_p + row, kh ? kh + row : zeros.data(), hn_p + row,
                      h_p + row + B * H, H, relu);
    }
  }
  return {h_all, h_new};
}

template <typename S>
std::vector<at::Tensor> backward_impl(const at::Tensor& dy, const at::Tensor& dh_n,
                                      const at::Tensor& h_new, const at::Tensor& w_hh,
                                      const at::Tensor& rec, const at::Tensor& keep_h, bool relu) {
  const int64_t T = h_new.size(0), B = h_new.size(1), H = h_new.size(2);
  auto opts = h_new.options();
  lstmkit::StepGemm rec_gemm(w_hh.t(), B, T, opts);  // d h_prev (B, H) = d hh W_hh
  at::Tensor dh = on(dh_n) ? dh_n.clone() : at::zeros({B, H}, opts);
  at::Tensor da_all = at::empty({T, B, H}, opts);
  at::Tensor dhr = at::empty({B, H}, opts);
  const S* dy_p = ptr_or_null<S>(dy);
  const S* kh = ptr_or_null<S>(keep_h);
  const S* rec_p = ptr_or_null<S>(rec);
  const S* hn_p = h_new.data_ptr<S>();
  S* dh_p = dh.data_ptr<S>();
  const S* dhr_p = dhr.data_ptr<S>();
  for (int64_t t = T - 1; t >= 0; --t) {
    S* da = da_all.data_ptr<S>() + t * B * H;
    const S* hn = hn_p + t * B * H;
    for (int64_t k = 0; k < B * H; ++k) {
      S v = dh_p[k] + (dy_p ? dy_p[t * B * H + k] : S(0));
      dh_p[k] = v;
      S d = kh ? v * (S(1) - kh[t * B * H + k]) : v;  // h = keep * h_prev + (1 - keep) * h_new
      da[k] = relu ? (hn[k] > S(0) ? d : S(0)) : d * (S(1) - hn[k] * hn[k]);
    }
    at::Tensor da_t = da_all[t];
    rec_gemm(dhr, da_t);  // (B, H) backprop through the recurrent GEMM
    for (int64_t k = 0; k < B * H; ++k) {
      S v = rec_p ? dhr_p[k] * rec_p[k] : dhr_p[k];
      dh_p[k] = v + (kh ? dh_p[k] * kh[t * B * H + k] : S(0));
    }
  }
  return {da_all, dh};
}

}  // namespace

std::vector<at::Tensor> rnn_forward(at::Tensor xg, at::Tensor h0, at::Tensor w_hh, at::Tensor rec,
                                    at::Tensor keep_h, bool relu) {
  lstmkit::check_floating(xg, "xg");
  const int64_t T = xg.size(0), B = xg.size(1), H = xg.size(2);
  lstmkit::check_shape(xg, "xg", {T, B, H});
  lstmkit::check(h0, "h0", xg, {B, H});
  lstmkit::check_weight(w_hh, "w_hh", xg, {H, H});
  lstmkit::check_masks(rec, keep_h, xg, T, B, H);
  return LSTMKIT_DISPATCH(xg, "rnn_forward", forward_impl<scalar_t>(xg, h0, w_hh, rec, keep_h, relu));
}

std::vector<at::Tensor> rnn_backward(at::Tensor dy, at::Tensor dh_n, at::Tensor h_new, at::Tensor w_hh,
                                     at::Tensor rec, at::Tensor keep_h, bool relu) {
  lstmkit::check_floating(h_new, "h_new");
  const int64_t T = h_new.size(0), B = h_new.size(1), H = h_new.size(2);
  lstmkit::check_shape(h_new, "h_new", {T, B, H});
  lstmkit::check_opt(dy, "dy", h_new, {T, B, H});
  lstmkit::check_opt(dh_n, "dh_n", h_new, {B, H});
  lstmkit::check_weight(w_hh, "w_hh", h_new, {H, H});
  lstmkit::check_masks(rec, keep_h, h_new, T, B, H);
  return LSTMKIT_DISPATCH(h_new, "rnn_backward", backward_impl<scalar_t>(dy, dh_n, h_new, w_hh, rec, keep_h, relu));
}
