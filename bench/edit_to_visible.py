#!/usr/bin/env python3
"""Measure edit-to-visible latency: rewrite one entry, poll until served.

Usage: bench/edit_to_visible.py DATA [--binary target/release/vestnik] [--runs 20]

Starts `vestnik serve DATA` on a free loopback port, waits until it has
settled (/healthz reports no pending compression), then repeatedly rewrites
the newest entry of the combined feed with a new title and polls
/feeds/all.rss until the title shows. Prints one JSON line with the
latencies in milliseconds. Every loop is bounded.
"""

import argparse
import glob
import html
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode("utf-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--binary", default="target/release/vestnik")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()

    started = time.monotonic()
    proc = subprocess.Popen(
        [args.binary, "serve", args.data, "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        line = proc.stdout.readline()
        m = re.match(r"listening on (http://[^/]+)/", line)
        if not m:
            sys.exit(f"server did not start: {line!r}")
        base = m.group(1)
        first_feed = None
        deadline = time.monotonic() + 600  # a million entries take tens of seconds
        while first_feed is None and time.monotonic() < deadline:
            try:
                get(base + "/feeds/all.rss")
                first_feed = time.monotonic() - started
            except OSError:
                time.sleep(0.01)
        if first_feed is None:
            sys.exit("no feed within 600 s")
        for _ in range(12000):
            if json.loads(get(base + "/healthz"))["compressing"] == 0:
                break
            time.sleep(0.01)
        settled = time.monotonic() - started

        feed = get(base + "/feeds/all.rss")
        title = html.unescape(re.search(r"<item>\s*<title>([^<]+)</title>", feed).group(1))
        path = next(
            p for p in glob.iglob(os.path.join(args.data, "entries", "**", "*.md"), recursive=True)
            if f'title = "{title}"' in open(p, encoding="utf-8").read()
        )
        original = open(path, encoding="utf-8").read()
        latencies = []
        try:
            for run in range(args.runs):
                marker = f"Правка {run} {time.time_ns()}"
                text = re.sub(r'^title = ".*"$', f'title = "{marker}"', original, count=1, flags=re.M)
                t0 = time.monotonic()
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                for _ in range(5000):
                    if marker in get(base + "/feeds/all.rss"):
                        break
                    time.sleep(0.001)
                else:
                    sys.exit(f"edit {run} never became visible")
                latencies.append((time.monotonic() - t0) * 1000)
                time.sleep(0.05)
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
        latencies.sort()
        print(json.dumps({
            "data": args.data,
            "startup_to_first_feed_s": round(first_feed, 3),
            "startup_to_settled_s": round(settled, 3),
            "runs": len(latencies),
            "edit_to_visible_ms": {
                "min": round(latencies[0], 1),
                "median": round(statistics.median(latencies), 1),
                "p95": round(latencies[int(len(latencies) * 0.95) - 1], 1),
                "max": round(latencies[-1], 1),
            },
        }))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
