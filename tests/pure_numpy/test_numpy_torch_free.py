"""``import lstmkit.numpy`` works without torch: load an .npz and run a forward in a fresh
interpreter, then check torch was never imported."""

import subprocess
import sys
import textwrap

import numpy as np

import lstmkit.numpy as ln


def test_inference_from_npz_never_imports_torch(tmp_path):
    rng = np.random.default_rng(0)
    H = 4
    sd = {}
    for sfx in ["", "_reverse"]:
        sd.update({
            f"weight_ih_l0{sfx}": rng.normal(size=(4 * H, 3)).astype(np.float32),
            f"weight_hh_l0{sfx}": rng.normal(size=(4 * H, H)).astype(np.float32),
            f"bias_ih_l0{sfx}": rng.normal(size=4 * H).astype(np.float32),
            f"bias_hh_l0{sfx}": rng.normal(size=4 * H).astype(np.float32),
        })
    path = tmp_path / "lstm.npz"
    ln.save_npz(sd, path)
    x = rng.normal(size=(6, 2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    expected, (h_n, _) = ln.NumpyLSTM(sd)(x)
    np.save(tmp_path / "expected.npy", expected)
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import lstmkit.numpy as ln
        model = ln.NumpyLSTM.from_npz({str(path)!r})
        y, (h_n, c_n) = model(np.load({str(tmp_path / "x.npy")!r}))
        assert y.shape == (6, 2, 8) and h_n.shape == (2, 2, 4), (y.shape, h_n.shape)
        np.testing.assert_allclose(y, np.load({str(tmp_path / "expected.npy")!r}), rtol=1e-6)
        assert 'torch' not in sys.modules, 'torch was imported'
        print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    np.testing.assert_allclose(expected[-1, :, :H], h_n[0])  # forward direction's last step
