#!/usr/bin/env python3
"""Prints the table of scripts/bench.sh from its results file (tab-separated, one measurement
per line: id, label, rows, secs, bytes, cpu_s, rss_kb, pg_cpu_s, p50_ms, p99_ms, note; `-` when
not measured). Ratios are rows/s against min(a, a2) and against (b), measured in the same run."""
import sys


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    rows = []
    with open(sys.argv[1]) as f:
        for line in f:
            if line.strip():
                rows.append(line.rstrip("\n").split("\t"))
    rate = {}
    for r in rows:
        n, secs = num(r[2]), num(r[3])
        rate[r[0]] = n / secs if n is not None and secs else None
    physical = [rate[k] for k in ("a", "a2") if rate.get(k)]
    limit = min(physical) if physical else None
    naive = rate.get("b")
    head = ["variant", "rows/s", "MB/s", "× min(a,a2)", "× (b)", "p50 ms", "p99 ms",
            "peak RSS MiB", "CPU s", "PG CPU s", "notes"]
    out = [head]
    for r in rows:
        id_, label, n, secs, nbytes, cpu, rss, pgcpu, p50, p99, note = r
        rs = rate[id_]
        mb = num(nbytes) / num(secs) / 1e6 if num(nbytes) is not None and num(secs) else None
        snapshot = not id_.startswith("d")
        out.append([
            label,
            fmt(rs, ",.0f"),
            fmt(mb, ".1f"),
            fmt(rs / limit if rs and limit and snapshot else None, ".2f"),
            fmt(rs / naive if rs and naive and snapshot else None, ".2f"),
            p50, p99,
            fmt(num(rss) / 1024 if num(rss) is not None else None, ".0f"),
            cpu, pgcpu, note,
        ])
    widths = [max(len(row[i]) for row in out) for i in range(len(head))]
    for i, row in enumerate(out):
        print("| " + " | ".join(c.ljust(w) if j in (0, 10) else c.rjust(w)
                                for j, (c, w) in enumerate(zip(row, widths))) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 1) + (":" if j not in (0, 10) else "-")
                                 for j, w in enumerate(widths)) + "|")


if __name__ == "__main__":
    main()
