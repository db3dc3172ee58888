#!/usr/bin/env python3
"""Writes small PyTorch .pth fixtures (torch.save zip format) and the expected tensors as safetensors.

Run: $(reference/setup-env.sh --python) reference/weights/make_pth_fixtures.py   (from the repository root)

Fixtures (all tiny, committed):
  tiny_model.pth          state_dict of a torchvision-like net: conv (no bias), bn (incl. the int64
                          num_batches_tracked buffer), conv with bias, fc.  -> tiny_model.safetensors
  views.pth               non-contiguous tensor (a transposed view saved as such), two tensors viewing one
                          storage at different offsets, a float16, a bfloat16, a float64, an int64 tensor,
                          a 0-d tensor and an nn.Parameter.  -> views.safetensors (everything as float32, contiguous)
  dtypes16.safetensors    views.pth's "half" and "bf16" tensors stored as F16 / BF16 safetensors.
  malicious.pth           torch.save of an object whose __reduce__ returns (os.system, ('echo pwned > /tmp/pwned',)).
                          Must be refused by the loader without running anything.
  legacy.pth              the pre-1.6 non-zip format (_use_new_zipfile_serialization=False); must be refused.
                          (Not byte-reproducible: that format keys storages by memory address.)
  compressed.pth          tiny_model.pth re-zipped with deflate; must be refused (only stored entries).
  zip64.pth               tiny_model.pth re-zipped (stored) with Python's ZIP64 limit lowered to 64 bytes, so entry
                          sizes, local-header offsets and the end record all go through ZIP64 records; torch.load
                          reads it and must give tiny_model.safetensors.
The safetensors reference files hold float32 copies made by torch itself (.contiguous().float()).
"""
import os
import zipfile
from collections import OrderedDict

import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Tests", "Fixtures", "weights")
torch.manual_seed(0)


def expected(sd):
    return {k: v.detach().contiguous().to(torch.float32).clone() for k, v in sd.items()}


class Tiny(nn.Module):
    """conv1 -> bn1 -> relu -> layer1.0.conv (bias) -> pool -> fc, named like torchvision."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(nn.Conv2d(4, 4, 1, bias=True))
        self.fc = nn.Linear(4, 3)


def tiny_model():
    m = Tiny()
    m.train()
    with torch.no_grad():   # make BN running stats non-trivial and num_batches_tracked = 2
        x = torch.randn(2, 3, 6, 6)
        m.bn1(m.conv1(x)); m.bn1(m.conv1(x * 2))
    sd = m.state_dict()
    assert sd["bn1.num_batches_tracked"].dtype == torch.int64
    torch.save(sd, os.path.join(HERE, "tiny_model.pth"))
    save_file(expected(sd), os.path.join(HERE, "tiny_model.safetensors"))
    return sd


def views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
    shared = torch.randn(20)
    sd = OrderedDict()
    sd["transposed"] = base.t()                     # [6,4], strides (1,6): non-contiguous
    sd["strided"] = base[:, ::2]                    # [4,3], strides (6,2)
    sd["shared.a"] = shared[2:8].view(2, 3)         # storage offset 2
    sd["shared.b"] = shared[10:20]                  # same storage, offset 10
    sd["half"] = torch.randn(5).to(torch.float16)
    sd["bf16"] = torch.randn(2, 2).to(torch.bfloat16)
    sd["double"] = torch.randn(3, dtype=torch.float64)
    sd["long"] = torch.tensor([3, -7, 1 << 20], dtype=torch.int64)
    sd["scalar"] = torch.tensor(2.5)
    sd["param"] = nn.Parameter(torch.randn(3))      # pickled through torch._utils._rebuild_parameter
    assert not sd["transposed"].is_contiguous()
    assert sd["shared.a"].untyped_storage().data_ptr() == sd["shared.b"].untyped_storage().data_ptr()
    torch.save(sd, os.path.join(HERE, "views.pth"))
    save_file(expected(sd), os.path.join(HERE, "views.safetensors"))
    # The same half/bfloat16 tensors stored as F16/BF16 safetensors (reader test for those dtypes).
    save_file({"half": sd["half"], "bf16": sd["bf16"]}, os.path.join(HERE, "dtypes16.safetensors"))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/pwned",))


def malicious():
    torch.save({"weight": torch.zeros(2), "payload": Evil()}, os.path.join(HERE, "malicious.pth"))


def legacy(sd):
    torch.save(sd, os.path.join(HERE, "legacy.pth"), _use_new_zipfile_serialization=False)


def compressed():
    src = os.path.join(HERE, "tiny_model.pth")
    dst = os.path.join(HERE, "compressed.pth")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():   # fixed timestamps: the fixture is byte-reproducible
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), zin.read(info.filename),
                          compress_type=zipfile.ZIP_DEFLATED)


def zip64():
    src = os.path.join(HERE, "tiny_model.pth")
    dst = os.path.join(HERE, "zip64.pth")
    saved = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 64          # force ZIP64 extra fields and end records on a tiny archive
    try:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                zout.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), zin.read(info.filename))
    finally:
        zipfile.ZIP64_LIMIT = saved
    with open(dst, "rb") as f:
        raw = f.read()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw, "expected a ZIP64 end record and locator"
    back = torch.load(dst, weights_only=True)
    ref = torch.load(src, weights_only=True)
    assert all(torch.equal(back[k], ref[k]) for k in ref)


if __name__ == "__main__":
    sd = tiny_model()
    views()
    malicious()
    legacy(sd)
    compressed()
    zip64()
    for f in sorted(os.listdir(HERE)):
        print(f, os.path.getsize(os.path.join(HERE, f)))
