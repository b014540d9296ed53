"""transformers >= 5.25 imports the Hub's `kernels` package; from the checkout's root our kernels/ folder has the
same top-level name. With ramba.hub_kernels.shield_hub_kernels() called first, transformers (and the hf backend
through it) import from the checkout's root; without it they fail there (the check that the test can fail)."""
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMPORT = "import transformers.integrations.hub_kernels"


def _run(code: str) -> subprocess.CompletedProcess:
    # python -c puts the current folder (here: the checkout's root) first on sys.path, as python -m pytest does
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_transformers_imports_from_the_checkout_root():
    shielded = _run(f"from ramba.hub_kernels import shield_hub_kernels; shield_hub_kernels(); {IMPORT}")
    assert shielded.returncode == 0, shielded.stderr[-2000:]


def test_without_the_shield_our_kernels_folder_shadows_the_hub_package():
    try:
        importlib.metadata.distribution("kernels")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the Hub's kernels package is not installed (transformers < 5.25): nothing is shadowed")
    plain = _run("import kernels, os; print(os.path.dirname(kernels.__file__))")
    assert Path(plain.stdout.strip()) == ROOT / "kernels"     # the name resolves to ours from the root
    shielded = _run("from ramba.hub_kernels import shield_hub_kernels; shield_hub_kernels(); import kernels, os; "
                    "print(os.path.dirname(kernels.__file__))")
    assert Path(shielded.stdout.strip()) != ROOT / "kernels", shielded.stderr[-2000:]
