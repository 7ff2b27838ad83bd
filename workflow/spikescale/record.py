"""One HDF5 file per run: the writer and the reader (layout: docs/hdf5-layout.md).

A record is a nested dict: string keys; leaves are scalars, strings or numpy arrays; a key
``attrs`` holds a group's small scalar attributes. The writer stores it under a temporary
name in the same directory, flushes it to disk and renames it into place, so a run file
either is complete or does not exist: a run killed half-way leaves only ``*.tmp-<pid>``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

FORMAT = "spikescale-run"
FORMAT_VERSION = 1
_STR = h5py.string_dtype()


def _attr_value(value):
    if value is None:
        return ""  # HDF5 has no null: an empty string means "not applicable"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return value


def _write_group(group: h5py.Group, tree: dict) -> None:
    for key, value in tree.items():
        if key == "attrs":
            for name, attr in value.items():
                group.attrs[name] = _attr_value(attr)
        elif isinstance(value, dict):
            _write_group(group.create_group(key), value)
        elif isinstance(value, str):
            group.create_dataset(key, data=value, dtype=_STR)
        else:
            data = np.asarray(value)
            if data.dtype.kind == "U":  # text arrays: HDF5 variable-length UTF-8 strings
                group.create_dataset(key, data=data.astype(object), dtype=_STR)
                continue
            compress = data.size > 1024
            group.create_dataset(key, data=data, compression="gzip" if compress else None,
                                 shuffle=compress)


def iso(t: float) -> str:
    """A time stamp as records keep it: ISO 8601, UTC, milliseconds."""
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["format"] = FORMAT
            fh.attrs["format_version"] = FORMAT_VERSION
            _write_group(fh, record)
        with open(tmp, "rb") as raw:
            os.fsync(raw.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _read_attrs(obj) -> dict:
    out = {}
    for name, value in obj.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        out[name] = value
    return out


def _read_group(group: h5py.Group) -> dict:
    tree: dict = {}
    attrs = _read_attrs(group)
    if attrs:
        tree["attrs"] = attrs
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            tree[key] = _read_group(item)
        elif item.dtype.kind in ("O", "S") and item.shape == ():
            value = item[()]
            tree[key] = value.decode() if isinstance(value, bytes) else value
        else:
            tree[key] = item[()]
    return tree


class RecordError(Exception):
    """A file that is not a complete spikescale run record."""


def _read_file(path, read) -> dict:
    """Open a run file, check that it is one, and apply ``read`` to it; any way it can be
    broken (missing, truncated, not HDF5, not ours) becomes one RecordError naming it."""
    try:
        with h5py.File(path, "r") as fh:
            if fh.attrs.get("format") != FORMAT:
                raise RecordError(f"{path}: not a spikescale run record (format attribute missing)")
            return read(fh)
    except (OSError, KeyError) as exc:
        raise RecordError(f"{path}: unreadable HDF5 file ({exc})") from exc


def read_record(path: str | os.PathLike) -> dict:
    """Read a whole run record back into the dict form it was written from."""
    tree = _read_file(path, _read_group)
    tree["attrs"].pop("format", None)
    tree["attrs"].pop("format_version", None)
    return tree


def _read_summary(fh: h5py.File) -> dict:
    out = _read_attrs(fh)
    for group in ("spec", "summary", "allocation", "provenance", "provenance/slurm", "provenance/packages"):
        if group in fh:
            out.update({f"{group}.{k}": v for k, v in _read_attrs(fh[group]).items()})
    return out


def read_summary(path: str | os.PathLike) -> dict:
    """Only the attributes of the root, spec, summary, allocation and provenance groups (keys
    "<group>.<name>"): what collect needs, fast."""
    return _read_file(path, _read_summary)
