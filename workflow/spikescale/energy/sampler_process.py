"""The sampler process of one node: `python -m spikescale.energy.sampler_process`.

Finds the node's meters as the harness did (discover.py, same settings), then appends one
JSON line per reading to --out: {"t": monotonic seconds, "raw": [counter per meter],
"power_w": [...]}. The first line names the meters. Ends on SIGTERM, or when its parent is
gone. A process of its own, because the simulator holds the parent's GIL (sampler.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time

from spikescale.energy.discover import discover


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--interval-s", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--parent", type=int, required=True)
    args = parser.parse_args(argv)
    recipe = json.loads(args.recipe)
    meters, _ = discover(recipe["energy"], recipe["busy_cores"])
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    with open(args.out, "a", buffering=1) as out:
        out.write(json.dumps({"scopes": [m.scope for m in meters]}) + "\n")
        next_t = time.monotonic()
        while not stopping and os.getppid() == args.parent:
            raw, power = [], []
            t = time.monotonic()
            for meter in meters:
                try:
                    raw.append(meter.read_uj())
                except (OSError, ValueError, RuntimeError):
                    raw.append(None)
                power.append(meter.power_w())
            out.write(json.dumps({"t": t, "raw": raw, "power_w": power}) + "\n")
            next_t += args.interval_s
            time.sleep(max(0.0, next_t - time.monotonic()))
        # What the sampler cost the node, for the record (the benchmark reports it).
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out.write(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
