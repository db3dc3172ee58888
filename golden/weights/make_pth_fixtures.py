#!/usr/bin/env python3
"""Writes small PyTorch .pth fixtures (torch.save zip format) and the expected tensors as safetensors.

Run: /tmp/torch-env/bin/python golden/weights/make_pth_fixtures.py   (from the repository root)

Fixtures (all tiny, committed):
  tiny_model.pth          state_dict of a torchvision-like net: conv (no bias), bn (incl. the int64
                          num_batches_tracked buffer), conv with bias, fc.  -> tiny_model.safetensors
  views.pth               non-contiguous tensor (a transposed view saved as such), two tensors viewing one
                          storage at different offsets, a float16, a bfloat16, a float64 and an int64
                          tensor.  -> views.safetensors (everything as float32, contiguous)
  malicious.pth           torch.save of an object whose __reduce__ returns (os.system, ('echo pwned > /tmp/pwned',)).
                          Must be refused by the loader without running anything.
  legacy.pth              the pre-1.6 non-zip format (_use_new_zipfile_serialization=False); must be refused.
  compressed.pth          tiny_model.pth re-zipped with deflate; must be refused (only stored entries).
The safetensors reference files hold float32 copies made by torch itself (.contiguous().float()).
"""
import os
import zipfile
from collections import OrderedDict

import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
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
    assert not sd["transposed"].is_contiguous()
    assert sd["shared.a"].untyped_storage().data_ptr() == sd["shared.b"].untyped_storage().data_ptr()
    torch.save(sd, os.path.join(HERE, "views.pth"))
    save_file(expected(sd), os.path.join(HERE, "views.safetensors"))


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
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))


if __name__ == "__main__":
    sd = tiny_model()
    views()
    malicious()
    legacy(sd)
    compressed()
    for f in sorted(os.listdir(HERE)):
        print(f, os.path.getsize(os.path.join(HERE, f)))
