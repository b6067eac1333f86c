#!/usr/bin/env python3
"""Slow and abusive clients against `vestnik serve`, with a normal client timed.

Usage: bench/slowloris.py [DATA] [--binary target/release/vestnik]
                          [--slow 500] [--idle 2000] [--requests 300]

Starts `vestnik serve DATA --addr 127.0.0.1:0` (reads the `listening on
http://ADDR/` line), waits until /healthz reports no pending compression,
then at once:

- opens --slow slowloris connections, each sending a request head one byte
  per second, never finishing it;
- opens --idle keep-alive connections, each sending one complete request,
  reading the whole response, then sitting idle;
- after both are open, a normal client fetches /feeds/all.rss --requests
  times on fresh connections, ten a second, timing each.

It records when the server closes each slow and idle connection. Every wait
is bounded: the whole run ends within --deadline seconds (default 100).
Prints one JSON object: normal-client latency (p50/p99/max), how many slow
and idle connections the server closed and after how long, and the server's
VmRSS before and after. Python 3 standard library only.
"""

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import urllib.request

SLOW_HEAD = b"GET /feeds/all.rss HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 4096


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def spread(values):
    """min/p50/max of a list of seconds, rounded."""
    if not values:
        return None
    return {
        "min": round(min(values), 2),
        "p50": round(statistics.median(values), 2),
        "max": round(max(values), 2),
    }


async def wait_closed(reader, started, deadline):
    """Seconds until the server closes the connection, or None by the deadline."""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            chunk = await asyncio.wait_for(reader.read(65536), timeout=left)
            if not chunk:
                return time.monotonic() - started
    except (ConnectionError, OSError):
        return time.monotonic() - started
    except asyncio.TimeoutError:
        return None


async def connect(host, port, gate):
    """Opens a connection; `gate` bounds how many connects are in flight."""
    async with gate:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout=10)


async def slow_client(host, port, gate, deadline, out):
    try:
        reader, writer = await connect(host, port, gate)
    except (OSError, asyncio.TimeoutError):
        out["connect_failed"] += 1
        return
    started = time.monotonic()
    out["opened"] += 1
    closed = asyncio.ensure_future(wait_closed(reader, started, deadline))
    sent = 0
    try:
        while not closed.done() and sent < len(SLOW_HEAD) and time.monotonic() < deadline:
            writer.write(SLOW_HEAD[sent:sent + 1])
            await writer.drain()
            sent += 1
            await asyncio.wait({closed}, timeout=1.0)
    except (ConnectionError, OSError):
        pass
    after = await closed
    if after is not None:
        out["closed_after"].append(after)
        out["closed_at"].append(started + after)
        out["bytes_before_close"].append(sent)
    writer.close()


async def read_response(reader):
    """Reads one HTTP/1.1 response with Content-Length; returns (status, body length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(m.group(1)) if m else 0
    await reader.readexactly(length)
    return status, length


async def idle_client(host, port, gate, deadline, out):
    try:
        reader, writer = await connect(host, port, gate)
        writer.write(b"GET /feeds/all.rss HTTP/1.1\r\nHost: localhost\r\n"
                     b"Accept-Encoding: gzip\r\n\r\n")
        await writer.drain()
        status, _ = await asyncio.wait_for(read_response(reader), timeout=20)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
        out["connect_failed"] += 1
        return
    out["opened"] += 1
    out["first_ok"] += status == 200
    idle_since = time.monotonic()
    after = await wait_closed(reader, idle_since, deadline)
    if after is not None:
        out["closed_after"].append(after)
        out["closed_at"].append(idle_since + after)
    writer.close()


async def normal_client(host, port, count, out):
    request = (b"GET /feeds/all.rss HTTP/1.1\r\nHost: localhost\r\n"
               b"Accept-Encoding: gzip\r\nConnection: close\r\n\r\n")
    for _ in range(count):
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout=10)
            writer.write(request)
            await writer.drain()
            status, length = await asyncio.wait_for(read_response(reader), timeout=10)
            writer.close()
            out["latency"].append(time.monotonic() - started)
            out["started"].append(started)
            out["ok" if status == 200 and length > 0 else "bad_status"] += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            out["errors"] += 1
        out["at"].append(time.monotonic())
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - started)))


async def attack(host, port, args, t0):
    deadline = t0 + args.deadline - 10
    slow = {"opened": 0, "connect_failed": 0, "closed_after": [], "closed_at": [],
            "bytes_before_close": []}
    idle = {"opened": 0, "connect_failed": 0, "first_ok": 0, "closed_after": [],
            "closed_at": []}
    normal = {"ok": 0, "bad_status": 0, "errors": 0, "latency": [], "started": [], "at": []}
    started = time.monotonic()
    gate = asyncio.Semaphore(100)
    slow_task = asyncio.gather(
        *(slow_client(host, port, gate, deadline, slow) for _ in range(args.slow)))
    idle_task = asyncio.gather(
        *(idle_client(host, port, gate, deadline, idle) for _ in range(args.idle)))
    # Start timing the normal client once every abusive connection is open.
    open_by = time.monotonic() + 30
    while (slow["opened"] + slow["connect_failed"] < args.slow
           or idle["opened"] + idle["connect_failed"] < args.idle) and time.monotonic() < open_by:
        await asyncio.sleep(0.05)
    opened_after = time.monotonic() - started
    await normal_client(host, port, args.requests, normal)
    await asyncio.wait({slow_task, idle_task}, timeout=max(0, deadline - time.monotonic() + 5))
    return slow, idle, normal, opened_after


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default="data")
    ap.add_argument("--binary", default="target/release/vestnik")
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--deadline", type=int, default=100)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.slow + args.idle + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))

    t0 = time.monotonic()
    proc = subprocess.Popen(
        [args.binary, "serve", args.data, "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        line = proc.stdout.readline()
        m = re.match(r"listening on http://([^/:]+):(\d+)/", line)
        if not m:
            sys.exit(f"server did not start: {line!r}")
        host, port = m.group(1), int(m.group(2))
        base = f"http://{host}:{port}"
        while time.monotonic() - t0 < 60:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                if json.load(r).get("compressing") == 0:
                    break
            time.sleep(0.05)
        rss_before = rss_kb(proc.pid)
        slow, idle, normal, opened_after = asyncio.run(attack(host, port, args, t0))
        rss_after = rss_kb(proc.pid)
        alive = proc.poll() is None
        with urllib.request.urlopen(base + "/feeds/all.rss", timeout=5) as r:
            still_serving = r.status == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

    ms = [x * 1000 for x in normal["latency"]]
    # Requests made while every slow and idle connection was still open.
    first_close = min(slow["closed_at"] + idle["closed_at"], default=float("inf"))
    ms_open = [x * 1000 for x, t in zip(normal["latency"], normal["started"]) if t < first_close]
    print(json.dumps({
        "slow": {
            "connections": args.slow,
            "opened": slow["opened"],
            "connect_failed": slow["connect_failed"],
            "closed_by_server": len(slow["closed_after"]),
            "closed_after_s": spread(slow["closed_after"]),
            "bytes_sent_before_close": spread(slow["bytes_before_close"]),
        },
        "idle": {
            "connections": args.idle,
            "opened": idle["opened"],
            "connect_failed": idle["connect_failed"],
            "first_response_200": idle["first_ok"],
            "closed_by_server": len(idle["closed_after"]),
            "closed_after_idle_s": spread(idle["closed_after"]),
        },
        "normal": {
            "requests": args.requests,
            "ok": normal["ok"],
            "bad_status": normal["bad_status"],
            "errors": normal["errors"],
            "p50_ms": round(percentile(ms, 50), 2) if ms else None,
            "p99_ms": round(percentile(ms, 99), 2) if ms else None,
            "max_ms": round(max(ms), 2) if ms else None,
            "while_all_abusive_open": {
                "requests": len(ms_open),
                "p50_ms": round(percentile(ms_open, 50), 2) if ms_open else None,
                "p99_ms": round(percentile(ms_open, 99), 2) if ms_open else None,
                "max_ms": round(max(ms_open), 2) if ms_open else None,
            },
            "started_after_s": round(opened_after, 2),
            "span_s": round(normal["at"][-1] - normal["at"][0], 2) if normal["at"] else None,
        },
        "server": {
            "vmrss_kb_before": rss_before,
            "vmrss_kb_after": rss_after,
            "alive": alive,
            "still_serving": still_serving,
        },
        "wall_s": round(time.monotonic() - t0, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
