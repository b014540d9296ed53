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


@pytest.mark.parametrize("phase", [1, 17, 47])
@pytest.mark.parametrize("arch", ["ramba", "mamba2"])
def test_reset_phase_forward_equals_prefill_and_decode(arch, phase, ids):
    """An end-anchored reset grid (resets at p % 48 == phase) keeps the three paths equal."""
    model = small_model(arch, mamba_segment=48)
    with torch.no_grad():
        full = model(ids, reset_phase=phase)
        grid0 = model(ids)
    # the phase is real: identical up to the first reset of either grid, different after it
    assert (full[:, :phase] - grid0[:, :phase]).abs().max() < TOL
    assert (full[:, 48:] - grid0[:, 48:]).abs().max() > 1e-2
    for sizes in ([T], [100], [63], [1]):
        got = run_segments(model, ids, sizes, reset_phase=phase)
        err = (got - full).abs().max().item()
        assert err <= TOL, f"{arch} phase {phase} segment sizes {sizes}: max |dlogit| {err:.3g}"


@pytest.mark.parametrize("length", [47, 48, 49, 95, 96, 97, 170, 229])
def test_prompt_length_anchors_last_reset(length, ids):
    """allocate_state(prompt_length=L) puts the last reset exactly reset_tail tokens before L, for every L
    mod the segment, and prefill(logits="last") on that state equals the full forward with the same phase."""
    model = small_model("ramba", mamba_segment=48, reset_tail=20)
    phase = model.reset_phase_for(length)
    resets = [p for p in range(1, length + 1) if p % 48 == phase]
    assert resets and length - resets[-1] == 20 if length > 20 else True
    state = model.allocate_state(2, prompt_length=length)
    assert state.reset_phase == phase
    last, state = model.prefill(ids[:, :length], state, logits="last")
    with torch.no_grad():
        full = model(ids[:, :length + 1], reset_phase=phase)
    assert (last[:, 0] - full[:, length - 1]).abs().max() <= TOL
    nxt, state = model.decode(ids[:, length], state)
    assert (nxt - full[:, length]).abs().max() <= TOL


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


@pytest.mark.parametrize("phase", [0, 5, 47])
@pytest.mark.parametrize("piece", [48, 60, 100, 7])
@pytest.mark.parametrize("arch", ["ramba", "mamba2", "swa-hsa"])
def test_prefill_stream_equals_full_forward(arch, piece, phase, ids):
    """A prompt fed by prefill_stream in pieces (re-cut on reset boundaries, every call but the last with
    logits="none", which skips the upper stack when the call ends on a boundary), then decode: the same logits
    as one full forward; every call but the last ends on a boundary, at most a piece + one spacing long."""
    model = small_model(arch, mamba_segment=48)
    full = run_segments(model, ids, [T], reset_phase=phase)                     # [B, T, V]
    state = model.allocate_state(2)
    state.reset_phase = phase
    calls = []
    real = model.prefill

    def spy(x, st, logits="all"):
        calls.append((st.pos, x.shape[1], logits))
        return real(x, st, logits=logits)

    model.prefill = spy
    out, state = model.prefill_stream((ids[:, s:min(s + piece, 200)] for s in range(0, 200, piece)), state)
    del model.prefill
    assert sum(n for _, n, _ in calls) == 200 and calls[-1][2] == "last"
    assert all(mode == "none" for _, _, mode in calls[:-1])
    if arch != "swa-hsa":
        shift = (48 - phase % 48) % 48
        assert all((p + n + shift) % 48 == 0 for p, n, _ in calls[:-1])
        assert all(n <= piece + 48 for _, n, _ in calls)
    assert (out[:, 0] - full[:, 199]).abs().max() <= TOL
    for t in range(200, T):
        d, state = model.decode(ids[:, t], state)
        assert (d - full[:, t]).abs().max() <= TOL


def test_prefill_stream_gathers_offloaded_memory_once(ids):
    """Offloaded memory through prefill_stream: the middle calls run no retrieval, so the host memory is
    gathered from once (the last call), where fixed pieces with logits="last" gather once per piece."""
    model = small_model("ramba", mamba_segment=48)
    host = dict(memory="host", block_bytes=1 << 16, first_block_bytes=1)
    state = model.allocate_state(2, **host)
    model.prefill_stream((ids[:, s:s + 50] for s in range(0, 200, 50)), state)
    assert state.memory.gathers == 1
    state = model.allocate_state(2, **host)
    for s in range(0, 200, 50):
        model.prefill(ids[:, s:s + 50], state, logits="last")
    assert state.memory.gathers == 4


def test_prefill_stream_rejects_an_empty_prompt():
    from ramba.errors import BadInputError
    model = small_model("ramba")
    with pytest.raises(BadInputError, match="empty prompt"):
        model.prefill_stream(iter([]), model.allocate_state(2))


def test_prefill_rejects_unknown_logits_mode(ids):
    from ramba.errors import BadInputError
    model = small_model("ramba")
    with pytest.raises(BadInputError, match="'all', 'last' or 'none'"):
        model.prefill(ids[:, :10], model.allocate_state(2), logits="first")
