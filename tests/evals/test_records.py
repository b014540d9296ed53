import json

import pytest

from ramba.errors import BadInputError
from ramba.evals.records import read_records


def test_torn_tail_repaired_and_corrupt_middle_refused(tmp_path):
    p = tmp_path / "records.jsonl"
    rows = [{"sample_id": f"s{i}", "v": i * 1.5} for i in range(3)]
    good = "".join(json.dumps(r) + "\n" for r in rows).encode()
    p.write_bytes(good + b'{"sample_id": "s3", "v"')
    assert read_records(p) == rows and p.read_bytes() != good   # plain read leaves the file alone
    assert read_records(p, repair=True) == rows and p.read_bytes() == good
    p.write_bytes(good.replace(b'"s1"', b'"s1'))
    with pytest.raises(BadInputError, match="line 2 is corrupt"):
        read_records(p, repair=True)
    assert read_records(tmp_path / "none.jsonl") == []
