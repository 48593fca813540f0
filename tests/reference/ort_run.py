#!/usr/bin/env python3
"""Independent reference: run an ONNX model with onnxruntime on raw float32 inputs.

Usage: ort_run.py MODEL.onnx INPUTS.f32 BATCH OUTPUT_NAME OUT.f32
INPUTS.f32 holds BATCH items of the model's input (little-endian float32, C order); the named
output is written the same way. Used to check tract's results on spamlens' own graphs.
"""
import sys

import numpy as np
import onnxruntime as ort


def main() -> None:
    model, inputs, batch, output_name, out = sys.argv[1:6]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    per_item = [d for d in feed.shape[1:]]
    data = np.fromfile(inputs, dtype="<f4").reshape([int(batch)] + per_item)
    (result,) = session.run([output_name], {feed.name: data})
    np.asarray(result, dtype="<f4").tofile(out)


if __name__ == "__main__":
    main()
