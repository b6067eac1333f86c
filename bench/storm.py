#!/usr/bin/env python3
"""A reload storm under load: feeds keep answering, whole and well-formed.

Usage: bench/storm.py [DATA] [--binary target/release/vestnik]
                      [--seconds 60] [--rewrites 100] [--connections 32]

Copies DATA (default `data/`) to a temporary directory and starts
`vestnik serve` on the copy, watching it. For --seconds it then, at once:

- loads every feed URL (combined and per section, every format) on loopback
  with wrk (`apt-get install -y wrk`), or with a Python keep-alive client
  pool when wrk is missing;
- rewrites entry files --rewrites times, evenly spaced: titles and bodies
  change every time, dates every tenth time (so entries move between
  feeds); even rewrites replace the file atomically (write, then rename),
  odd ones truncate and write it in two halves in place, so the watcher
  sees half-written files;
- samples a random feed every 0.2 s, a third of them conditionally
  (If-None-Match), and parses every 200 body strictly (expat for XML, json
  for JSON Feed);
- reads the server's VmRSS from /proc/PID/status every 0.5 s.

Afterwards it waits (at most 90 s) for the last reload to settle and checks that
/healthz reports the original entry count and no problems. Prints one JSON
object: requests and failures (non-200/304), malformed bodies, the load
generator's own figures, and VmRSS before, during (mean and max) and after.
Every wait is bounded.
"""

import argparse
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

FORMATS = ["rss", "atom", "json"]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def get(url, headers=None, timeout=10):
    """(status, headers, body) without raising on 304/4xx/5xx."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def health(base):
    return json.loads(get(base + "/healthz")[2])


def wait_settled(base, deadline):
    while time.monotonic() < deadline:
        try:
            if health(base).get("compressing") == 0:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def feed_paths(data):
    with open(os.path.join(data, "site.toml"), "rb") as f:
        site = tomllib.load(f)
    slugs = ["all"] + [s["slug"] for s in site.get("sections", [])]
    return [f"/feeds/{slug}.{ext}" for slug in slugs for ext in FORMATS]


def check_body(path, body):
    """None if the body parses strictly, else the parser's complaint."""
    try:
        if path.endswith(".json"):
            doc = json.loads(body)
            if not isinstance(doc.get("items"), list):
                return "JSON Feed without items"
        else:
            ET.fromstring(body)
    except (ValueError, ET.ParseError) as e:
        return str(e)
    return None


class Sampler(threading.Thread):
    """Fetches random feeds and parses every body strictly."""

    def __init__(self, base, paths, stop):
        super().__init__(daemon=True)
        self.base, self.paths, self.stop = base, paths, stop
        self.etags = {}
        self.stats = {"samples": 0, "ok_200": 0, "not_modified_304": 0,
                      "failures": 0, "errors": 0, "malformed": 0}
        self.problems = []

    def run(self):
        rng = random.Random(7)
        while not self.stop.is_set():
            path = rng.choice(self.paths)
            headers = {}
            if rng.random() < 0.5:
                headers["Accept-Encoding"] = "gzip"
            if path in self.etags and rng.random() < 0.33:
                headers["If-None-Match"] = self.etags[path]
            self.stats["samples"] += 1
            try:
                status, h, body = get(self.base + path, headers)
            except OSError as e:
                self.stats["errors"] += 1
                self.problems.append(f"{path}: {e}")
                continue
            if status == 304:
                self.stats["not_modified_304"] += 1
            elif status == 200:
                self.stats["ok_200"] += 1
                if h.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                elif h.get("Content-Encoding") == "br":
                    self.problems.append(f"{path}: br without asking")
                if h.get("ETag") and not h.get("Content-Encoding"):
                    self.etags[path] = h["ETag"]
                complaint = check_body(path, body)
                if complaint:
                    self.stats["malformed"] += 1
                    self.problems.append(f"{path}: {complaint}")
            else:
                self.stats["failures"] += 1
                self.problems.append(f"{path}: HTTP {status}")
            self.stop.wait(0.2)


class Rewriter(threading.Thread):
    """Rewrites entry files, evenly spaced, atomically or in place."""

    def __init__(self, data, count, seconds, stop):
        super().__init__(daemon=True)
        self.files = sorted(
            os.path.join(d, f)
            for d, _, fs in os.walk(os.path.join(data, "entries"))
            for f in fs if f.endswith(".md") and not f.startswith((".", "_")))
        self.count, self.seconds, self.stop = count, seconds, stop
        self.done = 0

    def run(self):
        interval = self.seconds / self.count
        start = time.monotonic()
        for i in range(self.count):
            if self.stop.wait(max(0.0, start + i * interval - time.monotonic())):
                return
            path = self.files[(i * 7) % len(self.files)]
            with open(path, encoding="utf-8") as f:
                text = f.read()
            text = re.sub(r'(?m)^title = "(.*?)( \(правка \d+\))?"$',
                          lambda m: f'title = "{m.group(1)} (правка {i})"', text, count=1)
            text = text.rstrip("\n") + f"\n\nПравка {i}.\n"
            if i % 10 == 0:
                # Move the entry: a date a few days later, same form.
                later = lambda d: f"{min(28, int(d) + 1):02d}"
                text, n = re.subn(r"(?m)^(date = \"?\d{4}-\d{2}-)(\d{2})",
                                  lambda m: m.group(1) + later(m.group(2)), text, count=1)
                if not n:
                    text = re.sub(r"(?m)^(date = \")(\d{2})(\.\d{2}\.\d{4})",
                                  lambda m: m.group(1) + later(m.group(2)) + m.group(3),
                                  text, count=1)
            data = text.encode("utf-8")
            if i % 2 == 0:
                tmp = os.path.join(os.path.dirname(path), f".storm-{i}.tmp")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            else:
                with open(path, "wb") as f:
                    f.write(data[: len(data) // 2])
                    f.flush()
                    os.fsync(f.fileno())
                    time.sleep(0.01)
                    f.write(data[len(data) // 2:])
            self.done += 1


def run_wrk(base, paths, seconds, connections, tmp):
    script = os.path.join(tmp, "paths.lua")
    with open(script, "w") as f:
        f.write("local paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n")
        f.write("local i = 0\n")
        f.write("request = function()\n  i = i + 1\n"
                "  return wrk.format('GET', paths[(i % #paths) + 1], "
                "{['Accept-Encoding'] = 'gzip, br'})\nend\n")
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
           "--timeout", "10s", "-s", script, base + "/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout

    def num(pattern, default=0):
        m = re.search(pattern, out)
        return m.group(1) if m else default

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "tool": "wrk " + " ".join(cmd[1:-3]),
        "requests": int(num(r"(\d+) requests in")),
        "requests_per_s": float(num(r"Requests/sec:\s+([\d.]+)")),
        "non_2xx_3xx": int(num(r"Non-2xx or 3xx responses: (\d+)")),
        # wrk prints the line only when some socket error happened.
        "socket_errors": dict(zip(["connect", "read", "write", "timeout"],
                                  map(int, errors.groups() if errors else (0, 0, 0, 0)))),
        "latency_p50": num(r"\n\s+50%\s+(\S+)", None),
        "latency_p99": num(r"\n\s+99%\s+(\S+)", None),
        "latency_max": num(r"Latency\s+\S+\s+\S+\s+(\S+)", None),
    }


def run_python_load(base, paths, seconds, connections):
    """Fallback when wrk is missing: keep-alive clients in threads."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(base)
    stats = {"requests": 0, "failures": 0, "errors": 0}
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker(n):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        i = n
        while time.monotonic() < end:
            i += 1
            try:
                conn.request("GET", paths[i % len(paths)], headers={"Accept-Encoding": "gzip"})
                r = conn.getresponse()
                r.read()
                with lock:
                    stats["requests"] += 1
                    stats["failures"] += r.status not in (200, 304)
            except (OSError, http.client.HTTPException):
                with lock:
                    stats["errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    stats["tool"] = f"python http.client, {connections} keep-alive connections"
    stats["requests_per_s"] = round(stats["requests"] / seconds, 1)
    return stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?", default="data")
    ap.add_argument("--binary", default="target/release/vestnik")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--rewrites", type=int, default=100)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="vestnik-storm-")
    data = os.path.join(tmp, "data")
    shutil.copytree(args.data, data)
    paths = feed_paths(data)
    proc = subprocess.Popen(
        [os.path.abspath(args.binary), "serve", data, "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        line = proc.stdout.readline()
        m = re.match(r"listening on (http://[^/]+)/", line)
        if not m:
            sys.exit(f"server did not start: {line!r}")
        base = m.group(1)
        if not wait_settled(base, time.monotonic() + 60):
            sys.exit("server never settled")
        before = health(base)
        rss_before = rss_kb(proc.pid)

        stop = threading.Event()
        rss_during = []
        sampler = Sampler(base, paths, stop)
        rewriter = Rewriter(data, args.rewrites, args.seconds, stop)

        def watch_rss():
            while not stop.wait(0.5):
                v = rss_kb(proc.pid)
                if v:
                    rss_during.append(v)

        watcher = threading.Thread(target=watch_rss, daemon=True)
        for t in (sampler, rewriter, watcher):
            t.start()
        if shutil.which("wrk"):
            load = run_wrk(base, paths, args.seconds, args.connections, tmp)
        else:
            load = run_python_load(base, paths, args.seconds, args.connections)
        rewriter.join(timeout=10)
        stop.set()
        sampler.join(timeout=15)

        # The last rewrite is complete on disk: the server must settle back to
        # every entry and no problems.
        settle_started = time.monotonic()
        deadline = settle_started + 90
        after = health(base)
        while time.monotonic() < deadline and (
                after["problems"] or after["entries"] != before["entries"]
                or after["compressing"]):
            time.sleep(0.1)
            after = health(base)
        settle_s = time.monotonic() - settle_started
        time.sleep(2)
        rss_after = rss_kb(proc.pid)
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    print(json.dumps({
        "seconds": args.seconds,
        "feeds": len(paths),
        "rewrites_done": rewriter.done,
        "load": load,
        "samples": sampler.stats,
        "sample_problems": sampler.problems[:10],
        "settled": {
            "entries_before": before["entries"],
            "entries_after": after["entries"],
            "problems_after": after["problems"],
            "compressing_after": after["compressing"],
            "seconds_to_settle": round(settle_s, 1),
        },
        "vmrss_kb": {
            "before": rss_before,
            "during_mean": round(sum(rss_during) / len(rss_during)) if rss_during else None,
            "during_max": max(rss_during) if rss_during else None,
            "after": rss_after,
        },
        "server_alive": alive,
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
