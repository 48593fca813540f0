#!/usr/bin/env python3
"""Backbone throughput: spamlens (tract) vs onnxruntime, same ONNX, same images, 2 threads each.

Both sides decode + preprocess every image and run it through the backbone; both use two cores.
onnxruntime: one session with intra_op_num_threads=2 (its standard way to use two cores), and two
sessions with one thread each in two Python threads (onnxruntime releases the GIL while running).
spamlens: `spamlens-throughput` with two workers sharing one model (1 thread each) and with one
worker using 2 intra-op threads. Prints images/s per configuration and the ratio best-vs-best.

Usage: python3 benches/compare_ort.py [--model PATH] [--images N] [--repeat R]
(builds the bench binary with `cargo build --release -p spamlens-benches` first).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reference"))
from ort_features import preprocess  # noqa: E402  (the same PIL reference the tests use)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def image_list(n):
    models = Path(os.environ.get("SPAMLENS_MODELS", SHARED / "models"))
    images = sorted((models / "testimages").glob("*"))
    data = SHARED / "data" / "imagespam"
    for name in ("dredze2007", "image-spam-hunter"):
        rows = [line.split("\t")[0] for line in (data / name / "manifest.tsv").read_text().splitlines()[1:]]
        step = max(1, len(rows) // max(1, (n - 3) // 2))
        images += [data / name / r for r in rows[::step][: (n - 3) // 2 + 1]]
    return [str(p) for p in images[:n]]


def ort_throughput(model, images, repeat, sessions, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    runners = [ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"]) for _ in range(sessions)]
    for s in runners:
        s.run(["features"], {"input": preprocess(images[0])})
    work = [images[i % len(images)] for i in range(len(images) * repeat)]
    lock = threading.Lock()

    def worker(session):
        while True:
            with lock:
                if not work:
                    return
                path = work.pop()
            session.run(["features"], {"input": preprocess(path)})

    total = len(work)
    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(s,)) for s in runners]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return total / (time.perf_counter() - start)


def ours(binary, model, images, repeat, workers, intra):
    out = subprocess.run(
        [binary, "--model", model, "--workers", str(workers), "--intra-op", str(intra), "--repeat", str(repeat), *images],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)["images_per_second"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(Path(os.environ.get("SPAMLENS_MODELS", SHARED / "models")) / "resnet50-v1-keras-imagenet.onnx"))
    parser.add_argument("--images", type=int, default=23)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "spamlens-throughput"))
    args = parser.parse_args()
    images = image_list(args.images)
    print(f"{len(images)} images x {args.repeat}, model {args.model}, onnxruntime {ort.__version__}")
    results = {}
    results["onnxruntime 1 session x 2 threads"] = ort_throughput(args.model, images, args.repeat, 1, 2)
    results["onnxruntime 2 sessions x 1 thread"] = ort_throughput(args.model, images, args.repeat, 2, 1)
    results["spamlens 2 workers x 1 thread"] = ours(args.binary, args.model, images, args.repeat, 2, 1)
    results["spamlens 1 worker x 2 threads"] = ours(args.binary, args.model, images, args.repeat, 1, 2)
    for name, value in results.items():
        print(f"{name:38s} {value:7.2f} images/s")
    best_ort = max(v for k, v in results.items() if k.startswith("onnxruntime"))
    best_ours = max(v for k, v in results.items() if k.startswith("spamlens"))
    print(f"ratio spamlens/onnxruntime (best vs best): {best_ours / best_ort:.2f}")


if __name__ == "__main__":
    main()
