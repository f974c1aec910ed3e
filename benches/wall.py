#!/usr/bin/env python3
"""Wall time (and the bench's per-operation counters) of two builds of
`runtime/benches/replay/` (`main.rs`; the scale runs in `scale.rs`), interleaved.

    cargo bench -p durable-yield --bench replay --no-run   # in each tree
    python3 benches/wall.py <before binary> <after binary> [rounds]

Every round runs each workload once with each binary, one fresh process
each, so that both see the same moments of a noisy machine; then it
prints, per binary and workload, the median of each column the bench
printed. The workloads: `scale-one
{local|local-warm|map|flatmap|map-warm|flatmap-warm|lambda-map|lambda-flatmap|
lambda-map-warm|lambda-flatmap-warm|lambda-steps|lambda-steps-warm|seqmaps|seqmaps-warm|
map-replay|children|children-warm|empty-children|empty-children-warm}
{1000|25000}` (for
`local`: live ns, replay ns, then live and replay allocations, bytes and
page faults per step; `local-warm` the same after one whole execution of
that size in the same process; for the maps: ns, allocations, bytes and
page faults per item, `-warm` after two runs of the same map in the same
process; `lambda-map` and `lambda-flatmap` the same maps through the
Lambda driver, `run_invocation`, against a service that answers each
checkpoint with the updated operations, no local runner around it, and
`lambda-steps` N sequential steps so: ns, allocations, bytes and page
faults per step; `map-replay` the local runner's second invocation of a
map of N items that return `2 * i`, which replays the map, per item: up
to about 4,000 items the map's recorded result is decoded, above that it
is over 256 KiB and rebuilt from the items' records; `children` as
`local` for N child contexts of one step each, one after the other, two
operations each; `empty-children` the same with empty child contexts, one
operation each), and
the Lambda path's replay, `scale-one scripted N PAGE <history>` (a
replay of N recorded steps through the Lambda driver, its state in pages
of PAGE: ns per step, peak resident KiB, bytes per operation of the
history as read), with pages of 1,000 and of 100 (AWS's emulator's
size), and `scripted-warm` (pages of 1,000, after the same replay twice
in the same process). The histories are recorded once, by the "after" binary
(`scale-record N <file>`), into a temporary directory. A workload a
binary does not know (an older build) is left out of its rows.

`WALL_SIZES=500,1000,12500,25000` measures other sizes (a nested map of
N items records 2N + 1 operations: 12,500 items are the service's 25,000
operations); `WALL_MODES=map-warm,lambda-map-warm` runs only those
`scale-one` modes (and then no scripted replay unless `scripted` is
listed). The same binary twice is a flatness check in one run.
"""
import os
import statistics
import subprocess
import sys
import tempfile

SIZES = tuple(int(x) for x in os.environ.get("WALL_SIZES", "1000,25000").split(","))
MODES = ("local", "local-warm", "map", "flatmap", "map-warm", "flatmap-warm",
         "lambda-map", "lambda-flatmap", "lambda-map-warm", "lambda-flatmap-warm",
         "lambda-steps", "lambda-steps-warm", "seqmaps", "seqmaps-warm", "map-replay",
         "children", "children-warm", "empty-children", "empty-children-warm")
WANTED = os.environ.get("WALL_MODES")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binaries = {"before": sys.argv[1], "after": sys.argv[2]}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with tempfile.TemporaryDirectory() as histories:
        modes = WANTED.split(",") if WANTED else MODES
        work = [(f"{mode} {n}", ["scale-one", mode, str(n)])
                for mode in modes if mode != "scripted"
                for n in SIZES]
        for n in SIZES if (not WANTED or "scripted" in modes) else ():
            history = os.path.join(histories, f"{n}.json")
            subprocess.run([binaries["after"], "scale-record", str(n), history],
                           check=True, capture_output=True)
            for page in (1000, 100):
                work.append((f"scripted-{page} {n}",
                             ["scale-one", "scripted", str(n), str(page), history]))
            work.append((f"scripted-warm-1000 {n}",
                         ["scale-one", "scripted-warm", str(n), "1000", history]))
        runs = {}
        for _ in range(rounds):
            for label, args in work:
                for name, binary in binaries.items():
                    done = subprocess.run([binary, *args], capture_output=True, text=True)
                    if done.returncode != 0 or not done.stdout.split():
                        # (A build from before the workload existed.)
                        continue
                    out = done.stdout.split()
                    runs.setdefault((label, name), []).append([float(x) for x in out])
    for (label, name), rows in sorted(runs.items()):
        medians = [statistics.median(column) for column in zip(*rows)]
        print(label, name, " ".join(f"{m:.2f}" for m in medians))


if __name__ == "__main__":
    main()
