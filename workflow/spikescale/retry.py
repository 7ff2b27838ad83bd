"""Set failed run records aside so that the next `snakemake` runs them again.

``python -m spikescale.retry results/<campaign>`` moves every run file whose status is not
"ok" from runs/ to failed/<run_id>.<finished_at>.h5: nothing is deleted, so the record of
how each attempt died stays next to the campaign.
"""

from __future__ import annotations

import sys
from pathlib import Path

from spikescale.record import RecordError, read_summary


def attempt_path(failed_dir: Path, run_id: str, finished_at: str) -> Path:
    """Where an attempt that did not count is kept: one file per attempt, never overwritten
    (set aside here by retry-failed, or by spikescale.supervise when a run was ended)."""
    stamp = str(finished_at or "unknown").replace(":", "").replace("+", "Z")
    return failed_dir / f"{run_id}.{stamp}.h5"


def set_failed_aside(campaign_dir: Path) -> list[Path]:
    runs_dir, failed_dir = campaign_dir / "runs", campaign_dir / "failed"
    moved = []
    for path in sorted(runs_dir.glob("*.h5")):
        try:
            summary = read_summary(path)
        except RecordError:
            continue  # not ours to move; collect reports such files
        if summary.get("status") == "ok":
            continue
        failed_dir.mkdir(exist_ok=True)
        target = attempt_path(failed_dir, path.stem, summary.get("finished_at", "unknown"))
        path.rename(target)
        moved.append(target)
        print(f"set aside failed run {path.stem}: {summary.get('error', '')} -> {target}")
    print(f"{len(moved)} failed run(s) set aside in {failed_dir}; the next snakemake runs them again")
    return moved


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / "runs").is_dir():
        print("usage: python -m spikescale.retry results/<campaign>  (a folder with runs/)", file=sys.stderr)
        return 2
    set_failed_aside(Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
