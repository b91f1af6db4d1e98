// Shared by the kernels: optional-tensor test, thread grain, and the boundary checks every C++
// entry point runs before touching a raw pointer (TORCH_CHECK raises a Python RuntimeError
// naming the argument and expected vs got).
#pragma once
#include <torch/extension.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

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

inline void check_floating(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.defined() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble),
              name, ": expected a float32 or float64 tensor");
  TORCH_CHECK(t.device().is_cpu(), name, ": expected a CPU tensor, got device ", t.device());
  TORCH_CHECK(t.dim() == 3, name, ": expected a 3-D (T, B, *) tensor, got ", t.dim(), "-D");
}

}  // namespace lstmkit
