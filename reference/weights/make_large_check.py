#!/usr/bin/env python3
"""Optional full-size checks for the .pth loader and the name mappings (nothing here is committed).

Writes <prefix>.pth and <prefix>.safetensors for a random-init torchvision model (full size, ~100-530 MB):
  resnet50     .pth = torch.save(state_dict) (layout of resnet50-0676ba61.pth); .safetensors = same names, float32
  densenet121  .pth uses the legacy dense-layer names of the published densenet121-a639ec97.pth
               (denselayerK.norm1 -> denselayerK.norm.1, ...); .safetensors uses torchvision's current names
  vgg11_bn     .pth = torchvision names; .safetensors = timm's names, produced with the rule of timm's vgg.py
               `_filter_fn` (classifier.0 -> pre_logits.fc1 reshaped [-1,512,7,7], classifier.3 -> pre_logits.fc2
               [-1,4096,1,1], classifier.6 -> head.fc)
Then:  PTH_LARGE=<prefix> PTH_LARGE_ARCH=<arch> swift test -c release --filter StateDictTests/testLargeCheckpointIfAvailable
which maps both files to torchvision names and compares every tensor.
Usage: $(reference/setup-env.sh --python) reference/weights/make_large_check.py /tmp/large resnet50
"""
import re
import sys

import torch
import torchvision
from safetensors.torch import save_file

prefix = sys.argv[1]
arch = sys.argv[2] if len(sys.argv) > 2 else "resnet50"
torch.manual_seed(0)
sd = getattr(torchvision.models, arch)().state_dict()
pth, st = dict(sd), {k: v.contiguous().float() for k, v in sd.items()}
if arch.startswith("densenet"):
    legacy = re.compile(r"^(.*denselayer\d+\.)(norm|relu|conv)([12])\.(weight|bias|running_mean|running_var)$")
    pth = {legacy.sub(r"\1\2.\3.\4", k): v for k, v in sd.items()}
    assert any(".norm.1." in k for k in pth)
if arch.startswith("vgg"):
    timm = {}
    for k, v in st.items():
        k2 = k.replace("classifier.0", "pre_logits.fc1").replace("classifier.3", "pre_logits.fc2").replace("classifier.6", "head.fc")
        if "classifier.0.weight" in k: v = v.reshape(-1, 512, 7, 7)
        if "classifier.3.weight" in k: v = v.reshape(-1, 4096, 1, 1)
        timm[k2] = v.contiguous()
    st = timm
torch.save(pth, prefix + ".pth")
save_file(st, prefix + ".safetensors")
print(prefix, arch, len(sd), "tensors")
