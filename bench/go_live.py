#!/usr/bin/env python3
"""Go-live lag of scheduled entries: how long after its due time an entry
that nobody touched is served in /feeds/all.rss.

Usage: bench/go_live.py BINARY DATA [--entries K] [--gap SECONDS]

Writes K scheduled entries into DATA/entries/golive/ (removed afterwards),
due GAP seconds apart from LEAD seconds after now, starts `BINARY serve DATA`
on a free loopback port, and polls /feeds/all.rss every 2 ms from just
before each due time until the entry appears (bounded: 5 s per entry).
Prints each lag and the min / median / p95 / max in milliseconds.
"""

import argparse
import datetime
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("data")
    ap.add_argument("--entries", type=int, default=10)
    ap.add_argument("--gap", type=float, default=3.0)
    ap.add_argument("--lead", type=float, default=20.0,
                    help="seconds from now to the first due time (covers startup)")
    args = ap.parse_args()

    folder = os.path.join(args.data, "entries", "golive")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    start = int(time.time() + args.lead)
    due = []
    for i in range(args.entries):
        t = start + int(i * args.gap)
        stamp = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()
        with open(os.path.join(folder, f"golive-{i}.md"), "w", encoding="utf-8") as f:
            f.write(f'+++\ntitle = "Go live {i}"\ndate = "{stamp}"\n'
                    f'sections = ["{first_section(args.data)}"]\n+++\n\nScheduled.\n')
        due.append(t)

    port = free_port()
    server = subprocess.Popen(
        [args.binary, "serve", args.data, "--addr", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        if "listening on" not in line:
            sys.exit(f"server did not start: {line!r}")
        started = time.time()
        if started > due[0] - 1:
            sys.exit(f"startup took {started - (due[0] - args.lead):.1f} s; raise --lead")
        lags = []
        for i, t in enumerate(due):
            title = f"<title>Go live {i}</title>".encode()
            time.sleep(max(0.0, t - time.time() - 0.05))
            deadline = t + 5
            while True:
                body = fetch(port, "/feeds/all.rss")
                now = time.time()
                if title in body:
                    lags.append((now - t) * 1000)
                    break
                if now > deadline:
                    sys.exit(f"entry {i} not live 5 s after its due time")
                time.sleep(0.002)
            print(f"entry {i}: live {lags[-1]:.1f} ms after its due time", flush=True)
        lags.sort()
        p95 = lags[min(len(lags) - 1, int(round(0.95 * (len(lags) - 1))))]
        print(f"go-live lag over {len(lags)} entries: min {lags[0]:.1f} / median "
              f"{statistics.median(lags):.1f} / p95 {p95:.1f} / max {lags[-1]:.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def first_section(data):
    with open(os.path.join(data, "site.toml"), encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("slug"):
                return line.split("=", 1)[1].strip().strip('"')
    sys.exit("no section in site.toml")


if __name__ == "__main__":
    main()
