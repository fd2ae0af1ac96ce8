#!/usr/bin/env python3
"""Prints the ratios of the last `cargo bench --bench checkpoint` run (from
criterion's estimates.json files): per state backend, each checkpointed
window job's throughput over the one without checkpoints; and the time a
first checkpoint took under backpressure, aligned over unaligned."""
import json, os, sys

root = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")
N = 30_000_000  # events of one checkpoint_throughput run (checkpoint.rs: N)

def estimate(group, bench, stat="mean"):
    path = os.path.join(root, group, *bench.split("/"), "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)[stat]["point_estimate"] / 1e9  # seconds

if os.path.isdir(os.path.join(root, "checkpoint_throughput")):
    print(f"checkpoint_throughput: window job, {N // 1_000_000}M events, p=2 (mean; median in brackets)")
    for backend in ("memory", "fjall"):
        none = estimate("checkpoint_throughput", f"{backend}/none")
        none_med = estimate("checkpoint_throughput", f"{backend}/none", "median")
        if none is None:
            continue
        print(f"  {backend}/none: {N / none / 1e6:6.2f} M events/s")
        for every in ("100ms", "1s"):
            for mode in ("unaligned", "aligned"):
                bench = f"{backend}/{mode}_{every}"
                t = estimate("checkpoint_throughput", bench)
                med = estimate("checkpoint_throughput", bench, "median")
                if t is None:
                    continue
                print(f"  {bench:24} {N / t / 1e6:6.2f} M events/s  / none {none / t:5.2f}  [{none_med / med:5.2f}]")

if os.path.isdir(os.path.join(root, "checkpoint_backpressure")):
    print("checkpoint_backpressure: first checkpoint, trigger to completion (mean; median in brackets)")
    un, al = (estimate("checkpoint_backpressure", f"{m}_200ms") for m in ("unaligned", "aligned"))
    un_med, al_med = (estimate("checkpoint_backpressure", f"{m}_200ms", "median") for m in ("unaligned", "aligned"))
    if un is not None:
        print(f"  unaligned {un * 1e3:7.1f} ms [{un_med * 1e3:7.1f}]")
    if al is not None:
        print(f"  aligned   {al * 1e3:7.1f} ms [{al_med * 1e3:7.1f}]")
    if un is not None and al is not None:
        print(f"  aligned / unaligned {al / un:5.1f} [{al_med / un_med:5.1f}]")
sys.exit(0)
