"""SQL that revisions apply lives beside them in db/migrations/sql/<revision>/ (or <revision>.sql)
so long functions stay readable as SQL; a revision reads its own files, in name order."""

from __future__ import annotations

from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent / "sql"


def sql_files(name: str) -> list[str]:
    folder = SQL_DIR / name
    if folder.is_dir():
        return [path.read_text() for path in sorted(folder.glob("*.sql"))]
    return [(SQL_DIR / f"{name}.sql").read_text()]
