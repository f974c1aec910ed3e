#!/usr/bin/env python3
"""Wall time (and the bench's per-operation counters) of two builds of
`runtime/benches/replay.rs`, interleaved.

    cargo bench -p durable-yield --bench replay --no-run   # in each tree
    python3 benches/wall.py <before binary> <after binary> [rounds]

Every round runs `scale-one {local|map|flatmap} {1000|25000}` once with
each binary, one fresh process each, so that both see the same moments of
a noisy machine; then it prints, per binary and workload, the median of
each column the bench printed (see `scale-one` in replay.rs: for `local`,
live ns, replay ns, then live and replay allocations, bytes and page
faults per step; for `map`/`flatmap`, ns, allocations, bytes and page
faults per item).
"""
import statistics
import subprocess
import sys

WORK = [(mode, n) for mode in ("local", "map", "flatmap") for n in (1000, 25000)]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binaries = {"before": sys.argv[1], "after": sys.argv[2]}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    runs = {}
    for _ in range(rounds):
        for mode, n in WORK:
            for name, binary in binaries.items():
                out = subprocess.run(
                    [binary, "scale-one", mode, str(n)],
                    capture_output=True, text=True, check=True,
                ).stdout.split()
                runs.setdefault((mode, n, name), []).append([float(x) for x in out])
    for (mode, n, name), rows in sorted(runs.items()):
        medians = [statistics.median(column) for column in zip(*rows)]
        print(mode, n, name, " ".join(f"{m:.2f}" for m in medians))


if __name__ == "__main__":
    main()
