#!/usr/bin/env python3
"""Runs a command and reports the CPU time and peak memory of its whole process tree.

Usage: treestat.py [--json] -- COMMAND ARGS...

Chromium runs as many processes (browser, renderers, GPU, network service) that share pages,
so memory is the tree's summed PSS (proportional set size, /proc/PID/smaps_rollup), sampled
every 50 ms; summing RSS would count shared pages once per process. CPU is each process's
utime+stime as last sampled, summed over every process seen (a process that exits loses at
most its last 50 ms). The same sampler measures markwatch and Playwright, so they compare.
"""
import json
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def tree(root):
    seen, todo = [], [root]
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += children(pid)
    return seen


def cpu_secs(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    args = sys.argv[1:]
    as_json = False
    if args and args[0] == "--json":
        as_json, args = True, args[1:]
    if args and args[0] == "--":
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    start = time.monotonic()
    proc = subprocess.Popen(args)
    cpu, peak = {}, 0
    while proc.poll() is None:
        pids = tree(proc.pid)
        total = 0
        for pid in pids:
            c = cpu_secs(pid)
            if c is not None:
                cpu[pid] = max(cpu.get(pid, 0.0), c)
            total += pss_kb(pid)
        peak = max(peak, total)
        time.sleep(0.05)
    wall = time.monotonic() - start
    report = {
        "exit": proc.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(sum(cpu.values()), 3),
        "peak_pss_mb": round(peak / 1024, 1),
        "processes": len(cpu),
    }
    print(json.dumps(report) if as_json else
          f"treestat: wall {report['wall_s']} s, cpu {report['cpu_s']} s, "
          f"peak PSS {report['peak_pss_mb']} MB over {report['processes']} processes",
          file=sys.stderr)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
