// The Python bindings of the fused kernels: one registry of entry points (see kernels.h).
#include <torch/extension.h>

#include <map>
#include <string>

#include "kernels.h"
#include "panels.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rnn_forward", &rnn_forward, "fused Elman RNN sequence forward");
  m.def("rnn_backward", &rnn_backward, "fused Elman RNN sequence backward");
  m.def("gru_forward", &gru_forward, "fused GRU (reset_after) sequence forward");
  m.def("gru_backward", &gru_backward, "fused GRU (reset_after) sequence backward");
  m.def("gru_cho_forward", &gru_cho_forward, "fused GRU (reset_after=False, Cho) sequence forward");
  m.def("gru_cho_backward", &gru_cho_backward, "fused GRU (reset_after=False, Cho) sequence backward");
  m.def("lstm_forward", &lstm_forward, "fused LSTM sequence forward");
  m.def("lstm_backward", &lstm_backward, "fused LSTM sequence backward");
  m.def("lstm_step", &lstm_step, "fused LSTM streaming step (no autograd)");
  m.def("panel_isa", [] {
    const auto& i = lstmkit::panels::isa();
    return std::map<std::string, bool>{{"avx2", i.avx2}, {"avx512", i.avx512}, {"avx512_bf16", i.bf16},
                                       {"avx512_vnni", i.vnni}, {"onednn_bf16", i.onednn_bf16}};
  }, "the vector paths this process runs: {avx2, avx512, avx512_bf16, avx512_vnni, onednn_bf16}");
  m.def("set_isa", &lstmkit::panels::set_isa, "the CPU probe's answer (never above what the CPU reports)",
        pybind11::arg("avx2"), pybind11::arg("avx512"), pybind11::arg("bf16"), pybind11::arg("vnni"),
        pybind11::arg("onednn_bf16"));
  // module_local: two builds of these kernels can be loaded side by side (benchmarks.rnn --before)
  pybind11::class_<LstmStepper>(m, "LstmStepper", pybind11::module_local(),
                                "packed streaming LSTM step (no autograd)")
      .def(pybind11::init<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                          at::Tensor, bool, int64_t>())
      .def("step", &LstmStepper::step, "x (B, I), h (B, H), c (B, H) -> [h, c]")
      .def("weight_bytes", &LstmStepper::weight_bytes, "bytes of the packed weights a step reads");
}
