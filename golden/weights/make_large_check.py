#!/usr/bin/env python3
"""Optional full-size check for the .pth loader (nothing here is committed as a golden).

Writes <prefix>.pth = torch.save(torchvision.models.resnet50().state_dict()) (random init, ~100 MB, same
layout as resnet50-0676ba61.pth) and <prefix>.safetensors with the same tensors as float32, then:
  PTH_LARGE=<prefix> swift test -c release --filter StateDictTests/testLargeCheckpointIfAvailable
Usage: /tmp/torch-env/bin/python golden/weights/make_large_check.py /tmp/large [arch]
"""
import sys

import torch
import torchvision
from safetensors.torch import save_file

prefix = sys.argv[1]
arch = sys.argv[2] if len(sys.argv) > 2 else "resnet50"
torch.manual_seed(0)
sd = getattr(torchvision.models, arch)().state_dict()
torch.save(sd, prefix + ".pth")
save_file({k: v.contiguous().float() for k, v in sd.items()}, prefix + ".safetensors")
print(prefix, len(sd), "tensors")
