#!/usr/bin/env python3
"""Backbone throughput: spamlens (tract) vs onnxruntime, same ONNX, same images, in one run.

Both sides decode + preprocess every image and run it through the backbone, on one core and on
every core this process may use. On all cores each side gets its best layout: onnxruntime one
session with intra_op_num_threads=N or N sessions with one thread each (in Python threads;
onnxruntime releases the GIL while running); spamlens (`spamlens-throughput`) N workers sharing
one model or one worker with N intra-op threads. Three versions of the model are measured: f32,
int8 weights (`spamlens-train quantize`) and int8 compute (`quantize --calibrate` on the shared
image sets: QLinearConv with calibrated activation ranges). Prints images/s per configuration and
the ratios.

Usage: python3 benches/compare_ort.py [--model PATH] [--int8 PATH] [--qlinear PATH] [--images N] [--repeat R] [--binary B]
(build first: `cargo build --release -p spamlens-benches -p spamlens-trainer`; --binary
target/debug/spamlens-throughput works too, dependencies are optimised in the dev profile).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
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


def ort_session(model, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def ort_load_millis(model):
    """Median of three session creations on one thread (read, parse, graph optimisation)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        ort_session(model, 1)
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[1]


def ort_throughput(model, images, repeat, sessions, threads):
    runners = [ort_session(model, threads) for _ in range(sessions)]
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
    return json.loads(out.stdout)


def measure(label, model, binary, images, repeat, cores):
    """One model: onnxruntime and spamlens on one core and on every core (best layout of each)."""
    ort_one = ort_throughput(model, images, repeat, 1, 1)
    ours_one_run = ours(binary, model, images, repeat, 1, 1)
    ours_one = ours_one_run["images_per_second"]
    ort_all = {
        f"1 session x {cores} threads": ort_throughput(model, images, repeat, 1, cores),
        f"{cores} sessions x 1 thread": ort_throughput(model, images, repeat, cores, 1),
    }
    ours_all = {
        f"{cores} workers x 1 thread": ours(binary, model, images, repeat, cores, 1)["images_per_second"],
        f"1 worker x {cores} threads": ours(binary, model, images, repeat, 1, cores)["images_per_second"],
    }
    ort_load = ort_load_millis(model)
    ours_load = ours_one_run["load_millis"]
    print(f"{label}: {model}")
    print(f"  load        onnxruntime {ort_load:7.0f} ms         spamlens {ours_load:7.0f}   ratio {ours_load / ort_load:.2f}")
    print("  spamlens load phases (ms): " + ", ".join(f"{p['phase']} {p['millis']:.0f}" for p in ours_one_run["load_phases"]))
    print(f"  1 core      onnxruntime {ort_one:7.2f} images/s   spamlens {ours_one:7.2f}   ratio {ours_one / ort_one:.2f}")
    for name, value in ort_all.items():
        print(f"  {cores} cores     onnxruntime {value:7.2f} images/s ({name})")
    for name, value in ours_all.items():
        print(f"  {cores} cores     spamlens    {value:7.2f} images/s ({name})")
    best_ort, best_ours = max(ort_all.values()), max(ours_all.values())
    print(f"  {cores} cores     ratio spamlens/onnxruntime (best vs best): {best_ours / best_ort:.2f}")
    return {"one_core": ours_one / ort_one, "all_cores": best_ours / best_ort}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(Path(os.environ.get("SPAMLENS_MODELS", SHARED / "models")) / "resnet50-v1-keras-imagenet.onnx"))
    parser.add_argument("--int8", help="the int8-weight model (default: made from --model with `spamlens-train quantize`)")
    parser.add_argument("--qlinear", help="the int8-compute model (default: made from --model with "
                        "`spamlens-train quantize --calibrate` on the shared image sets)")
    parser.add_argument("--train-binary", default=None, help="spamlens-train, to make the int8 models")
    parser.add_argument("--images", type=int, default=23)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "spamlens-throughput"))
    args = parser.parse_args()
    images = image_list(args.images)
    cores = len(os.sched_getaffinity(0))
    print(f"{len(images)} images x {args.repeat}, onnxruntime {ort.__version__}, {cores} cores")
    train = args.train_binary or str(Path(args.binary).parent / "spamlens-train")
    int8, qlinear = args.int8, args.qlinear
    if int8 is None:
        int8 = str(Path(tempfile.mkdtemp()) / "model.int8.onnx")
        subprocess.run([train, "quantize", args.model, "--out", int8], check=True, capture_output=True)
    if qlinear is None:
        data = Path(os.environ.get("SPAMLENS_DATA", SHARED / "data" / "imagespam"))
        qlinear = str(Path(tempfile.mkdtemp()) / "model.qlinear.onnx")
        subprocess.run([train, "quantize", args.model, "--out", qlinear, "--calibrate", str(data / "dredze2007"),
                        "--calibrate", str(data / "image-spam-hunter")], check=True, capture_output=True)
    ratios = {
        "f32": measure("f32 weights", args.model, args.binary, images, args.repeat, cores),
        "int8 weights": measure("int8 weights (widened to f32 at load; onnxruntime runs DequantizeLinear)", int8, args.binary, images, args.repeat, cores),
        "int8 compute": measure("int8 compute (QLinearConv, calibrated activations)", qlinear, args.binary, images, args.repeat, cores),
    }
    print("summary: " + ", ".join(f"{k} {v['one_core']:.2f} (1 core) / {v['all_cores']:.2f} ({cores} cores)" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
