// Shared by the kernels: optional-tensor test, thread grain, the boundary checks every C++
// entry point runs before touching a raw pointer (TORCH_CHECK raises a Python RuntimeError
// naming the argument and expected vs got), and the per-step GEMM (float32 state with bfloat16
// weights: bfloat16 GEMMs, float32 gate math).
#pragma once
#include <ATen/ATen.h>  // not torch/extension.h: 3x faster to compile; only bindings.cpp needs pybind
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "panels.h"

// Run CALL (which names scalar_t) for REF's floating dtype and return its tensors.
#define LSTMKIT_DISPATCH(REF, NAME, ...)                                         \
  [&] {                                                                          \
    std::vector<at::Tensor> out_;                                                \
    AT_DISPATCH_FLOATING_TYPES((REF).scalar_type(), NAME, [&] { out_ = __VA_ARGS__; }); \
    return out_;                                                                 \
  }()

namespace lstmkit {

// Optional tensors arrive undefined or empty.
inline bool on(const at::Tensor& t) { return t.defined() && t.numel() > 0; }

// The raw pointer of an optional tensor, or nullptr.
template <typename S> const S* ptr_or_null(const at::Tensor& t) { return on(t) ? t.data_ptr<S>() : nullptr; }

// grain: rows per thread chunk so that small problems stay on one thread
inline int64_t grain(int64_t B, int64_t width) {
  int64_t g = 32768 / (width > 0 ? width : 1);
  return g < 1 ? 1 : (g > B ? B : g);
}

// A required tensor: CPU, ref's dtype, contiguous (the loops index it raw), exactly `shape`.
inline void check(const at::Tensor& t, const char* name, const at::Tensor& ref,
                  std::initializer_list<int64_t> shape, bool contiguous = true) {
  TORCH_CHECK(t.defined(), name, ": expected a tensor, got an undefined one");
  TORCH_CHECK(t.device().is_cpu(), name, ": expected a CPU tensor, got device ", t.device());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), name, ": expected dtype ", ref.scalar_type(),
              ", got ", t.scalar_type());
  TORCH_CHECK(!contiguous || t.is_contiguous(), name, ": expected a contiguous tensor");
  TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), name, ": expected shape ", at::IntArrayRef(shape),
              ", got ", t.sizes());
}

// The leading tensor of an entry point (its dtype is the state's, checked by check_floating):
// contiguous, exactly `shape`.
inline void check_shape(const at::Tensor& t, const char* name, std::initializer_list<int64_t> shape) {
  TORCH_CHECK(t.is_contiguous(), name, ": expected a contiguous tensor");
  TORCH_CHECK(t.sizes() == at::IntArrayRef(shape), name, ": expected shape ", at::IntArrayRef(shape),
              ", got ", t.sizes());
}

// A GEMM weight: CPU, exactly `shape`, ref's dtype, or bfloat16 when ref is float32 (the mixed
// mode: bfloat16 GEMMs, float32 state and gate math). Any strides (torch's GEMM takes views).
inline void check_weight(const at::Tensor& w, const char* name, const at::Tensor& ref,
                         std::initializer_list<int64_t> shape) {
  TORCH_CHECK(w.defined(), name, ": expected a tensor, got an undefined one");
  TORCH_CHECK(w.device().is_cpu(), name, ": expected a CPU tensor, got device ", w.device());
  const bool mixed = w.scalar_type() == at::kBFloat16 && ref.scalar_type() == at::kFloat;
  TORCH_CHECK(mixed || w.scalar_type() == ref.scalar_type(), name, ": expected dtype ",
              ref.scalar_type(), (ref.scalar_type() == at::kFloat ? " or BFloat16" : ""), ", got ",
              w.scalar_type());
  TORCH_CHECK(w.sizes() == at::IntArrayRef(shape), name, ": expected shape ", at::IntArrayRef(shape),
              ", got ", w.sizes());
}

// An optional tensor: the same checks when it is given (non-empty).
inline void check_opt(const at::Tensor& t, const char* name, const at::Tensor& ref,
                      std::initializer_list<int64_t> shape) {
  if (on(t)) check(t, name, ref, shape);
}

// The per-sequence masks of an h-only family: rec (B, W) and keep_h (T, B, W), both optional.
inline void check_masks(const at::Tensor& rec, const at::Tensor& keep_h, const at::Tensor& ref,
                        int64_t T, int64_t B, int64_t W) {
  check_opt(rec, "rec", ref, {B, W});
  check_opt(keep_h, "keep_h", ref, {T, B, W});
}

// The leading tensor of an entry point: float32 or float64 (bfloat16 callers pass a float32
// state with bfloat16 weights), CPU, 3-D.
inline void check_floating(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.defined() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble),
              name, ": expected a float32 or float64 tensor");
  TORCH_CHECK(t.device().is_cpu(), name, ": expected a CPU tensor, got device ", t.device());
  TORCH_CHECK(t.dim() == 3, name, ": expected a 3-D (T, B, *) tensor, got ", t.dim(), "-D");
}

// torch's oneDNN linear (mkldnn::_linear_pointwise: y = a w^T on dense tensors), or nullptr
// where this torch build has none. On CPUs where MKL's sgemm runs its generic path (AMD) it is
// ~2x faster than at::mm for a step's GEMM; it costs ~40 us a call, so small GEMMs keep at::mm.
using LinearFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            c10::string_view, c10::List<std::optional<c10::Scalar>>,
                            std::optional<c10::string_view>);
inline const c10::TypedOperatorHandle<LinearFn>* onednn_linear() {
  static const c10::TypedOperatorHandle<LinearFn>* op = []() -> const c10::TypedOperatorHandle<LinearFn>* {
    auto h = c10::Dispatcher::singleton().findSchema({"mkldnn::_linear_pointwise", ""});
    if (!h.has_value()) return nullptr;
    try {
      return new c10::TypedOperatorHandle<LinearFn>(h->typed<LinearFn>());
    } catch (const std::exception&) {  // another signature in this torch: keep at::mm
      return nullptr;
    }
  }();
  return op;
}

// oneDNN's weight prepacking (mkldnn::_reorder_linear_weight: the weight in the blocked layout
// its GEMM wants, as an opaque MKLDNN tensor that _linear_pointwise takes in place of a dense
// one), or nullptr where this torch build has none.
using ReorderFn = at::Tensor(const at::Tensor&, std::optional<int64_t>);
inline const c10::TypedOperatorHandle<ReorderFn>* onednn_reorder() {
  static const c10::TypedOperatorHandle<ReorderFn>* op = []() -> const c10::TypedOperatorHandle<ReorderFn>* {
    auto h = c10::Dispatcher::singleton().findSchema({"mkldnn::_reorder_linear_weight", ""});
    if (!h.has_value()) return nullptr;
    try {
      return new c10::TypedOperatorHandle<ReorderFn>(h->typed<ReorderFn>());
    } catch (const std::exception&) {  // another signature in this torch: dense weights
      return nullptr;
    }
  }();
  return op;
}

// When a step's GEMM goes to oneDNN (benchmarks/README.md, "per-step GEMM crossover", 1 thread,
// this AMD CPU where MKL's sgemm runs its generic path; `python -m benchmarks.rnn --sections
// crossover`). A sequence (T > 2) prepacks the weight once; oneDNN then breaks even with at::mm
// around 512K multiply-adds and wins from 1M with 2 or more rows (B=4, H=256: 34 us against
// 77 us; B=16, H=256: 64 against 124); a single row is a GEMV, where at::mm keeps up. A streaming
// step through lstm_forward (T <= 2) would pay the prepacking every call: it keeps the dense
// weight and the old crossover, 4M multiply-adds.
constexpr int64_t ONEDNN_MIN_MACS = int64_t(1) << 22;      // T <= 2: dense weight
constexpr int64_t ONEDNN_SEQ_MIN_MACS = int64_t(1) << 20;  // T > 2: prepacked weight, rows >= 2
constexpr int64_t PANEL_MAX_ROWS = 16;  // T > 2 on AVX2 or AVX-512: panels up to here

// One per-step GEMM y (rows, N) = a (rows, K) @ w^T for a weight w (N, K), with a and y in the
// state's dtype and w in the GEMM dtype. Same dtype: at::mm_out (or oneDNN for big enough float32
// GEMMs). bfloat16 w under a float32 state: a is rounded to bfloat16, the products are summed in
// float32: by the bfloat16 panels up to 16 rows (AVX512-BF16 dot products, or AVX2 FMAs on the
// widened pairs; y stays float32), else by torch's bfloat16 GEMM (oneDNN; AMX where the CPU has
// it; y rounded to bfloat16 and widened back for the gate math), or, where oneDNN has no bfloat16
// on this CPU (AVX2), by a float32 GEMM on the bfloat16 values (exact products; y stays float32).
// The weight is prepared once per sequence (transposed for at::mm, prepacked for oneDNN, packed
// in panels).
class StepGemm {
 public:
  StepGemm() = default;
  StepGemm(const at::Tensor& w_in, int64_t rows, int64_t T, const at::TensorOptions& state)
      : mixed_(w_in.scalar_type() != state.dtype().toScalarType()) {
    const auto& cpu = panels::isa();
    const bool seq = T > 2;
    // small batches on an AVX2 or AVX-512 CPU: the weight packed once in panels (panels.h), no
    // per-call cost and no per-step dtype copies (bfloat16 panels round a's rows themselves);
    // measured (benchmarks.rnn --sections stepgemm --base) at 0.76-0.97x the time of at::mm /
    // prepacked oneDNN up to 16 rows on AVX-512
    use_panels_ = seq && rows <= PANEL_MAX_ROWS && state.dtype() == at::kFloat && cpu.avx2 &&
                  (w_in.scalar_type() == at::kFloat || (mixed_ && w_in.scalar_type() == at::kBFloat16));
    if (use_panels_) {
      w_ = panels::pack(w_in, w_in.scalar_type());
      N_ = w_in.size(0);
      K_ = w_in.size(1);
      rows_ = rows;
      if (w_in.scalar_type() == at::kBFloat16) lo_.resize(rows * panels::round_up(K_, 2));
      return;
    }
    // no bfloat16 GEMM here: the weight's bfloat16 values in float32, a rounded to them per step
    round_a_ = mixed_ && w_in.scalar_type() == at::kBFloat16 && !cpu.onednn_bf16;
    const at::Tensor w = round_a_ ? w_in.to(at::kFloat) : w_in;
    const at::ScalarType g = w.scalar_type();
    const int64_t macs = rows * w.size(0) * w.size(1);
    const bool lowp = g == at::kBFloat16;  // a bfloat16 GEMM (oneDNN runs it on this CPU)
    use_onednn_ = (g == at::kFloat || lowp) && onednn_linear() != nullptr &&
                  (lowp || (seq ? rows >= 2 && macs >= ONEDNN_SEQ_MIN_MACS : macs >= ONEDNN_MIN_MACS));
    if (use_onednn_) {
      w_ = w.contiguous();  // (N, K)
      if (seq && onednn_reorder() != nullptr) {
        try {
          w_ = onednn_reorder()->call(w_, rows);
        } catch (const std::exception&) {  // not packable here: the dense weight serves
        }
      }
    } else {
      // (K, N) contiguous: a plain NN GEMM is faster than the transposed view; the copy pays
      // off over a sequence, not for one streaming step
      w_ = seq ? w.t().contiguous() : w.t();
    }
    if (lowp) a_lo_ = at::empty({rows, w.size(1)}, state.dtype(g));
    if (lowp && !use_onednn_) y_lo_ = at::empty({rows, w.size(0)}, state.dtype(g));
    if (round_a_) a_lo_ = at::empty({rows, w.size(1)}, state);
  }
  void operator()(at::Tensor y, const at::Tensor& a) {
    if (round_a_) {  // a's values rounded to bfloat16, kept in float32 (a_lo_: rows x K)
      const at::Tensor ac = a.contiguous();
      const float* src = ac.data_ptr<float>();
      float* dst = a_lo_.data_ptr<float>();
      for (int64_t i = 0, n = ac.numel(); i < n; ++i) dst[i] = panels::from_bf16(panels::to_bf16(src[i]));
      return run(y, a_lo_.narrow(0, 0, a.size(0)));
    }
    if (mixed_ && !use_panels_) {  // a in bfloat16 for torch's bfloat16 GEMM
      a_lo_.copy_(a);
      return run(y, a_lo_);
    }
    run(y, a);
  }

 private:
  void run(at::Tensor& y, const at::Tensor& a) {
    if (use_panels_) {
      TORCH_CHECK(a.size(0) <= rows_ && y.is_contiguous() && y.size(0) == a.size(0) && y.size(1) == N_,
                  "StepGemm (internal): expected at most ", rows_, " rows and a contiguous (rows, ", N_,
                  ") output, got a ", a.sizes(), ", y ", y.sizes());
      const at::Tensor ac = a.contiguous();
      panels::gemm(ac.data_ptr<float>(), K_, a.size(0), w_, N_, K_, y.data_ptr<float>(), N_, false,
                   lo_.data());
      return;
    }
    if (use_onednn_) {
      y.copy_(onednn_linear()->call(a, w_, std::nullopt, "none",
                                    c10::List<std::optional<c10::Scalar>>(), c10::string_view("")));
    } else if (y_lo_.defined()) {
      at::mm_out(y_lo_, a, w_);
      y.copy_(y_lo_);
    } else {
      at::mm_out(y, a, w_);
    }
  }

  at::Tensor w_, a_lo_, y_lo_;
  std::vector<float> lo_;  // panels, bfloat16 weights: a's rows rounded to bfloat16 (panels::gemm)
  int64_t N_ = 0, K_ = 0, rows_ = 0;
  bool mixed_ = false, round_a_ = false, use_onednn_ = false, use_panels_ = false;
};

}  // namespace lstmkit
