"""The JSON schemas of the four configuration parts (workflow/schemas/) and their defaults.

Every default value of the configuration is written once, in its schema; ``complete``
applies them at every depth. The campaign loader (spikescale.config) applies them when it
reads the files, and a run applies them to the machine settings it is handed
(spikescale.harness), so that a run started by hand behaves as one the workflow started. This
module needs only PyYAML: every backend environment can import it (jsonschema is the
workflow's, for validation).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import yaml

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
PARTS = ("experiment", "model", "machine", "software")


@functools.cache
def _load(part: str) -> dict:
    with open(SCHEMA_DIR / f"{part}.schema.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_schema(part: str) -> dict:
    """The schema of one configuration part (a copy: callers may change it)."""
    if part not in PARTS:
        raise ValueError(f"unknown configuration part {part!r}; known: {', '.join(PARTS)}")
    return copy.deepcopy(_load(part))


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return root["$defs"][ref.removeprefix("#/$defs/")]
    return schema


def _fill(data, schema: dict, root: dict):
    schema = _resolve(schema, root)
    if not isinstance(data, dict):
        return data
    out = dict(data)
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        sub = _resolve(sub, root)
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
    for key, value in out.items():
        if key in properties:
            out[key] = _fill(value, properties[key], root)
        else:
            for pattern, sub in schema.get("patternProperties", {}).items():
                if isinstance(key, str) and re.search(pattern, key):
                    out[key] = _fill(value, sub, root)
                    break
    return out


def complete(part: str, data: dict) -> dict:
    """``data`` with its schema's defaults filled in wherever a key is absent, at every
    depth (an absent optional section with a default of {} is created, then filled). Values
    that are present are kept as they are; ``data`` itself is not changed."""
    schema = _load(part)
    return _fill(data, schema, schema)
