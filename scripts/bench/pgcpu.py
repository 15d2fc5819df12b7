#!/usr/bin/env python3
"""CPU seconds spent by PostgreSQL while a benchmark step runs (scripts/bench.sh).

  pgcpu.py POSTMASTER_PID OUTFILE

Samples /proc every 50 ms until SIGTERM, then writes the CPU seconds (user + system) that the
postmaster's children used meanwhile: backends that started during the step count in full
(COPY, walsender), the ones already running (checkpointer, WAL writer) by their increase.
A backend's last 50 ms before it exits can be missed, and anything else using the same server
during the step is counted too: the figure is approximate, on an otherwise idle server.
"""
import os
import signal
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def children(postmaster):
    """pid -> (start time in ticks, utime + stime in ticks) of the postmaster's children."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may contain spaces.
        rest = stat[stat.rindex(")") + 2 :].split()
        if int(rest[1]) != postmaster:
            continue
        out[int(name)] = (int(rest[19]), int(rest[11]) + int(rest[12]))
    return out


def main():
    postmaster, outfile = int(sys.argv[1]), sys.argv[2]
    first = children(postmaster)
    last = dict(first)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        time.sleep(0.05)
        for pid, (start, cpu) in children(postmaster).items():
            # A reused pid is a new process: key by (pid, start).
            last[(pid, start)] = cpu
    used = 0
    for key, cpu in last.items():
        if isinstance(key, tuple):
            pid, start = key
            before = first.get(pid)
            used += cpu - before[1] if before and before[0] == start else cpu
    with open(outfile, "w") as f:
        f.write(f"{used / TICK:.2f}\n")


if __name__ == "__main__":
    main()
