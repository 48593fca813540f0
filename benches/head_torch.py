#!/usr/bin/env python3
"""The paper's head trained in PyTorch vs `spamlens-train train` (Burn), same data, same recipe.

Both train 2048 -> 2048 ReLU -> softmax with Adam (lr 1e-3, eps 1e-7), cross-entropy weighted
by inverse class frequency (normalised like PyTorch's weighted mean), the given batch size and
epochs, on the same stratified split sizes of a spamlens feature store. Prints training samples/s
(optimiser steps only) for both, the ratio spamlens / PyTorch, and both held-out weighted F1s.
Throughput is given over all epochs and over the epochs after the first ("steady"): on a GPU the
first epoch carries one-off work (burn-cuda compiles its kernels with NVRTC and autotunes each
matrix shape; PyTorch initialises cuBLAS), which dominates short runs such as the paper's
80 epochs of one 5000-row batch.

Usage:
    cargo build --release -p spamlens-trainer      # or the (optimised) dev build; SPAMLENS_TRAIN=path overrides
    python3 benches/head_torch.py features/dredze2007.parquet [--epochs 80] [--batch-size 5000] [--device cpu|cuda]

PyTorch is only this reference's dependency (`pip install torch`); spamlens does not use it.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq


def load(store):
    table = pq.read_table(store, columns=["label", "features"])
    labels = table.column("label").to_pylist()
    classes = sorted(set(labels), key=lambda c: (["ham", "spam", "ad"].index(c) if c in ("ham", "spam", "ad") else 3, c))
    y = np.array([classes.index(l) for l in labels], dtype=np.int64)
    flat = table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    x = np.asarray(flat, dtype=np.float32).reshape(len(labels), -1)
    return x, y, classes


def stratified(y, fraction, seed):
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        rng.shuffle(rows)
        n_test = int(round(len(rows) * fraction))
        test.extend(rows[:n_test])
        train.extend(rows[n_test:])
    return np.array(sorted(train)), np.array(sorted(test))


def weighted_f1(y_true, y_pred, classes):
    total = 0.0
    for c in range(classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        total += f1 * np.sum(y_true == c)
    return total / len(y_true)


def torch_run(x, y, classes, train, test, args):
    import torch

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 2048), torch.nn.ReLU(), torch.nn.Linear(2048, len(classes))
    ).to(device)
    counts = np.bincount(y[train], minlength=len(classes))
    weights = torch.tensor(len(train) / (len(classes) * np.maximum(counts, 1)), dtype=torch.float32, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    xt = torch.from_numpy(x).to(device)
    yt = torch.from_numpy(y).to(device)
    rng = np.random.default_rng(args.seed)
    order = train.copy()
    epoch_seconds = []
    for _ in range(args.epochs):
        rng.shuffle(order)
        start = time.perf_counter()
        for i in range(0, len(order), args.batch_size):
            idx = torch.from_numpy(order[i : i + args.batch_size]).to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
            loss.item()  # the same host sync spamlens does per step (it logs the loss)
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        pred = model(xt[torch.from_numpy(test).to(device)]).argmax(1).cpu().numpy()
    return throughput(len(train), epoch_seconds), weighted_f1(y[test], pred, len(classes)), torch.get_num_threads()


def throughput(rows, epoch_seconds):
    """(samples/s over all epochs, samples/s over the epochs after the first or None)."""
    overall = rows * len(epoch_seconds) / sum(epoch_seconds)
    rest = epoch_seconds[1:]
    return overall, (rows * len(rest) / sum(rest) if rest and sum(rest) > 0 else None)


def spamlens_run(store, args):
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")
    candidates = [os.environ.get("SPAMLENS_TRAIN", ""), os.path.join(target, "release", "spamlens-train"),
                  os.path.join(target, "debug", "spamlens-train")]  # the dev profile is optimised too
    found = [c for c in candidates[1:] if os.path.exists(c)]
    binary = candidates[0] or (max(found, key=os.path.getmtime) if found else None)  # the newest build
    if binary is None:
        sys.exit("spamlens-train not built: cargo build --release -p spamlens-trainer (or set SPAMLENS_TRAIN)")
    with tempfile.TemporaryDirectory() as out:
        cmd = [binary, "train", "--store", store, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--seed", str(args.seed), "--head-only", "--no-plots", "--out", out, "--device", args.device]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit(f"{binary} train failed (exit {done.returncode}):\n" + "\n".join(done.stderr.splitlines()[-10:]))
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
    epoch_seconds = [epoch["train_seconds"] for epoch in report["history"]]
    rows = sum(report["data"]["train_counts"])
    return throughput(rows, epoch_seconds), report["test_metrics"]["weighted_f1"], report["device"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    x, y, classes = load(args.store)
    train, test = stratified(y, 0.25, args.seed)
    torch_sps, torch_f1, threads = torch_run(x, y, classes, train, test, args)
    ours_sps, ours_f1, ours_device = spamlens_run(args.store, args)
    print(f"{args.store}: {len(train)} train / {len(test)} test rows, {args.epochs} epochs, batch {args.batch_size}")
    fmt = lambda v: f"{v:10.0f}" if v else "       n/a"
    print(f"  pytorch  ({args.device}, {threads} threads): {fmt(torch_sps[0])} samples/s, steady {fmt(torch_sps[1])}  weighted F1 {torch_f1:.4f}")
    print(f"  spamlens ({ours_device}): {fmt(ours_sps[0])} samples/s, steady {fmt(ours_sps[1])}  weighted F1 {ours_f1:.4f}")
    steady = f", steady {ours_sps[1] / torch_sps[1]:.2f}" if ours_sps[1] and torch_sps[1] else ""
    print(f"  ratio spamlens / pytorch: {ours_sps[0] / torch_sps[0]:.2f}{steady}")


if __name__ == "__main__":
    main()
