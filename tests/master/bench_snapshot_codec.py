"""Size, encode and decode time, and decoded memory of the snapshot codec on states built by
the real deciders (the figures in `streams/master/snapshot_codec.py`). Not a test.

    .venv/bin/python -m tests.master.bench_snapshot_codec [--instances 10000] [--separate]

`--separate` gives every instance its own strings and definition objects, as in a master's
live state, where each instance was folded from its own decoded records.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from streams.core.instance import InstanceState
from streams.master.snapshot_codec import decode_snapshot, encode_snapshot
from tests.master.test_snapshot_codec import build_instances, snapshot_of


def _alone(state: InstanceState) -> InstanceState:
    snapshot = snapshot_of({state.instance_id: state})
    return decode_snapshot(encode_snapshot(snapshot)).instances[state.instance_id]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--separate", action="store_true")
    args = parser.parse_args()
    instances = build_instances(args.instances)
    if args.separate:  # each instance read back on its own: shares nothing with the others
        instances = {k: _alone(v) for k, v in instances.items()}
    snapshot = snapshot_of(instances)
    encode, decode = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        data = encode_snapshot(snapshot)
        encode.append(time.perf_counter() - t)
        t = time.perf_counter()
        decode_snapshot(data)
        decode.append(time.perf_counter() - t)
    assert decode_snapshot(data) == snapshot
    gc.collect()
    tracemalloc.start()
    back = decode_snapshot(data)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    runs = sum(len(s.tasks) for s in back.instances.values())
    print(
        f"{len(instances)} instances, {runs} task runs: {len(data) / 1e6:.2f} MB, "
        f"encode {min(encode):.3f} s, decode {min(decode):.3f} s (best of {args.rounds}), "
        f"decoded state {held / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
