#!/usr/bin/env python3
"""PyTorch goldens for conv2d and linear (forward and backward), read by
Tests/RecipesTests/ConvGoldenTests.swift.

Run: $(reference/setup-env.sh --python) reference/ops/make_conv_goldens.py   (writes Tests/Fixtures/ops/conv.safetensors)

For each case "cK": inputs cK.x, cK.w, cK.b, upstream gradient cK.dy, and PyTorch's cK.y = conv2d(x, w, b),
cK.dx, cK.dw, cK.db = gradients of sum(dy * y). The metadata holds "cK" -> "stride,padding".
Linear case "lin": lin.x [N,in], lin.w [out,in], lin.b, lin.dy, lin.y, lin.dx, lin.dw, lin.db.
Values are float32 drawn from torch.Generator seed 0 (the exact draws need not be reproducible elsewhere:
the Swift test only reads the file).
"""
import os

import torch
from safetensors.torch import save_file

CASES = [
    # (N, Cin, H, W, Cout, kh, kw, stride, padding)
    (2, 3, 9, 8, 4, 3, 3, 2, 1),     # 3x3 stride 2 padding 1, batch 2, odd H
    (1, 4, 7, 7, 5, 1, 1, 2, 0),     # 1x1 stride 2 (ResNet downsample)
    (1, 3, 11, 13, 6, 7, 7, 2, 3),   # 7x7 stride 2 padding 3 (ResNet stem), Cin = 3
    (2, 5, 6, 5, 3, 3, 3, 1, 1),     # 3x3 same padding
    (1, 6, 5, 6, 7, 1, 1, 1, 0),     # 1x1 pointwise
    (1, 2, 8, 7, 3, 5, 3, 1, 2),     # non-square 5x3 kernel
]


def main():
    g = torch.Generator().manual_seed(0)
    out, meta = {}, {}
    for i, (n, cin, h, w, cout, kh, kw, s, p) in enumerate(CASES):
        x = (torch.rand(n, cin, h, w, generator=g) * 2 - 1).requires_grad_()
        wt = ((torch.rand(cout, cin, kh, kw, generator=g) * 2 - 1) * 0.5).requires_grad_()
        b = (torch.rand(cout, generator=g) * 2 - 1).requires_grad_()
        y = torch.nn.functional.conv2d(x, wt, b, stride=s, padding=p)
        dy = torch.rand(y.shape, generator=g) * 2 - 1
        y.backward(dy)
        k = f"c{i}"
        for name, t in [("x", x), ("w", wt), ("b", b), ("dy", dy), ("y", y),
                        ("dx", x.grad), ("dw", wt.grad), ("db", b.grad)]:
            out[f"{k}.{name}"] = t.detach().contiguous().float()
        meta[k] = f"{s},{p}"
    x = (torch.rand(3, 10, generator=g) * 2 - 1).requires_grad_()
    wt = (torch.rand(4, 10, generator=g) * 2 - 1).requires_grad_()
    b = (torch.rand(4, generator=g) * 2 - 1).requires_grad_()
    y = torch.nn.functional.linear(x, wt, b)
    dy = torch.rand(y.shape, generator=g) * 2 - 1
    y.backward(dy)
    for name, t in [("x", x), ("w", wt), ("b", b), ("dy", dy), ("y", y), ("dx", x.grad), ("dw", wt.grad), ("db", b.grad)]:
        out[f"lin.{name}"] = t.detach().contiguous().float()
    meta["cases"] = str(len(CASES))
    meta["torch"] = torch.__version__
    path = os.path.join(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Tests", "Fixtures", "ops"), "conv.safetensors")
    save_file(out, path, metadata=meta)
    print(f"wrote {path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
