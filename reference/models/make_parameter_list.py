"""The parameter names and shapes of torchvision's ImageNet classifiers, and their IMAGENET1K_V1 URLs.

Run from the repository root with the reference environment (reference/README.md):

    $(reference/setup-env.sh --python) reference/models/make_parameter_list.py

Writes Tests/Fixtures/models/torchvision_parameters.tsv, which ImageNetModelZooTests compares
every architecture `load_model` builds against. The models are built on the "meta" device, so
no weights are allocated or downloaded. One line per state_dict entry except BatchNorm's
num_batches_tracked (the engine keeps no step counter):

    <architecture> \t <name> \t <comma-separated shape>

and one line per architecture with its IMAGENET1K_V1 file:

    <architecture> \t @weights \t <url>
"""
import os

import torch
import torchvision
from torchvision import models

ARCHITECTURES = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "densenet121", "densenet161", "densenet169", "densenet201",
]

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
out = os.path.join(root, "Tests", "Fixtures", "models", "torchvision_parameters.tsv")
os.makedirs(os.path.dirname(out), exist_ok=True)
lines = [f"# torch {torch.__version__}, torchvision {torchvision.__version__}: reference/models/make_parameter_list.py"]
for arch in ARCHITECTURES:
    with torch.device("meta"):
        net = models.get_model(arch, weights=None)
    lines.append(f"{arch}\t@weights\t{models.get_model_weights(arch).IMAGENET1K_V1.url}")
    for name, t in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        lines.append(f"{arch}\t{name}\t{','.join(str(d) for d in t.shape)}")
with open(out + ".tmp", "w") as f:
    f.write("\n".join(lines) + "\n")
os.replace(out + ".tmp", out)
print(f"wrote {out}: {len(lines)} lines")
