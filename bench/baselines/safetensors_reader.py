"""Reads a safetensors file into torch tensors (F32 / I64), for the PyTorch baselines.

The `safetensors` package is not assumed to be installed next to the torch wheel, and the
format is a JSON header plus raw little-endian arrays, so a dozen lines of numpy do.
"""
import json
import struct

import numpy as np
import torch

DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        data = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(data.copy())
    return out
