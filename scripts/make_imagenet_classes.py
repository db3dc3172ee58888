#!/usr/bin/env python3
"""Writes data/imagenet_classes.txt: the 1000 ImageNet-1k class names, one a line, in class-index
order, exactly as torchvision ships them (ResNet50_Weights.IMAGENET1K_V1.meta["categories"]).

Run once from the repository root with a Python that has torchvision:
    $(reference/setup-env.sh --python) scripts/make_imagenet_classes.py
"""
import pathlib
import torchvision

names = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
assert len(names) == 1000 and all("\n" not in n for n in names)
out = pathlib.Path(__file__).resolve().parent.parent / "data" / "imagenet_classes.txt"
out.write_text("".join(n + "\n" for n in names), encoding="utf-8")
print(f"wrote {len(names)} names to {out}")
