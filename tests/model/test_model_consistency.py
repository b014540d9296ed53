"""Full forward == segmented prefill == token-by-token decode, for every architecture, with and without
Mamba resets; prefill(logits="last") == "all" including the decode that follows."""
import pytest
import torch

from .helpers import run_segments, small_model

ARCHS = ["ramba", "swa-hsa", "mamba2", "transformer"]
T = 230
# fp32 throughout; the paths differ only in summation order (chunk boundaries of the SSD scan, blocked
# attention), which moves logits of magnitude ~5 by ~1e-6; 1e-4 is the bound.
TOL = 1e-4


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 256, (2, T), generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("segment", [None, 48], ids=["no-reset", "reset48"])
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_equals_prefill_and_decode(arch, segment, ids):
    model = small_model(arch, mamba_segment=segment)
    with torch.no_grad():
        full = model(ids)
    for sizes in ([T], [100], [64], [63], [1]):
        got = run_segments(model, ids, sizes)
        assert got.shape == full.shape
        err = (got - full).abs().max().item()
        assert err <= TOL, f"{arch} segment sizes {sizes}: max |dlogit| {err:.3g}"


@pytest.mark.parametrize("arch", ["ramba", "mamba2"])
def test_resets_are_real_and_forward_override(arch, ids):
    """mamba_segment changes the output (the consistency above is not vacuous), and forward's override
    mamba_segment=0 equals a model configured without resets."""
    with_reset = small_model(arch, mamba_segment=48)
    without = small_model(arch, mamba_segment=None)
    with torch.no_grad():
        a, b = with_reset(ids), without(ids)
        assert (a[:, :48] - b[:, :48]).abs().max() < TOL          # identical before the first reset
        assert (a[:, 48:] - b[:, 48:]).abs().max() > 1e-2
        assert (with_reset(ids, mamba_segment=0) - b).abs().max() < TOL


def test_hsa_changes_output(ids):
    """HSA contributes at this init, so consistency checks exercise it: tokens t >= S differ without it."""
    model = small_model("ramba")
    with torch.no_grad():
        on, off = model(ids), model(ids, hsa_enabled=False)
    S = model.cfg.chunk_size
    assert (on[:, S:] - off[:, S:]).abs().max() > 1e-1


@pytest.mark.parametrize("arch", ["ramba", "mamba2", "swa-hsa"])
def test_prefill_last_equals_all_and_following_decode(arch, ids):
    model = small_model(arch, mamba_segment=48)
    s_all, s_last = model.allocate_state(2), model.allocate_state(2)
    la, s_all = model.prefill(ids[:, :170], s_all, logits="all")
    ll, s_last = model.prefill(ids[:, :170], s_last, logits="last")
    assert ll.shape == (2, 1, 256)
    assert (la[:, -1:] - ll).abs().max() <= TOL
    # a second long call, then decode: the skipped upper-stack tokens must not matter later
    la, s_all = model.prefill(ids[:, 170:220], s_all, logits="all")
    ll, s_last = model.prefill(ids[:, 170:220], s_last, logits="last")
    assert (la[:, -1:] - ll).abs().max() <= TOL
    for t in range(220, T):
        da, s_all = model.decode(ids[:, t], s_all)
        dl, s_last = model.decode(ids[:, t], s_last)
        assert (da - dl).abs().max() <= TOL
    assert s_all.pos == s_last.pos == T


def test_state_tracks_position_and_memory(ids):
    model = small_model("ramba")
    state = model.allocate_state(2)
    _, state = model.prefill(ids[:, :70], state)
    S = model.cfg.chunk_size
    assert state.pos == 70 and state.memory.num_chunks == 70 // S and state.buffer_len == 70 % S
    _, state = model.decode(ids[:, 70], state)
    assert state.pos == 71 and state.nbytes() > 0
