// Streaming LSTM step without autograd (cells, stateful inference, the server): the weights are
// packed once into one ([W_ih | W_hh])^T (I+P, G) matrix and one summed bias, and the workspace
// is kept between steps, so a step is one copy of [x, h], one GEMM (a GEMV at B=1) and one gate
// pass. Plain, peephole and coupled LSTMs (no projection, no layer norm: Python sends those to
// lstm_step). Symbols: B batch, I input, H hidden, G gate rows (4H; 3H coupled).
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind

#include <cstdint>
#include <vector>

#include "common.h"
#include "gates.h"
#include "kernels.h"

LstmStepper::LstmStepper(at::Tensor w_ih, at::Tensor w_hh, at::Tensor b_ih, at::Tensor b_hh,
                         at::Tensor w_ci, at::Tensor w_cf, at::Tensor w_co, bool coupled)
    : coupled_(coupled) {
  TORCH_CHECK(w_ih.dim() == 2 && w_hh.dim() == 2, "w_ih, w_hh: expected 2-D (G, I), (G, H)");
  TORCH_CHECK(w_ih.scalar_type() == at::kFloat || w_ih.scalar_type() == at::kDouble,
              "w_ih: expected float32 or float64, got ", w_ih.scalar_type());
  G_ = w_ih.size(0);
  I_ = w_ih.size(1);
  H_ = w_hh.size(1);
  TORCH_CHECK(G_ == (coupled ? 3 : 4) * H_, "w_hh: expected (", (coupled ? 3 : 4), "H, H) with G=",
              G_, ", got ", w_hh.sizes());
  lstmkit::check_weight(w_hh, "w_hh", w_ih, {G_, H_});
  at::NoGradGuard no_grad;
  w_ = at::cat({w_ih, w_hh}, 1).t().contiguous();  // (I+H, G)
  if (lstmkit::on(b_ih)) {
    lstmkit::check(b_ih, "b_ih", w_ih, {G_}, false);
    lstmkit::check(b_hh, "b_hh", w_ih, {G_}, false);
    bias_ = (b_ih + b_hh).contiguous();
  }
  auto opts = w_ih.options();
  auto diag = [&](const at::Tensor& t, const char* name) {
    if (!lstmkit::on(t)) return at::zeros({H_}, opts);  // absent peepholes: zeros, no branches
    lstmkit::check(t, name, w_ih, {H_}, false);
    return t.contiguous().clone();
  };
  wci_ = diag(w_ci, "w_ci");
  wcf_ = diag(w_cf, "w_cf");
  wco_ = diag(w_co, "w_co");
}

namespace {

template <typename S>
void step_rows(const S* a, const S* c_prev, const S* wci, const S* wcf, const S* wco, S* h, S* c,
               S* act, int64_t B, int64_t H, int64_t G, bool coupled) {
  for (int64_t b = 0; b < B; ++b) {
    const S* ar = a + b * G;
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

std::vector<at::Tensor> LstmStepper::step(at::Tensor x, at::Tensor h, at::Tensor c) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == I_, "x: expected (B, I=", I_, "), got ", x.sizes());
  const int64_t B = x.size(0);
  lstmkit::check(x, "x", w_, {B, I_}, false);
  lstmkit::check(h, "h", w_, {B, H_}, false);
  lstmkit::check(c, "c", w_, {B, H_}, false);
  at::NoGradGuard no_grad;
  if (!xh_.defined() || xh_.size(0) != B) {
    xh_ = at::empty({B, I_ + H_}, w_.options());
    a_ = at::empty({B, G_}, w_.options());
  }
  xh_.narrow(1, 0, I_).copy_(x);
  xh_.narrow(1, I_, H_).copy_(h);
  if (bias_.defined()) {
    at::addmm_out(a_, bias_, xh_, w_);  // (B, G) = b + [x, h] [W_ih | W_hh]^T
  } else {
    at::mm_out(a_, xh_, w_);
  }
  at::Tensor h_new = at::empty({B, H_}, w_.options());
  at::Tensor c_new = at::empty({B, H_}, w_.options());
  at::Tensor cc = c.contiguous();
  AT_DISPATCH_FLOATING_TYPES(w_.scalar_type(), "lstm_stepper", [&] {
    std::vector<scalar_t> act(G_);
    step_rows<scalar_t>(a_.data_ptr<scalar_t>(), cc.data_ptr<scalar_t>(), wci_.data_ptr<scalar_t>(),
                        wcf_.data_ptr<scalar_t>(), wco_.data_ptr<scalar_t>(), h_new.data_ptr<scalar_t>(),
                        c_new.data_ptr<scalar_t>(), act.data(), B, H_, G_, coupled_);
  });
  return {h_new, c_new};
}
