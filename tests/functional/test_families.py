"""Every registered family, every option combination, from the registry alone: the hand BPTT
passes gradcheck, equals autograd of the family's eager oracle, a padded batch equals each
sequence alone, and the fused engine (where the family has one) equals the reference. A new
family gets these tests by registering."""

import pytest
import torch

from lstmkit import kernels
from lstmkit.functional import registry
from lstmkit.functional._common import Masks
from lstmkit.testing import assert_matches_autograd, call_family, family_case

CASES = [(f, o) for f in registry.families() for o in f.option_grid()]
IDS = [f.name + "".join(f"-{k}={v}" for k, v in o.items() if v != next(x.default for x in f.options
                                                                     if x.name == k))
       for f, o in CASES]


def flat(x, state, p):
    return (x, *state, *[t for t in p if t is not None])


@pytest.mark.parametrize("family,opts", CASES, ids=IDS)
def test_hand_bptt_passes_gradcheck_with_every_mask(family, opts):
    x, state, p, masks = family_case(family, opts, T=3)
    assert torch.autograd.gradcheck(
        lambda *a: call_family(family.reference, family, opts, masks, p, *a), flat(x, state, p))


@pytest.mark.parametrize("family,opts", CASES, ids=IDS)
def test_hand_bptt_equals_autograd_of_the_eager_oracle(family, opts):
    x, state, p, masks = family_case(family, opts)
    assert_matches_autograd(lambda *a: call_family(family.reference, family, opts, masks, p, *a),
                            lambda *a: call_family(family.oracle(), family, opts, masks, p, *a),
                            flat(x, state, p))


@pytest.mark.parametrize("family,opts", CASES, ids=IDS)
def test_padded_batch_equals_each_sequence_alone(family, opts):
    lengths = [4, 2, 0]
    x, state, p, _ = family_case(family, opts, lengths=lengths)
    masks = family_case(family, opts, lengths=lengths)[3]
    pad = Masks(keep_c=None if masks.keep_c is None else 1 - masks.out, keep_h=1 - masks.out,
                out=masks.out)
    with torch.no_grad():
        y, *final = family.run("reference", x, state, p, pad, opts)
        for b, n in enumerate(lengths):
            if n == 0:
                for s, s0 in zip(final, state):
                    torch.testing.assert_close(s[b], s0[b])  # nothing ran: the state is kept
                assert y[:, b].abs().sum() == 0
                continue
            y1, *f1 = family.run("reference", x[:n, b : b + 1], [s[b : b + 1] for s in state], p,
                                 Masks(), opts)
            torch.testing.assert_close(y[:n, b : b + 1], y1)
            assert y[n:, b].abs().sum() == 0
            for s, s1 in zip(final, f1):
                torch.testing.assert_close(s[b : b + 1], s1)


FUSED = [(f, o) for f, o in CASES if f.fused is not None]


@pytest.mark.parametrize("family,opts", FUSED, ids=[i for (f, o), i in zip(CASES, IDS) if f.fused])
def test_fused_engine_equals_reference_where_it_serves(family, opts):
    if not kernels.available():
        pytest.skip("the fused kernels could not be built here")
    x, state, p, masks = family_case(family, opts)
    if not family.fused_serves(opts):  # options the kernels lack: the engine is never offered
        assert "fused" not in family.engines(opts)
        return
    if not family.fused_ok(x, p, masks, opts):
        with pytest.raises(ValueError):
            getattr(family.fused_module(), family.name)(x, *state, p, masks,
                                                         **family.call_options(opts))
        return
    fused = getattr(family.fused_module(), family.name)
    assert_matches_autograd(
        lambda *a: call_family(fused, family, opts, masks, p, *a),
        lambda *a: call_family(family.reference, family, opts, masks, p, *a),
        flat(x, state, p), rtol=1e-9, atol=1e-10)
