"""The results index: every collected run of every campaign under one results folder, in one
SQLite file, ``<results_dir>/index.sqlite``, read back as pandas DataFrames
(docs/results-index.md).

The API (stable; the analysis side uses it)::

    query(results_dir, where=None, columns=None) -> pandas.DataFrame
        One row per indexed run. ``where`` maps a column to a value (equality), to a list,
        tuple or set of values (membership, SQL ``IN``) or to None (the cell is empty); the
        conditions are ANDed. ``columns`` names the columns to return (default: all of
        them, in spikescale.columns' order, then results_path, collected_at, indexed_at).
        Rows come ordered by results_path, then run_id. Types follow Column.kind: str as
        object (None where empty), int as Int64, float as float64 (NaN where empty), bool
        as pandas' boolean.
    register(runs_csv, db) -> int        what collect calls: replace the campaign's rows
    rebuild(results_dir) -> int          the index again, from every campaign's runs.csv

    python -m spikescale.index query <results_dir> --where backend=nest --where seed=1,2
    python -m spikescale.index rebuild <results_dir>

The table's columns are spikescale.columns.COLUMNS (typed from Column.kind), so a column
added there is added to an existing index (ALTER TABLE) the next time a campaign is
registered, plus results_path (the campaign folder, relative to the results folder),
collected_at (when collect wrote that runs.csv) and indexed_at (when the row was written).

This module imports nothing of the run side (tests/test_imports.py): spikescale.store
imports it, never the other way round, and the analysis reads the index through it.
"""

from __future__ import annotations

import argparse
import math
import re
import sqlite3
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from spikescale.columns import COLUMNS

INDEX_NAME = "index.sqlite"
TABLE = "runs"
# A collect waits this long for another's transaction (a rebuild of a million runs holds
# the lock for a minute or two) before it gives up, naming the file.
BUSY_TIMEOUT_S = 600.0
# PRAGMA application_id: tells a spikescale index from any other SQLite file ("spkx").
APPLICATION_ID = 0x73706B78

# Columns of the index beyond runs.csv's: where the row came from and when.
EXTRA = (
    ("results_path", "str", "the campaign folder, relative to the results folder (absolute when outside it)"),
    ("collected_at", "str", "when collect wrote the campaign's runs.csv (its modification time), ISO 8601 UTC"),
    ("indexed_at", "str", "when this row was written into the index, ISO 8601 UTC"),
)
RUNS_CSV = frozenset(c.name for c in COLUMNS)
KIND = {c.name: c.kind for c in COLUMNS} | {name: kind for name, kind, _ in EXTRA}
ORDER = tuple(KIND)  # runs.csv's columns in spikescale.columns' order, then EXTRA
SQL_TYPE = {"str": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "INTEGER"}
# The filters the analysis uses, indexed where spikescale.columns has them: each alone, and
# machine/backend/variant/status together (the usual "these runs of this software here").
# No ANALYZE: statistics taken of a small index would go stale as it grows, and without
# them SQLite's planner takes an index for any equality on its columns, which is the point.
INDEXED = ("campaign", "machine", "backend", "variant", "status")
COMPOSITE = ("machine", "backend", "variant", "status")
# File systems on which SQLite's WAL does not work (its shared memory is per host):
# there the index uses the rollback journal, which only needs the file system's locks.
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs",
              "fuse.glusterfs", "fuse.sshfs", "fuse.s3fs", "9p", "panfs", "ocfs2", "gfs2")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
for _name in ORDER:  # a column name goes into SQL text; refuse anything but an identifier
    if not _NAME.match(_name):
        raise ValueError(f"spikescale.columns: column name {_name!r} is not an identifier")
if len(ORDER) != len(COLUMNS) + len(EXTRA):
    raise ValueError(f"spikescale.columns declares a column the index adds itself: {[n for n, _, _ in EXTRA]}")


class ResultsIndexError(Exception):
    """The index or a runs.csv cannot be read or written; the message names the file."""


def index_path(results_dir: str | Path) -> Path:
    return Path(results_dir) / INDEX_NAME


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# ---------------------------------------------------------------- values

_TRUE, _FALSE = {"true", "1", "1.0", "yes"}, {"false", "0", "0.0", "no"}


def _sql_value(kind: str, value):
    """A cell as SQLite stores it: text from runs.csv or a Python value; None when empty
    (runs.csv's empty cell: "does not apply" or "not measured", never zero)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, str):
        if kind != "str":
            value = value.strip()
        if value == "" or (kind != "str" and value.lower() == "nan"):
            return None
    if kind == "str":
        return str(value)
    if kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        text = str(value).lower()
        if text in _TRUE or text in _FALSE:
            return int(text in _TRUE)
        raise ValueError(f"{value!r} is not a bool (True/False)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not {'an integer' if kind == 'int' else 'a number'}") from None
    if kind == "int":
        try:
            return int(value)  # exact, also beyond 2**53
        except (TypeError, ValueError):
            if not number.is_integer():  # "3.0" is how pandas writes an int column that has empties
                raise ValueError(f"{value!r} is not an integer") from None
            return int(number)
    return None if math.isnan(number) else number


def _column(kind: str, text: pd.Series) -> list:
    """One runs.csv column, read as text, as SQLite values; a whole column at a time (a
    campaign of 10,000 runs has over a million cells). ValueError at the first bad cell:
    (its position, why)."""
    if kind == "str":
        return [None if v == "" else v for v in text.tolist()]
    stripped = text.str.strip()
    empty = stripped.eq("") | stripped.str.lower().eq("nan")
    if kind == "bool":
        flags = stripped.str.lower().map(dict.fromkeys(_TRUE, 1) | dict.fromkeys(_FALSE, 0))
        bad = flags.isna() & ~empty
    else:
        numbers = pd.to_numeric(stripped.mask(empty), errors="coerce").astype(float)
        bad = numbers.isna() & ~empty
        if kind == "int":
            bad |= numbers.notna() & (numbers % 1 != 0)
    if bad.any():
        position = int(bad.to_numpy().nonzero()[0][0])
        try:
            _sql_value(kind, text.iloc[position])
        except ValueError as exc:
            raise ValueError(position, str(exc)) from None
        raise ValueError(position, f"{text.iloc[position]!r} is not a(n) {kind}")
    if kind == "bool":
        return [None if math.isnan(v) else int(v) for v in flags.tolist()]  # NaN: an empty cell
    if kind == "int":
        return [None if math.isnan(v) else int(v) for v in numbers.tolist()]
    return [None if math.isnan(v) else v for v in numbers.tolist()]


def _rows_of_csv(runs_csv: Path) -> tuple[list[str], list[tuple]]:
    """(the index's columns that runs.csv has, its rows as SQLite values). Read as text,
    so that a job id or a commit made of digits stays what it was."""
    try:
        frame = pd.read_csv(runs_csv, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise ResultsIndexError(f"{runs_csv}: empty file, not a runs.csv (no header)") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ResultsIndexError(f"{runs_csv}: cannot be read as a runs.csv: {exc}") from None
    if "run_id" not in frame.columns:
        raise ResultsIndexError(f"{runs_csv}: no run_id column, not a runs.csv (columns: {list(frame.columns)[:5]})")
    if frame["run_id"].str.strip().eq("").any():  # the key; SQLite would let NULLs repeat in it
        row = int(frame["run_id"].str.strip().eq("").to_numpy().nonzero()[0][0]) + 1
        raise ResultsIndexError(f"{runs_csv}: row {row} has no run_id")
    unknown = [c for c in frame.columns if c not in RUNS_CSV]
    if unknown:  # written by another version of spikescale.columns: kept in runs.csv, not indexed
        print(f"index: {runs_csv}: columns not in spikescale.columns, not indexed: {', '.join(unknown)}",
              file=sys.stderr)
    names = [c for c in frame.columns if c not in unknown]
    columns = []
    for name in names:
        try:
            columns.append(_column(KIND[name], frame[name]))
        except ValueError as exc:
            position, why = exc.args
            raise ResultsIndexError(f"{runs_csv}: row {position + 1} (run {frame['run_id'].iloc[position]!r}), "
                                    f"column {name} ({KIND[name]}): {why}") from None
    return names, list(zip(*columns)) if columns else []


# ---------------------------------------------------------------- the database

def _mount_fstype(path: Path) -> str | None:
    """The file system type of the mount that holds path (Linux /proc/self/mounts), or None."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    target, best, fstype = str(path.resolve()), -1, None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, fstype = len(point), fields[2]
    return fstype


def journal_mode(db: Path) -> str:
    """WAL where the folder is on a local file system (readers never wait for a writer);
    the rollback journal on a network file system, where WAL's shared memory would not be
    shared between hosts and concurrent collects could corrupt the file."""
    fstype = _mount_fstype(db.parent)
    return "DELETE" if fstype and fstype.lower() in NETWORK_FS else "WAL"


def _retry_locked(action, db: Path):
    """Run action(); a few retries where SQLite answers "locked" without waiting (changing
    the journal mode of a file others have open does not use the busy timeout)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise ResultsIndexError(f"{db}: {exc}") from None
            time.sleep(0.05)


def connect(db: str | Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit: BEGIN IMMEDIATE), with the
    busy timeout and journal mode set; refuses a SQLite file that is not a results index."""
    db = Path(db)
    if readonly and not db.is_file():
        raise ResultsIndexError(f"{db}: no results index there; collect a campaign, or build it from the "
                                f"campaigns' runs.csv: python -m spikescale.index rebuild {db.parent}")
    if not readonly:
        db.parent.mkdir(parents=True, exist_ok=True)
    uri = f"{db.resolve().as_uri()}?mode=ro" if readonly else str(db)
    try:
        conn = sqlite3.connect(uri, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=readonly)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        app = conn.execute("PRAGMA application_id").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ResultsIndexError(f"{db}: not a readable SQLite file ({exc}); delete it and run: "
                                f"python -m spikescale.index rebuild {db.parent}") from None
    if app not in (0, APPLICATION_ID):
        conn.close()
        raise ResultsIndexError(f"{db}: a SQLite file of another application (application_id {app:#x}), "
                                "not a spikescale results index; move it away")
    if not readonly:
        mode = journal_mode(db)
        _retry_locked(lambda: conn.execute(f"PRAGMA journal_mode = {mode}").fetchone(), db)
        conn.execute("PRAGMA synchronous = NORMAL" if mode == "WAL" else "PRAGMA synchronous = FULL")
        # a rebuild's one transaction grows the WAL to the size of the index; cut it back after
        conn.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
    return conn


def _q(name: str) -> str:
    return f'"{name}"'


def _table_columns(conn: sqlite3.Connection) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")]


def _ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the table, or add the columns spikescale.columns gained since it was made;
    inside the caller's write transaction, so two processes never both add one."""
    have = _table_columns(conn)
    if not have:
        columns = ", ".join(f'"{name}" {SQL_TYPE[KIND[name]]}' for name in ORDER)
        conn.execute(f'CREATE TABLE {TABLE} ({columns}, PRIMARY KEY ("results_path", "run_id"))')
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for name in ORDER:
        if name not in have and have:
            conn.execute(f'ALTER TABLE {TABLE} ADD COLUMN "{name}" {SQL_TYPE[KIND[name]]}')
    wanted = [[name] for name in INDEXED if name in KIND]
    wanted += [[name for name in COMPOSITE if name in KIND], ["run_id", "file_sha256"]]
    names = {f"{TABLE}_{'_'.join(columns)}": columns for columns in wanted}
    # an index made before columns.py grew (the composite one without a newer column) goes
    stale = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                                            "AND sql IS NOT NULL", (TABLE,)) if row[0] not in names]
    for name in stale:
        conn.execute(f"DROP INDEX {_q(name)}")
    for name, columns in names.items():
        conn.execute(f"CREATE INDEX IF NOT EXISTS {_q(name)} ON {TABLE} ({', '.join(map(_q, columns))})")


class _WriteTransaction:
    """BEGIN IMMEDIATE (the write lock first, waiting up to the busy timeout) ... COMMIT, or
    ROLLBACK on any error: a campaign's rows are replaced entirely or not at all."""

    def __init__(self, conn: sqlite3.Connection, db: Path):
        self.conn, self.db = conn, db

    def __enter__(self):
        _retry_locked(lambda: self.conn.execute("BEGIN IMMEDIATE"), self.db)
        return self.conn

    def __exit__(self, kind, exc, tb):
        if kind is None:
            _retry_locked(lambda: self.conn.execute("COMMIT"), self.db)
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        return False


def _results_path(campaign_dir: Path, db: Path) -> str:
    folder, root = campaign_dir.resolve(), db.parent.resolve()
    return folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)


def _insert_campaign(conn: sqlite3.Connection, runs_csv: Path, db: Path) -> int:
    """Replace the rows of runs_csv's campaign folder with the rows it has now."""
    names, rows = _rows_of_csv(runs_csv)
    results_path = _results_path(runs_csv.parent, db)
    collected_at = datetime.fromtimestamp(runs_csv.stat().st_mtime, UTC).isoformat(timespec="microseconds")
    conn.execute(f'DELETE FROM {TABLE} WHERE "results_path" = ?', (results_path,))
    columns = names + ["results_path", "collected_at", "indexed_at"]
    sql = f"INSERT INTO {TABLE} ({', '.join(map(_q, columns))}) VALUES ({', '.join('?' * len(columns))})"
    indexed_at = _now()
    try:
        conn.executemany(sql, (row + (results_path, collected_at, indexed_at) for row in rows))
    except sqlite3.IntegrityError as exc:
        raise ResultsIndexError(f"{runs_csv}: {exc} (a run id twice in one runs.csv?)") from None
    return len(rows)


def register(runs_csv: str | Path, db: str | Path) -> int:
    """Index a campaign as collect left it: replace, in one transaction, the rows of
    runs_csv's campaign folder with that runs.csv's rows (a re-run has its new checksum, a
    run set aside is gone). runs.csv is read inside the transaction, so when two collects
    of one campaign race, the index holds the runs.csv that is on disk at the end. Returns
    the number of rows."""
    runs_csv, db = Path(runs_csv), Path(db)
    conn = connect(db)
    try:
        with _WriteTransaction(conn, db):
            _ensure_schema(conn)
            return _insert_campaign(conn, runs_csv, db)
    finally:
        conn.close()


def campaigns(results_dir: str | Path) -> list[Path]:
    """The runs.csv of every campaign folder directly under results_dir."""
    return sorted(Path(results_dir).glob("*/runs.csv"))


def rebuild(results_dir: str | Path) -> int:
    """The index again from the runs.csv of every campaign under results_dir (what collect
    registered: the admitted runs, with the checksums and verdicts collect computed), in
    one transaction: a collect that runs meanwhile waits and then registers on top. Rows
    of campaign folders that no longer exist are dropped. Returns the number of rows."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsIndexError(f"{results_dir}: no such results folder")
    db = index_path(results_dir)
    conn = connect(db)
    total = 0
    try:
        with _WriteTransaction(conn, db):
            _ensure_schema(conn)
            conn.execute(f"DELETE FROM {TABLE}")
            for runs_csv in campaigns(results_dir):
                total += _insert_campaign(conn, runs_csv, db)
    finally:
        conn.close()
    return total


# ---------------------------------------------------------------- reading

def _condition(name: str, value, present: set[str]) -> tuple[str | None, list]:
    """SQL for one filter: (condition, parameters); condition None when the filter is on a
    column this index does not have yet (all its cells empty): "FALSE" unless it asks for None."""
    values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    try:
        typed = [_sql_value(KIND[name], v) for v in values]
    except ValueError as exc:
        raise ResultsIndexError(f"where {name}={value!r}: {exc}") from None
    wants_empty = any(v is None for v in typed)
    known = [v for v in typed if v is not None]
    if name not in present:
        return (None if wants_empty else "0"), []
    parts = []
    if known:
        parts.append(f'"{name}" = ?' if len(known) == 1 else f'"{name}" IN ({", ".join("?" * len(known))})')
    if wants_empty:
        parts.append(f'"{name}" IS NULL')
    if not parts:  # an empty list: nothing matches
        return "0", []
    return ("(" + " OR ".join(parts) + ")" if len(parts) > 1 else parts[0]), known


def _check_names(names: Iterable[str], what: str) -> None:
    unknown = [n for n in names if n not in KIND]
    if unknown:
        raise ResultsIndexError(f"{what}: unknown column(s) {unknown}; the index has spikescale.columns' columns "
                                f"and {[n for n, _, _ in EXTRA]}")


def _typed_frame(rows: list[tuple], names: list[str]) -> pd.DataFrame:
    """The rows as a DataFrame, each column typed from its kind (text stays object, with None
    where empty, whatever pandas' default string type is). Built column by column: a
    DataFrame made from the rows first costs as much again (tests/benchmarks/index_1m.py)."""
    cells = list(zip(*rows)) if rows else [()] * len(names)
    data = {}
    for name, column in zip(names, cells):
        kind = KIND[name]
        if kind == "float":
            values = np.fromiter((math.nan if v is None else v for v in column), dtype=float, count=len(column))
        elif kind == "int":
            values = pd.array(column, dtype="Int64")
        elif kind == "bool":
            values = pd.array([None if v is None else bool(v) for v in column], dtype="boolean")
        else:
            values = np.array(column, dtype=object)
        data[name] = pd.Series(values, dtype=values.dtype, copy=False)
    return pd.DataFrame(data, columns=names, copy=False)


def query(results_dir: str | Path, where: Mapping | None = None, columns: Iterable[str] | None = None
          ) -> pd.DataFrame:
    """The indexed runs as a DataFrame (see the module docstring). Reads only: the index
    must exist (collect or ``python -m spikescale.index rebuild <results_dir>`` makes it).

    >>> query("results", where={"backend": "nest", "status": "ok", "threads_per_task": [1, 2]},
    ...       columns=["campaign", "run_id", "rtf"])
    """
    where = dict(where or {})
    names = list(ORDER) if columns is None else list(columns)
    _check_names(where, "where")
    _check_names(names, "columns")
    db = index_path(results_dir)
    conn = connect(db, readonly=True)
    try:
        present = set(_table_columns(conn))
        if not present:
            return _typed_frame([], names)
        conditions, params = [], []
        for name, value in where.items():
            condition, values = _condition(name, value, present)
            if condition is not None:
                conditions.append(condition)
                params += values
        selected = ", ".join(f'"{n}"' if n in present else f'NULL AS "{n}"' for n in names)
        sql = f"SELECT {selected} FROM {TABLE}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += ' ORDER BY "results_path", "run_id"'
        try:
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ResultsIndexError(f"{db}: {exc}") from None
    finally:
        conn.close()
    return _typed_frame(rows, names)


# ---------------------------------------------------------------- command line

# What `query` prints unless --columns says otherwise (a runs.csv row has over 100 columns).
SHOWN = ("campaign", "run_id", "machine", "backend", "variant", "status", "nodes", "tasks_per_node",
         "threads_per_task", "seed", "t_sim_s", "rtf", "finished_at")


def _parse_where(items: list[str]) -> dict:
    where = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ResultsIndexError(f"--where {item!r}: expected column=value or column=value1,value2")
        values = value.split(",")
        where[name.strip()] = values[0] if len(values) == 1 else values
    return where


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikescale.index",
                                     description="the results index of a results folder (docs/results-index.md)")
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("query", help="print the indexed runs that match")
    q.add_argument("results_dir", type=Path)
    q.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE[,VALUE...]",
                   help="equality, or one of several values; repeat to AND; an empty value matches empty cells")
    q.add_argument("--columns", help="comma-separated columns, or 'all' (default: a short selection)")
    q.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")
    r = sub.add_parser("rebuild", help="build the index again from every campaign's runs.csv")
    r.add_argument("results_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "rebuild":
            started = time.monotonic()
            n = rebuild(args.results_dir)
            found = len(campaigns(args.results_dir))
            print(f"index: rebuilt {index_path(args.results_dir)}: {n} run(s) of {found} campaign(s) "
                  f"in {time.monotonic() - started:.1f} s")
            return 0
        if args.columns == "all":
            columns = list(ORDER)
        elif args.columns:
            columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        else:
            columns = [c for c in SHOWN if c in KIND]
        frame = query(args.results_dir, _parse_where(args.where), columns)
    except ResultsIndexError as exc:
        print(f"index: {exc}", file=sys.stderr)
        return 1
    if args.csv:
        frame.to_csv(sys.stdout, index=False)
    else:
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
            print(frame.to_string(index=False) if len(frame) else "(no runs match)")
    print(f"{len(frame)} run(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
