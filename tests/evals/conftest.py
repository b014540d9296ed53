"""Every test in this folder gets its own cache dir (prompt cache, tiny model), never the user's ~/.cache."""
import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("RAMBA_EVAL_CACHE", str(tmp_path_factory.getbasetemp() / "ramba-eval-cache"))
