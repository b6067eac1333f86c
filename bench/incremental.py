#!/usr/bin/env python3
"""Incremental `vestnik build` (issue 17): cold build, rebuild with no change,
rebuild after one edited entry, into the same OUT.

Usage: bench/incremental.py DATA --binary BIN [--reps 3] [--work DIR] [--profile] [--edit-data]

DATA is a corpus from bench/gen_corpus.py; it is copied into the work
directory (the edits must not touch the original), unless --edit-data says
DATA is a throwaway copy already (saves disk and a copy of 100,000 files). Each cold build goes into
a fresh folder and the previous one is deleted first (disk: a 100,000-entry
build is 3.4 GB). Then REPS rebuilds with no change, then REPS rebuilds each
after appending a sentence to the body of one entry (a different one each
time). Every run is timed from outside (wall, user+sys CPU from wait4); the
files written, kept and removed are read from the build's summary line.
With --profile, one more no-change rebuild runs under `perf record -g`
and the top of `perf report` is printed to stderr.

Prints one JSON object on the last line of stdout.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUMMARY = re.compile(
    r"built (\d+) resources as (\d+) files \((\d+) bytes\) in .* in ([\d.]+) s: "
    r"(\d+) written, (\d+) kept, (\d+) removed")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def timed_build(binary, data, out, at):
    t0 = time.monotonic()
    p = subprocess.Popen([str(binary), "build", "--at", at, str(data), str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    stderr = p.stderr.read().decode("utf-8", "replace")
    p.stdout.close()
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"build failed (exit {code}):\n{stderr[-3000:]}")
    m = SUMMARY.search(stderr)
    if not m:
        sys.exit(f"no summary line in:\n{stderr[-3000:]}")
    return {
        "wall": round(wall, 3),
        "cpu": round(ru.ru_utime + ru.ru_stime, 3),
        "rss_kb": ru.ru_maxrss,
        "files": int(m.group(2)),
        "written": int(m.group(5)),
        "kept": int(m.group(6)),
        "removed": int(m.group(7)),
    }


def summary(runs):
    walls = [r["wall"] for r in runs]
    return {"min_s": min(walls), "median_s": statistics.median(walls), "max_s": max(walls),
            "runs": runs}


def edit(data, k):
    """Appends a sentence to the k-th entry file (in sorted order)."""
    files = sorted((data / "entries").rglob("*.md"))
    path = files[(k * 7919) % len(files)]
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"\nПравка номер {k}.\n")
    return path.relative_to(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work")
    ap.add_argument("--at", default="2030-01-01T00:00:00+07:00",
                    help="the build time (fixed, so the news sitemap is comparable)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--edit-data", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vestnik-incr-", dir=args.work))
    try:
        data = Path(args.data)
        if not args.edit_data:
            data = work / "data"
            shutil.copytree(args.data, data)
        out = work / "out"
        res = {"entries": sum(1 for _ in (data / "entries").rglob("*.md"))}
        cold = []
        for i in range(args.reps):
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(["sync"], check=False)
            r = timed_build(args.binary, data, out, args.at)
            log(f"cold {i + 1}/{args.reps}: {r}")
            cold.append(r)
        res["cold"] = summary(cold)
        same = []
        for i in range(args.reps):
            r = timed_build(args.binary, data, out, args.at)
            log(f"no change {i + 1}/{args.reps}: {r}")
            same.append(r)
        res["no_change"] = summary(same)
        edits = []
        for i in range(args.reps):
            which = edit(data, i + 1)
            r = timed_build(args.binary, data, out, args.at)
            r["edited"] = str(which)
            log(f"one edit {i + 1}/{args.reps} ({which}): {r}")
            edits.append(r)
        res["one_edit"] = summary(edits)
        if args.profile and shutil.which("perf"):
            perf_data = work / "perf.data"
            subprocess.run(["perf", "record", "-g", "-o", str(perf_data), "--", str(args.binary),
                            "build", "--at", args.at, str(data), str(out)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rep = subprocess.run(["perf", "report", "-i", str(perf_data), "--no-children",
                                  "--percent-limit", "1.5", "--stdio", "-g", "none"],
                                 capture_output=True, text=True)
            print(rep.stdout, file=sys.stderr)
        print(json.dumps(res, ensure_ascii=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
