"""The one reader of results folders: records.jsonl (+ the rank files of an unmerged torchrun run) + meta.json
-> (meta, DataFrame)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ramba.errors import BadInputError
from ramba.evals.merge import read_all, record_files
from ramba.evals.records import META_FILE, RECORDS_FILE, SCHEMA_VERSION, read_meta


def load_results(results_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    d = Path(results_dir)
    if not d.is_dir():
        raise BadInputError(f"results folder {str(d)!r} does not exist; pass the folder a run wrote (results/<run_id>)")
    meta = read_meta(d)
    if meta is None or not record_files(d):
        raise BadInputError(f"{str(d)!r} is not a results folder (needs {META_FILE} and {RECORDS_FILE}); "
                            "pass the folder a run wrote")
    if meta.get("schema_version", 0) > SCHEMA_VERSION:
        raise BadInputError(f"{str(d)!r} uses records schema {meta.get('schema_version')}, newer than this "
                            f"ramba-eval ({SCHEMA_VERSION}); upgrade ramba-eval")
    # Read-only: a torn last line is skipped, not repaired. Rank files count until rank 0 merged them (a rank 0
    # killed before its merge leaves them alone), deduped with records.jsonl.
    rows = read_all(d)
    if not rows:
        raise BadInputError(f"{str(d)!r} holds no finished samples yet; run (or resume) it first")
    df = pd.DataFrame(rows)
    df["correct"] = df["correct"].astype(bool)
    return meta, df
