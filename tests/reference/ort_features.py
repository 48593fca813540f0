#!/usr/bin/env python3
"""Independent reference for spamlens' preprocessing + backbone: PIL + numpy + onnxruntime.

Reads image paths (one per line) from stdin, writes JSON to stdout:
{"images": [{"path": ..., "features": [2048 floats], "top1": int, "error": null}, ...]}

Preprocessing follows ../shared/models/PROVENANCE.md (torchvision's Resize(256) + CenterCrop(224)
+ Normalize): PIL bilinear resize of the shorter side to 256, centre crop with Python's round(),
/255, mean/std, NCHW. Transparency is composited onto white, as spamlens does.
"""
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def load_rgb(path):
    im = Image.open(path)
    im.seek(0)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")


def preprocess(path):
    im = load_rgb(path)
    w, h = im.size
    if w <= h:
        nw, nh = 256, int(256 * h / w)
    else:
        nw, nh = int(256 * w / h), 256
    im = im.resize((nw, nh), Image.BILINEAR)
    left = int(round((nw - 224) / 2.0))
    top = int(round((nh - 224) / 2.0))
    im = im.crop((left, top, left + 224, top + 224))
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - MEAN) / STD
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def main():
    model = sys.argv[1]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    out = []
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        try:
            features, probs = session.run(["features", "probs"], {"input": preprocess(path)})
            out.append({"path": path, "features": features[0].tolist(), "top1": int(probs[0].argmax()), "error": None})
        except Exception as e:  # reported per image, the Rust test decides
            out.append({"path": path, "features": None, "top1": None, "error": str(e)})
    json.dump({"onnxruntime": ort.__version__, "images": out}, sys.stdout)


if __name__ == "__main__":
    main()
