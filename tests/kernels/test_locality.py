"""Locality statistics of chunk selections (ramba.kernels.hsa.locality): hand-checked toy cases and the
synthetic / tiled index builders the issue-13 benchmark uses. CPU only, well under a second."""
import pytest
import torch

from ramba.kernels.hsa.locality import distinct_per_block, locality_stats, synth_indices, tile_indices


def _valid(idx, S):
    t = torch.arange(idx.shape[0])[:, None]
    return ((idx < 0) | (idx < t // S)).all()


def test_share_and_distinct_by_hand():
    # S 1, K 2: row t sees chunks < t. Rows 2..5 (first counted row is K * S = 2):
    # row 2 {1, 0} vs row 1 {0, -1}: shares 1 of 2; row 3 {2, 1} vs {1, 0}: 1 of 2;
    # row 4 {2, 1} vs {2, 1}: 2 of 2; row 5 {4, 0} vs {2, 1}: 0 of 2 -> mean (0.5 + 0.5 + 1 + 0) / 4
    idx = torch.tensor([[-1, -1], [0, -1], [1, 0], [2, 1], [2, 1], [4, 0]])
    st = locality_stats(idx, 1, blocks=(2,))
    assert st["rows_counted"] == 4 and st["first_row"] == 2
    assert st["share_prev"] == pytest.approx(0.5)
    assert st["same_as_prev"] == pytest.approx(0.25)
    # blocks of 2 rows from row 2: {1, 0, 2, 1} -> 3 distinct; {2, 1, 4, 0} -> 4 distinct
    assert st["distinct_per_2"] == pytest.approx(3.5)
    assert st["reuse_2"] == pytest.approx(8 / 7)
    # newest visible chunk = t - 1: row 2 has 1, row 3 has 2, row 5 has 4 -> 3 of 8 slots
    assert st["newest_frac"] == pytest.approx(3 / 8)
    assert distinct_per_block(idx, 3).tolist() == [2, 4]     # rows 0-2: {0, 1}; rows 3-5: {2, 1, 4, 0}


def test_accepts_model_layout_and_rejects_groups():
    idx = torch.tensor([[-1, -1], [0, -1], [1, 0], [1, 0]])
    assert locality_stats(idx.view(1, 4, 1, 2), 1)["share_prev"] == pytest.approx(0.75)   # 0.5, then 1
    with pytest.raises(ValueError):
        locality_stats(torch.zeros(1, 4, 2, 2, dtype=torch.long), 1)


@pytest.mark.parametrize("share", [0.0, 0.5, 0.9])
def test_synth_hits_the_requested_share(share):
    g = torch.Generator().manual_seed(13)
    S, K, L = 16, 8, 16384                                   # 1024 chunks at the end: accidental sharing is small
    idx = synth_indices(L, K, S, share, generator=g)
    assert idx.shape == (L, K) and bool(_valid(idx, S))
    assert (idx[:K * S] < 0).any() and not (idx[K * S:] < 0).any()
    assert (idx[:, :-1] >= idx[:, 1:]).all()                 # descending
    st = locality_stats(idx, S, min_pos=L // 2)              # rows with >= 512 visible chunks
    assert st["share_prev"] == pytest.approx(share, abs=0.03)


def test_tile_keeps_validity_and_locality():
    g = torch.Generator().manual_seed(1)
    S, K = 16, 4
    pat = synth_indices(2048, K, S, 0.8, generator=g)
    tiled = tile_indices(pat, 5000, S)
    assert tiled.shape == (5000, K) and bool(_valid(tiled, S))
    assert torch.equal(tiled[:2048], pat) and torch.equal(tile_indices(pat, 100, S), pat[:100])
    # copy 1 is copy 0 shifted by 2048 / 16 = 128 chunks, invalid slots stay -1
    assert torch.equal(tiled[2048:4096], torch.where(pat >= 0, pat + 128, pat))
    a, b = locality_stats(pat, S)["share_prev"], locality_stats(tiled, S)["share_prev"]
    assert b == pytest.approx(a, abs=0.02)
    with pytest.raises(ValueError):
        tile_indices(pat[:2047], 5000, S)
