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
from h5py import h5a, h5t

FORMAT = "spikescale-run"
FORMAT_VERSION = 1
SUMMARY_ATTR = "summary_json"  # read_summary's answer, stored by the writer
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
            _refresh_summary(fh)
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


# How to read an attribute of each HDF5 type met so far, by the type's serialised form:
# numpy dtype, memory type, and whether it is variable-length text (None: leave it to h5py).
# h5py's attrs[name] works this out anew for every attribute, which costs more than the read
# itself; collecting 10,000 run files of ~100 attributes each is mostly that.
_ATTR_TYPES: dict[bytes, tuple | None] = {}


def _attr_type(tid) -> tuple | None:
    key = tid.encode()
    if key not in _ATTR_TYPES:
        dtype = tid.dtype
        string = h5t.check_string_dtype(dtype)
        _ATTR_TYPES[key] = None if dtype.subdtype is not None else (
            dtype, h5t.py_create(dtype), string is not None and string.length is None)
    return _ATTR_TYPES[key]


def read_attr(obj, name: str):
    """obj.attrs[name], exactly as h5py reads it (KeyError where there is none), without
    h5py's overhead for the common types."""
    aid = h5a.open(obj.id, name if isinstance(name, bytes) else name.encode("utf-8"))
    shape = aid.shape
    kind = _attr_type(aid.get_type()) if shape is not None else None
    if kind is None:  # empty, or an array type: h5py's own way
        return obj.attrs[name]
    dtype, mtype, vlen_text = kind
    arr = np.zeros(shape, dtype=dtype)
    aid.read(arr, mtype=mtype)
    if vlen_text:
        if arr.ndim == 0:
            return arr[()].decode("utf-8", "surrogateescape")
        arr = np.array([b.decode("utf-8", "surrogateescape") for b in arr.flat], dtype=dtype).reshape(arr.shape)
    return arr[()] if arr.ndim == 0 else arr


def read_attrs(obj) -> dict:
    """The attributes of a group or dataset: text as str, scalars as Python numbers and
    booleans, arrays as numpy arrays."""
    out = {}
    for name in obj.attrs:  # h5py's order: by name, or by creation where a file tracks it
        value = read_attr(obj, name)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.generic):
            value = value.item()
        out[name] = value
    return out


def _read_group(group: h5py.Group) -> dict:
    tree: dict = {}
    attrs = read_attrs(group)
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


def _check_format(fh: h5py.File, path) -> None:
    if fh.attrs.get("format") != FORMAT:
        raise RecordError(f"{path}: not a spikescale run record (format attribute missing)")


def _read_file(path, read) -> dict:
    """Open a run file, check that it is one, and apply ``read`` to it; any way it can be
    broken (missing, truncated, not HDF5, not ours) becomes one RecordError naming it."""
    try:
        with h5py.File(path, "r") as fh:
            _check_format(fh, path)
            return read(fh)
    except (OSError, KeyError) as exc:
        raise RecordError(f"{path}: unreadable HDF5 file ({exc})") from exc


def read_record(path: str | os.PathLike) -> dict:
    """Read a whole run record back into the dict form it was written from."""
    tree = _read_file(path, _read_group)
    tree["attrs"].pop("format", None)
    tree["attrs"].pop("format_version", None)
    tree["attrs"].pop(SUMMARY_ATTR, None)
    return tree


def _read_summary(fh: h5py.File) -> dict:
    if SUMMARY_ATTR in fh.attrs:
        return json.loads(read_attr(fh, SUMMARY_ATTR))
    out = read_attrs(fh)
    for group in ("spec", "summary", "allocation", "provenance", "provenance/slurm", "provenance/packages"):
        if group in fh:
            out.update({f"{group}.{k}": v for k, v in read_attrs(fh[group]).items()})
    return out


def _refresh_summary(fh: h5py.File) -> None:
    """What collect reads of every run, once more as one JSON attribute, read back from the
    file itself: one attribute read instead of ~110 (docs/hdf5-layout.md). Every change of a
    record's attributes goes through here (update_attrs), so it never goes stale."""
    if SUMMARY_ATTR in fh.attrs:
        del fh.attrs[SUMMARY_ATTR]
    summary = _read_summary(fh)
    if all(isinstance(v, (str, int, float, bool)) for v in summary.values()):
        fh.attrs[SUMMARY_ATTR] = json.dumps(summary)


def update_attrs(path: str | os.PathLike, attrs: dict) -> None:
    """Change root attributes of a record in place (an attempt's status, error, ...),
    keeping its JSON summary true to them."""
    with h5py.File(path, "r+") as fh:
        for name, value in attrs.items():
            fh.attrs[name] = _attr_value(value)
        _refresh_summary(fh)


def read_summary(path: str | os.PathLike) -> dict:
    """Only the attributes of the root, spec, summary, allocation and provenance groups (keys
    "<group>.<name>"): what collect needs, fast."""
    return _read_file(path, _read_summary)


def summary_of_open(fh: h5py.File, path) -> dict:
    """read_summary of a file already open (collect reads and copies in one opening)."""
    _check_format(fh, path)
    try:
        return _read_summary(fh)
    except KeyError as exc:
        raise RecordError(f"{path}: unreadable HDF5 file ({exc})") from exc
