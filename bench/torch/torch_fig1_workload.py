"""PyTorch CPU side of the paper-A figure workload, end to end, for a wall-time and peak-memory
comparison with `runner recipes/fig1.yaml --set scale=paper --set weights=synthetic --set images=shipped`.

The same work as that run: ResNet50 (random weights: timing and memory do not depend on their
values) with paper A's soft backward (ReLU: dy * sigmoid(z/T), T = 0.3; max-pool: gradient of the
surrogate soft pool); the two shipped images pre-processed as paper A's app (square: resize to 224;
else short side 256, centre crop 224), pixels in [-1, 1]; for each image one batch of 6 copies,
one per target class, pushed by 5 steps of L2 projected gradient ascent on the raw target logit
(alpha 20, eps 100); the perturbed - clean grid and the perturbed grid written with
torchvision's save_image(normalize=True, scale_each=True).

Usage: python torch_fig1_workload.py THREADS OUT_DIR
Prints one JSON line: {"threads", "wall_s", "peak_rss_mb"}. Compare with /usr/bin/time -v on the
runner (README, "Benchmarks").
"""
import json, os, resource, sys, time

t_start = time.perf_counter()
import torch, torch.nn as nn, torch.nn.functional as F, torchvision
from PIL import Image
from torchvision.utils import save_image

sys.path.insert(0, os.path.dirname(__file__))
from torch_pullback_bench import swap  # noqa: E402  (soft ReLU and surrogate soft max-pool)

TARGETS = [0, 482, 497, 569, 574, 9]
ALPHA, EPS, STEPS, SIZE = 20.0, 100.0, 5, 224
IMAGES = ["data/images/chelsea.png", "data/images/rocket.jpg"]


def preprocess(path):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w == h:
        img = img.resize((SIZE, SIZE), Image.BILINEAR)
    else:
        s = SIZE * 256 // 224
        img = img.resize((s, round(h * s / w)) if w < h else (round(w * s / h), s), Image.BILINEAR)
        w, h = img.size
        left, top = (w - SIZE) // 2, (h - SIZE) // 2
        img = img.crop((left, top, left + SIZE, top + SIZE))
    x = torch.from_numpy(__import__("numpy").asarray(img, dtype="float32") / 255).permute(2, 0, 1)
    return x * 2 - 1


def main():
    threads, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = swap(torchvision.models.resnet50(weights=None)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    f = lambda x: model(((x + 1) / 2 - mean) / std)
    targets = torch.tensor(TARGETS)
    diffs, perturbed = [], []
    for path in IMAGES:
        x0 = preprocess(path).unsqueeze(0).repeat(len(TARGETS), 1, 1, 1)
        x = x0.clone()
        for _ in range(STEPS):
            x.requires_grad_(True)
            logits = f(x)
            g, = torch.autograd.grad(logits.gather(1, targets.view(-1, 1)).sum(), x)
            with torch.no_grad():
                g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                x = x + ALPHA * g
                d = x - x0
                n = d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                x = (x0 + d * torch.clamp(EPS / n.clamp_min(1e-12), max=1)).clamp(-1, 1)
        with torch.no_grad():
            f(x)  # logits after the ascent, as the runner reports them
        diffs.append(torch.cat([x0[:1], (x - x0)]))
        perturbed.append(torch.cat([x0[:1], x]))
    save_image(torch.cat(diffs), os.path.join(out, "pga.png"), nrow=len(TARGETS) + 1, normalize=True, scale_each=True)
    save_image(torch.cat(perturbed), os.path.join(out, "pga_perturbed.png"), nrow=len(TARGETS) + 1, normalize=True, scale_each=True)
    print(json.dumps({"threads": threads, "wall_s": time.perf_counter() - t_start,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
