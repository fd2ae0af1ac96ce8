#!/usr/bin/env python3
"""Prints records/s and the ratios ours/timely and ours/loop from the last
`cargo bench --bench throughput` and `cargo bench --bench window` runs, and
ops/s (records/s) with the ratios fjall/in-memory from the last
`cargo bench --bench state` run (criterion's estimates.json files); a group
that has not run is skipped."""
import json, os, sys

# Where criterion writes: $CRITERION_HOME, else $CARGO_TARGET_DIR/criterion,
# else the workspace's target/criterion.
target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.dirname(__file__), "..", "target")
root = os.environ.get("CRITERION_HOME") or os.path.join(target, "criterion")
N = 10_000_000

def mean(group, bench):
    path = os.path.join(root, group, *bench.split("/"), "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"] / 1e9  # seconds

# group -> what its elements are
GROUPS = {"chain": "records", "keyed": "records", "window": "events"}

for group, unit in GROUPS.items():
    if not os.path.isdir(os.path.join(root, group)):
        continue
    loop = mean(group, "loop")
    print(f"{group}: loop {N / loop / 1e6:8.1f} M {unit}/s" if loop else f"{group}: no loop result")
    for p in (1, 2):
        ours, timely = mean(group, f"dataflow/{p}"), mean(group, f"timely/{p}")
        if ours is None or timely is None:
            continue
        line = f"  p={p}: dataflow {N / ours / 1e6:8.1f} M/s  timely {N / timely / 1e6:8.1f} M/s  ours/timely {timely / ours:5.2f}"
        if loop:
            line += f"  ours/loop {loop / ours:5.2f}"
        print(line)

# `cargo bench --bench state`: keyed state operations per backend (100k keys).
STATE_OPS = 100_000
if os.path.isdir(os.path.join(root, "state")):
    print("state: ops/s per backend (100k keys)")
    for op in ("value_put", "value_get", "value_update", "list_append", "list_iterate", "map_put", "map_get"):
        mem, fj = mean("state", f"{op}/memory"), mean("state", f"{op}/fjall")
        if mem is None or fj is None:
            continue
        print(f"  {op:13} memory {STATE_OPS / mem / 1e6:6.2f} M/s  fjall {STATE_OPS / fj / 1e6:6.2f} M/s  fjall/memory {mem / fj:5.2f}")

# `cargo bench --bench state`: the keyed job of `throughput.rs` (2M records,
# 10k keys) per state backend: in memory, fjall (every key in its cache of
# decoded states), fjall with a cache of 1 000 keys per subtask.
PIPELINE_N = 2_000_000
if os.path.isdir(os.path.join(root, "keyed_pipeline")):
    print("keyed_pipeline: records/s per state backend (2M records, 10k keys)")
    for p in (1, 2):
        mem, fj, small = (mean("keyed_pipeline", f"{b}/{p}") for b in ("memory", "fjall", "fjall_small_cache"))
        if mem is None:
            continue
        line = f"  p={p}: memory {PIPELINE_N / mem / 1e6:6.2f} M/s"
        if fj is not None:
            line += f"  fjall {PIPELINE_N / fj / 1e6:6.2f} M/s"
        if small is not None:
            line += f"  fjall_small_cache {PIPELINE_N / small / 1e6:6.2f} M/s"
        if fj is not None:
            line += f"  fjall/memory {mem / fj:5.2f}"
        if small is not None:
            line += f"  fjall_small_cache/memory {mem / small:6.3f}"
        print(line)

# `cargo bench --bench nexmark`: each query at p=1 and 2 over 1M events,
# timely's q0, q1, q2, q5 with 1 and 2 workers (the bench also prints this
# and writes <target>/nexmark/results.csv and throughput.svg).
NEXMARK_EVENTS = 1_000_000
if os.path.isdir(os.path.join(root, "nexmark")):
    print("nexmark: M events/s (1M events)")
    for q in ("q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11", "q12"):
        cells = []
        for p in (1, 2):
            t, tt = mean("nexmark", f"{q}/p{p}"), mean("nexmark", f"{q}/timely{p}")
            cells.append(f"p={p} {NEXMARK_EVENTS / t / 1e6:6.2f}" if t else f"p={p}     -")
            if tt:
                cells[-1] += f" timely {NEXMARK_EVENTS / tt / 1e6:6.2f}" + (f" ours/timely {tt / t:5.2f}" if t else "")
        print(f"  {q:4} " + "  ".join(cells))

# `cargo bench --bench savepoint`: times of one savepoint / restore (1M keys).
for group in ("take", "restore"):
    if os.path.isdir(os.path.join(root, group)):
        print(f"{group}: ms (1M keys)")
        for bench in sorted(os.listdir(os.path.join(root, group))):
            for sub in sorted(os.listdir(os.path.join(root, group, bench))):
                t = mean(group, f"{bench}/{sub}")
                if t:
                    print(f"  {bench}/{sub}: {t * 1e3:8.1f}")

# `cargo bench --bench incremental`: ns per access, tracking off and on.
if os.path.isdir(os.path.join(root, "tracking")):
    print("tracking: ns per access (off / on)")
    for bench in sorted(os.listdir(os.path.join(root, "tracking"))):
        keys = int(bench.split("-")[-1]) if bench.split("-")[-1].isdigit() else None
        off, on = mean("tracking", f"{bench}/off"), mean("tracking", f"{bench}/on")
        if keys and off and on:
            print(f"  {bench}: {off / keys * 1e9:6.1f} / {on / keys * 1e9:6.1f}")
sys.exit(0)
