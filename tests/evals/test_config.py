import pytest

from ramba.errors import BadInputError
from ramba.evals.config import RunConfig, load_run_config


def test_hash_ignores_out_and_report_only():
    a = RunConfig(model="oracle", lengths="1K,2K")
    assert a.config_hash() == a.replace(out="/elsewhere", report=False).config_hash()
    assert a.config_hash() != a.replace(seed=1).config_hash()
    assert a.config_hash() != a.replace(lengths="1K").config_hash()
    assert a.run_id.startswith("passkey-oracle-")


def test_yaml_and_toml_agree(tmp_path):
    (tmp_path / "c.yaml").write_text("task: passkey\nlengths: 1K..4K\ndepths: 3\nsamples: 2\nmodel: dummy\n")
    (tmp_path / "c.toml").write_text('task = "passkey"\nlengths = ["1K", "2K", "4K"]\ndepths = [0, 0.5, 1]\n'
                                     'samples = 2\nmodel = "dummy"\n')
    y, t = load_run_config(tmp_path / "c.yaml"), load_run_config(tmp_path / "c.toml")
    assert y == t and y.lengths == (1024, 2048, 4096) and y.depths == (0.0, 0.5, 1.0)


@pytest.mark.parametrize("text,match", [("lenghts: 1K\n", "unknown run config key"), ("- 1\n", "mapping"),
                                        ("samples: 0\n", "samples"), ("depths: 2.0\n", "outside"),
                                        ("a: [\n", "cannot parse")])
def test_bad_config_files(tmp_path, text, match):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(BadInputError, match=match):
        load_run_config(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        load_run_config(tmp_path / "nope.yaml")
