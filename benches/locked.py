#!/usr/bin/env python3
"""Locked (atomic read-modify-write) instructions a profiled run executed,
by function: what `Arc` clones and drops, mutexes and wakers cost beside
the instruction counts, since each one costs about 2 ns on the AMD EPYC
development VM (a `lock`-prefixed add in a C loop) against 0.3 ns for a
plain one.

    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=OUT \\
        --collect-atstart=no --toggle-collect='*scale_replay*' \\
        <bench binary> scale-one local 2000
    python3 benches/locked.py OUT 2000        # per operation, by function

It reads callgrind's per-instruction counts (`--dump-instr=yes`), finds
with `objdump -d` which instructions carry a `lock` prefix or are an
`xchg` with memory (what an uncontended `Mutex` unlock is), and adds up
how often each ran. The bench binary's counting allocator does three or
four atomic adds per allocation (on its counters, wherever the compiler
inlined them): they are counted apart, not under the SDK's functions.
"""
import collections
import re
import signal
import subprocess
import sys


COUNTING = "(the bench binary's counting allocator)"


def position(token, previous):
    """A callgrind position: absolute, relative (+n, -n) or the same (*)."""
    if token == "*":
        return previous
    if token.startswith("+"):
        return previous + int(token[1:], 0)
    if token.startswith("-"):
        return previous - int(token[1:], 0)
    return int(token, 0)


def costs_by_address(path):
    """Instructions executed per (object file, address), call lines left out."""
    names = {}
    costs = collections.defaultdict(collections.Counter)
    obj = None
    address = 0
    call_line_next = False
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line.strip())
        if m:
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("ob="):
                obj = names[m.group(1)]
            continue
        if line.startswith("calls="):
            call_line_next = True
            continue
        if line[:1] and line[0] in "0123456789+-*":
            parts = line.split()
            address = position(parts[0], address)
            if call_line_next:
                # The call's inclusive cost, not this instruction's.
                call_line_next = False
                continue
            if len(parts) >= 3:
                costs[obj][address] += int(parts[2])
    return costs


def locked_addresses(obj):
    """Address -> function of every locked instruction in `obj`."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", obj],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    locked = {}
    function = None
    for line in listing.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:", line)
        if m:
            function = m.group(2)
            continue
        m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
        if m:
            ins = m.group(2)
            if ins.startswith("lock ") or (ins.startswith("xchg") and "(" in ins):
                # The counting allocator's adds, inlined or not.
                counter = re.search(r"<[^>]*(ALLOCATIONS|LIVE_BYTES|ALLOCATED_BYTES)[^>]*>", ins)
                locked[int(m.group(1), 16)] = COUNTING if counter else function
    return locked


def main():
    # Piped into `head`: stop quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    total = 0
    by_function = collections.Counter()
    for obj, counts in costs_by_address(sys.argv[1]).items():
        locked = locked_addresses(obj)
        for address, n in counts.items():
            if address in locked:
                total += n
                by_function[locked[address]] += n
    counting = by_function.pop(COUNTING, 0)
    print(
        f"{total / per:.1f} locked instructions per operation, "
        f"{counting / per:.1f} of them the bench binary's counting allocator's"
    )
    demangled = subprocess.run(
        ["c++filt"],
        input="\n".join(f for f, _ in by_function.most_common(30)),
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    for (_, n), name in zip(by_function.most_common(30), demangled):
        print(f"{n / per:8.2f}  {name[:160]}")


if __name__ == "__main__":
    main()
