"""Dry-run estimates: counts are exact; memory comes from the model's config.json by the stated formulas."""
import json

from ramba.evals.config import RunConfig
from ramba.evals.plan import estimate, format_plan


def test_counts_and_hf_kv_cache(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"num_hidden_layers": 3, "num_attention_heads": 8,
                                               "num_key_value_heads": 2, "hidden_size": 256}))
    (d / "model.safetensors").write_bytes(b"\0" * 1000)
    cfg = RunConfig(model=f"hf:{d}", lengths="4K..64K", depths="0,1", samples=3, device="cpu")
    p = estimate(cfg)
    assert p.samples == 5 * 2 * 3 and p.max_length == 65536
    assert p.prompt_tokens == sum(4096 << i for i in range(5)) * 6
    assert p.weights_bytes == 1000
    assert p.state_bytes_at_max == 2 * 3 * 2 * 32 * 4 * 65536  # K,V x layers x kv heads x head dim x fp32 x L
    text = format_plan(cfg, p)
    assert "30  (5 lengths x 2 depths x 3)" in text and "4K,8K,16K,32K,64K" in text


def test_ramba_chunk_memory(tmp_path):
    d = tmp_path / "ck"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"arch": "ramba", "hsa_kv_heads": 2, "hsa_head_dim": 32,
                                               "retrieval_dim": 128, "chunk_size": 64}))
    p = estimate(RunConfig(model=f"ramba:{d}", lengths="1M", device="cuda"))
    assert p.state_bytes_at_max == (2 * 2 * 32 + 128 // 64) * 4 * (1 << 20)  # fp32, as the backend loads it
    assert estimate(RunConfig(model="ramba:tiny", lengths="1M", device="cpu")).state_bytes_at_max > 0
