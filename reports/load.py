"""The one reader of results folders: records.jsonl + meta.json -> (meta, DataFrame)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ramba.errors import BadInputError
from ramba.evals.records import META_FILE, RECORDS_FILE, SCHEMA_VERSION, read_meta, read_records


def load_results(results_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    d = Path(results_dir)
    if not d.is_dir():
        raise BadInputError(f"results folder {str(d)!r} does not exist; pass the folder a run wrote (results/<run_id>)")
    meta = read_meta(d)
    if meta is None or not (d / RECORDS_FILE).exists():
        raise BadInputError(f"{str(d)!r} is not a results folder (needs {META_FILE} and {RECORDS_FILE}); "
                            "pass the folder a run wrote")
    if meta.get("schema_version", 0) > SCHEMA_VERSION:
        raise BadInputError(f"{str(d)!r} uses records schema {meta.get('schema_version')}, newer than this "
                            f"ramba-eval ({SCHEMA_VERSION}); upgrade ramba-eval")
    rows = read_records(d / RECORDS_FILE)  # read-only: a torn last line is skipped, not repaired
    if not rows:
        raise BadInputError(f"{str(d)!r} holds no finished samples yet; run (or resume) it first")
    df = pd.DataFrame(rows)
    df["correct"] = df["correct"].astype(bool)
    return meta, df
