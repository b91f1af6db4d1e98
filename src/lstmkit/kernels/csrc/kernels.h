// The entry points of the fused kernels (bound to Python in bindings.cpp). Symbols: T time,
// B batch, H hidden, P output width, G gate rows. Optional tensors arrive empty; every entry
// point checks shapes, dtypes, devices and contiguity before it reads a pointer.
#pragma once
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind

#include <vector>

std::vector<at::Tensor> lstm_forward(
    at::Tensor xg, at::Tensor h0, at::Tensor c0, at::Tensor w_hh, at::Tensor w_hr,
    at::Tensor w_ci, at::Tensor w_cf, at::Tensor w_co, at::Tensor ln_hh_w, at::Tensor ln_hh_b,
    at::Tensor ln_c_w, at::Tensor ln_c_b, at::Tensor rec, at::Tensor keep_c, at::Tensor keep_h,
    bool coupled, bool save);
std::vector<at::Tensor> lstm_backward(
    at::Tensor dy, at::Tensor dh_n, at::Tensor dc_n, at::Tensor h_all, at::Tensor c_all,
    at::Tensor act, at::Tensor tc, at::Tensor c_new, at::Tensor hh_hat, at::Tensor hh_rstd,
    at::Tensor c_hat, at::Tensor c_rstd, at::Tensor w_hh, at::Tensor w_hr, at::Tensor w_ci,
    at::Tensor w_cf, at::Tensor w_co, at::Tensor ln_hh_w, at::Tensor ln_c_w, at::Tensor rec,
    at::Tensor keep_c, at::Tensor keep_h, at::Tensor xp, at::Tensor x_mean, at::Tensor x_rstd,
    at::Tensor ln_ih_w, bool coupled);
std::vector<at::Tensor> lstm_step(
    at::Tensor x, at::Tensor h, at::Tensor c, at::Tensor w_ih, at::Tensor w_hh, at::Tensor b_ih,
    at::Tensor b_hh, at::Tensor w_hr, at::Tensor w_ci, at::Tensor w_cf, at::Tensor w_co,
    at::Tensor ln_ih_w, at::Tensor ln_ih_b, at::Tensor ln_hh_w, at::Tensor ln_hh_b,
    at::Tensor ln_c_w, at::Tensor ln_c_b, bool coupled);

std::vector<at::Tensor> gru_forward(at::Tensor xg, at::Tensor h0, at::Tensor w_hh, at::Tensor b_hn,
                                    at::Tensor rec, at::Tensor keep_h, bool save);
std::vector<at::Tensor> gru_backward(at::Tensor dy, at::Tensor dh_n, at::Tensor h_all, at::Tensor act,
                                     at::Tensor hn, at::Tensor w_hh, at::Tensor rec, at::Tensor keep_h);
std::vector<at::Tensor> gru_cho_forward(at::Tensor xg, at::Tensor h0, at::Tensor w_hh, at::Tensor rec,
                                        at::Tensor keep_h, bool save);
std::vector<at::Tensor> gru_cho_backward(at::Tensor dy, at::Tensor dh_n, at::Tensor h_all, at::Tensor act,
                                         at::Tensor w_hh, at::Tensor rec, at::Tensor keep_h);

std::vector<at::Tensor> rnn_forward(at::Tensor xg, at::Tensor h0, at::Tensor w_hh, at::Tensor rec,
                                    at::Tensor keep_h, bool relu);
std::vector<at::Tensor> rnn_backward(at::Tensor dy, at::Tensor dh_n, at::Tensor h_new, at::Tensor w_hh,
                                     at::Tensor rec, at::Tensor keep_h, bool relu);

// A packed streaming step (step.cpp): weights packed once in the chosen precision, workspace
// kept between steps.
struct LstmStepper {
  // weights: 0 full (the parameters' dtype), 1 bfloat16, 2 int8 (per output row and part)
  LstmStepper(at::Tensor w_ih, at::Tensor w_hh, at::Tensor b_ih, at::Tensor b_hh, at::Tensor w_ci,
              at::Tensor w_cf, at::Tensor w_co, bool coupled, int64_t weights);
  // x (B, I), h (B, H), c (B, H) -> {h, c}, fresh tensors, no autograd
  std::vector<at::Tensor> step(at::Tensor x, at::Tensor h, at::Tensor c);
  // bytes of the packed weights a step reads (scales included)
  int64_t weight_bytes() const;

 private:
  enum class Kind : int64_t { Full = 0, BF16 = 1, Int8 = 2 };
  struct Part {  // the x or the h columns of the weights, packed in 64-wide panels
    int64_t K = 0, Kp = 0;  // depth and depth padded to the precision's group
    at::Tensor w, scale, zc;  // packed weights; int8: per-row scales, 128 * row sums
  };
  void pack(const at::Tensor& w_part, Part& part);
  void run_part(const Part& part, const float* a, int64_t lda, int64_t M, float* y);
  int64_t group() const;

  Kind kind_ = Kind::Full;
  Part px_, ph_;
  at::Tensor w_, bias_, wci_, wcf_, wco_, xh_, a_;
  std::vector<float> y_, act_;
  std::vector<float> act16_;  // bfloat16 weights: x and h rounded to bfloat16 (panels::gemm)
  std::vector<uint8_t> act8_;
  std::vector<uint64_t> wide_;  // int8 on AVX2: act8_'s quads widened to 16-bit lanes
  int64_t G_ = 0, I_ = 0, H_ = 0, N_ = 0;
  bool coupled_ = false;
};
