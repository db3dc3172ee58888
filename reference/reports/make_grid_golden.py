#!/usr/bin/env python3
"""Goldens for ImageGrid: torchvision make_grid normalisation/layout and save_image's 8-bit conversion.

Regenerate:  $(reference/setup-env.sh --python) reference/reports/make_grid_golden.py
Writes Tests/Fixtures/reports/make_grid_golden.json (read by Tests/RecipesTests/ReportTests.swift).

Five cells [C,4,5] laid out with nrow=3, so the grid is 2x3 with the last slot empty (left at
pad_value, which ImageGrid reproduces with a nil cell). Cell 3 is one-channel (make_grid would
replicate it to 3 channels; here it is replicated before stacking, as the batch must share C).
Cell 4 is constant, exercising the max(hi - lo, 1e-5) denominator.
"""
import json, os
import torch, torchvision
from torchvision.utils import make_grid

torch.manual_seed(0)
cells = [
    torch.randn(3, 4, 5) * 2.0 + 0.5,
    torch.rand(3, 4, 5) * 0.1 - 3.0,
    torch.randn(3, 4, 5) * 10.0,
    torch.randn(1, 4, 5),
    torch.full((3, 4, 5), 0.25),
]
batch = torch.stack([c.expand(3, -1, -1) if c.shape[0] == 1 else c for c in cells])

def to_bytes(grid):
    # torchvision.utils.save_image's conversion (without the PIL round trip).
    return grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)

cases = {
    "per_cell": dict(normalize=True, scale_each=True),
    "global": dict(normalize=True, scale_each=False),
    "range": dict(normalize=True, value_range=(-0.5, 1.0)),
    "identity_pad1_grey": dict(normalize=False, padding=1, pad_value=0.5),
}
out = {
    "torch": torch.__version__, "torchvision": torchvision.__version__,
    "nrow": 3,
    "cells": [{"shape": list(c.shape), "values": c.flatten().tolist()} for c in cells],
    "cases": {},
}
for name, kw in cases.items():
    kw = dict(kw)
    padding = kw.pop("padding", 2)
    pad_value = kw.pop("pad_value", 0.0)
    g = make_grid(batch.clone(), nrow=3, padding=padding, pad_value=pad_value, **kw)
    out["cases"][name] = {
        "padding": padding, "pad_value": pad_value,
        "value_range": list(kw.get("value_range", [])),
        "shape": list(g.shape),
        "grid": g.flatten().tolist(),
        "bytes": to_bytes(g).flatten().tolist(),
    }
path = os.path.join(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Tests", "Fixtures", "reports"), "make_grid_golden.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print("wrote", path, os.path.getsize(path), "bytes")
