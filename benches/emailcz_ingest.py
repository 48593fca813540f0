#!/usr/bin/env python3
"""Email.cz ingest throughput: `spamlens-train ingest-emailcz` vs Python's json module doing the
same paper-mode filtering (drop self-inconsistent users, merge unmark/nonad into ham, >N reactions,
majority with ties dropped, consistency threshold) on the same file. Prints MB/s for both and
the ratio.

Usage: python3 benches/emailcz_ingest.py FILE [--min-reactions N] [--min-consistency C]
Make a file first, e.g. `spamlens-train synth-emailcz --lines 20000 --out /tmp/synth.json`
(the full size is 778768 lines, about 16 GB uncompressed).
"""
import argparse
import gzip
import json
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

CLASS = {
    "USER_MESSAGE_MARK_SPAM": "spam",
    "USER_MESSAGE_MARK_AD": "ad",
    "USER_MESSAGE_UNMARK_SPAM": "ham",
    "USER_MESSAGE_MARK_NONAD": "ham",
}


def python_ingest(path, min_reactions, min_consistency):
    opener = gzip.open if path.endswith(".gz") else open
    kept = Counter()
    with opener(path, "rt") as f:
        for line in f:
            if not line.strip():
                continue
            users, features = json.loads(line)
            if len(features) != 2048:
                continue
            counts = Counter()
            for user in users:
                classes = {CLASS[r] for r in user}
                if len(classes) == 1:
                    counts.update(CLASS[r] for r in user)
            total = sum(counts.values())
            if total == 0 or total <= min_reactions:
                continue
            (top, n), *rest = counts.most_common()
            if rest and rest[0][1] == n:
                continue
            if n / total < min_consistency:
                continue
            kept[top] += 1
    return kept


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--min-reactions", type=int, default=0)
    parser.add_argument("--min-consistency", type=float, default=0.0)
    parser.add_argument("--binary", default=str(Path(__file__).resolve().parent.parent / "target" / "release" / "spamlens-train"))
    args = parser.parse_args()
    size_mb = os.path.getsize(args.file) / 1e6

    start = time.perf_counter()
    out = subprocess.run(
        [args.binary, "ingest-emailcz", args.file, "--min-reactions", str(args.min_reactions),
         "--min-consistency", str(args.min_consistency)],
        check=True, capture_output=True, text=True,
    ).stdout
    ours_s = time.perf_counter() - start
    ours = {m.group(1): int(m.group(2)) for m in re.finditer(r"kept (\w+)\s+(\d+)", out)}

    start = time.perf_counter()
    theirs = python_ingest(args.file, args.min_reactions, args.min_consistency)
    python_s = time.perf_counter() - start

    print(f"file {args.file}: {size_mb:.0f} MB")
    print(f"spamlens-train ingest-emailcz : {size_mb / ours_s:8.1f} MB/s ({ours_s:.1f} s, process start and model-free)")
    print(f"python json                   : {size_mb / python_s:8.1f} MB/s ({python_s:.1f} s)")
    print(f"ratio spamlens/python: {python_s / ours_s:.1f}x")
    same = all(ours.get(k, 0) == theirs.get(k, 0) for k in ("ham", "spam", "ad"))
    print(f"kept per class: spamlens {ours}, python {dict(theirs)} -> {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
