#!/usr/bin/env python3
"""Pick a small, coverage-rich sample of a fuzz corpus as regression fixtures.

Usage (from the repository root, after `cargo +nightly fuzz cmin TARGET`):

    fuzz/select_regressions.py TARGET [--total 30] [--max-bytes 2048]

Runs libFuzzer's set-cover merge over fuzz/corpus/TARGET with a merge control file,
which records the coverage features of every input, then greedily picks the
inputs that add the most features not yet covered (smaller first on ties),
skipping inputs over --max-bytes. The picks replace the `cov-*` files in
tests/data/fuzz/TARGET/; hand-named fixtures there (`crash-*`, `known-*`) are
kept and count towards --total. Prints what it picked and the feature
coverage of the sample against the whole corpus.
"""

import argparse
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def features(target, corpus):
    """{path: (size, set of features)} from a merge control file."""
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        cmd = [
            "cargo", "+nightly", "fuzz", "run", target, out, str(corpus), "--",
            "-set_cover_merge=1", f"-merge_control_file={control}",
        ]
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if run.returncode != 0 or not os.path.exists(control):
            sys.exit(f"{' '.join(cmd)} failed:\n{run.stderr[-3000:]}")
        lines = pathlib.Path(control).read_text().splitlines()
    count = int(lines[0])
    files = lines[2:2 + count]
    result = {}
    sizes = {}
    for line in lines[2 + count:]:
        parts = line.split()
        if parts[0] == "STARTED":
            sizes[int(parts[1])] = int(parts[2])
        elif parts[0] == "FT":
            i = int(parts[1])
            result[files[i]] = (sizes.get(i, 0), set(parts[2:]))
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--total", type=int, default=30)
    ap.add_argument("--max-bytes", type=int, default=2048)
    args = ap.parse_args()

    corpus = ROOT / "fuzz" / "corpus" / args.target
    dest = ROOT / "tests" / "data" / "fuzz" / args.target
    dest.mkdir(parents=True, exist_ok=True)
    named = [p for p in dest.iterdir() if not p.name.startswith("cov-")]
    budget = args.total - len(named)
    if budget <= 0:
        sys.exit(f"{dest} already holds {len(named)} named fixtures")

    inputs = features(args.target, corpus)
    everything = set().union(*(f for _, f in inputs.values())) if inputs else set()
    small = {p: v for p, v in inputs.items() if v[0] <= args.max_bytes}
    covered, picks = set(), []
    for _ in range(budget):
        best = max(
            small.items(),
            key=lambda kv: (len(kv[1][1] - covered), -kv[1][0]),
            default=None,
        )
        if best is None or not (best[1][1] - covered):
            break
        path, (size, feats) = best
        covered |= feats
        picks.append((path, size))
        del small[path]

    for old in dest.glob("cov-*"):
        old.unlink()
    for path, size in picks:
        data = pathlib.Path(path).read_bytes()
        name = "cov-" + hashlib.sha1(data).hexdigest()[:12]
        shutil.copyfile(path, dest / name)
        print(f"{name}  {size} bytes")
    share = 100 * len(covered) / max(1, len(everything))
    print(
        f"{len(picks)} picks + {len(named)} named fixtures; "
        f"{len(covered)} of {len(everything)} corpus features ({share:.0f}%) "
        f"from {len(inputs)} corpus inputs"
    )


if __name__ == "__main__":
    main()
