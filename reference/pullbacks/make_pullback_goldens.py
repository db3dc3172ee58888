#!/usr/bin/env python3
"""Goldens for paper A's excitation pullbacks on ResNet50, VGG11_BN and DenseNet121.

Independent reference: torchvision's own model classes (weights=None) run in PyTorch (float64),
with paper A's semantics written here from the paper (docs/method.md; 314-Foundation/ExcitationPullbacks):
  - every nn.ReLU module -> forward max(z,0), backward dy * sigmoid(z/T);
  - every nn.MaxPool2d module -> forward the hard max-pool, backward the gradient of the soft
    surrogate pool s = sum_j softmax(x_window/T)_j x_j (zero padding, softmax weights NOT detached);
  - functional ReLUs stay hard (DenseNet121's F.relu after norm5);
  - input wrapper: x in [-1,1] -> (x+1)/2 -> Normalize(ImageNet mean, std); eval mode.
T = 0.3. The Swift tests (Tests/RecipesTests/PullbackGoldenTests.swift) regenerate the same
weights and images from the seeds below, bit for bit, and compare.

Run:  $(reference/setup-env.sh --python) reference/pullbacks/make_pullback_goldens.py   (from the repo root)

SYNTHETIC WEIGHTS (the recipe SyntheticWeights.fill in Swift reproduces exactly)
  RNG: SplitMix64 (Sources/SIMDCore/Tensor/SeededRNG.swift), one generator per model, seed:
       resnet50 = 50, vgg11_bn = 11, densenet121 = 121.
  Tensors are visited in torchvision state_dict order; `num_batches_tracked` is skipped (no draws).
  Each tensor is filled in row-major order with uniform(lo, hi) = lo + (hi - lo) * u (float32
  arithmetic), u = float32(next >> 40) * 2^-24, where (by name suffix / rank):
       rank >= 2 ("weight" of conv / linear):  lo = -b, hi = b, b = float32(sqrt(6 / fan_in)) for
                                               conv/hidden layers, fan_in = prod(shape[1:]);
                                               the LAST linear layer (fc / classifier.6 / classifier)
                                               uses b = float32(sqrt(3 / fan_in)).
       "running_var":                          lo = 0.5,  hi = 1.5
       "running_mean":                         lo = -0.1, hi = 0.1
       rank 1 "weight" (BatchNorm gamma):      per architecture, to keep activations O(1) through
                                               the depth (logit std measured 4.1 / 4.4 / 6.8):
                                               resnet50 [0.5, 1.0), vgg11_bn [0.8, 1.2),
                                               densenet121 [1.0, 1.25)
       rank 1 "bias" (BN beta, conv/linear):   lo = -0.1, hi = 0.1
  (sqrt computed in double, then rounded to float32.)

SYNTHETIC IMAGES
  N = 2 images of 3 x 64 x 64 (smaller than 224 to keep goldens and CI fast; all three nets accept
  it). Seed 2025, one SplitMix64 generator, images drawn in NCHW row-major order: a smooth part
  plus noise so that the images have structure:  x = clamp(0.7 * s + uniform(-0.3, 0.3), -1, 1)
  where s = uniform(-1, 1) drawn first for an 8x8 grid per channel (all of image 0's 3x8x8 values,
  then image 1's), upsampled by nearest neighbour (pixel (h, w) takes grid (h // 8, w // 8)); then the
  noise uniform(-0.3, 0.3) for all 2x3x64x64 pixels in row-major order. Arithmetic in float32:
  v = 0.7f * s + n, then clamp.

TARGETS: image 0 -> its own top-1 class (pullback of the predicted logit); image 1 -> the class with
  the LOWEST logit (a counterfactual).

PGA (paper A, pullback gates, raw target logit): steps = 5, alpha = 6, eps = 15. Paper A uses alpha=20,
  eps=100 at 224x224 (150528 dims); at 64x64 (12288 dims) the same per-pixel step size is
  alpha = 20 * 64/224 = 5.7, and eps = 15 < steps * alpha makes the eps projection (and the clamp to
  [-1, 1]) actually act in the test. Both values are stored in the file.

STORED per architecture, Tests/Fixtures/pullbacks/<arch>.safetensors (float32):
  images [2,3,64,64], logits [2,1000], targets [2] (as float), pullback [2,3,64,64] (gradient of
  logit[target] w.r.t. x in [-1,1] space at T=0.3), vanilla [2,3,64,64] (same, hard gates),
  pga [2,3,64,64] (5-step PGA images), weights.first / weights.last [16] (first 16 values of the
  first and of the last state_dict tensor, to check the weight generator bit for bit).
  Metadata: seeds, T, alpha, eps, steps, resolution, the state_dict names (comma separated, without
  num_batches_tracked) and the logit std.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import json

GAMMA = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)

SEEDS = {"resnet50": 50, "vgg11_bn": 11, "densenet121": 121}
GAMMA_RANGE = {"resnet50": (0.5, 1.0), "vgg11_bn": (0.8, 1.2), "densenet121": (1.0, 1.25)}
LAST_LINEAR = {"resnet50": "fc.weight", "vgg11_bn": "classifier.6.weight", "densenet121": "classifier.weight"}
IMAGE_SEED = 2025
N, H, W = 2, 64, 64
T = 0.3
ALPHA, EPS, STEPS = 6.0, 15.0, 5
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


# MARK: SplitMix64, vectorised (state after k calls = seed + k * gamma, mod 2^64)
class SplitMix64:
    def __init__(self, seed):
        self.state = np.uint64(seed)

    def next_u64(self, n):
        out = np.empty(n, dtype=np.uint64)
        chunk = 1 << 22
        with np.errstate(over="ignore"):
            for start in range(0, n, chunk):
                m = min(chunk, n - start)
                k = np.arange(start + 1, start + m + 1, dtype=np.uint64)
                z = self.state + k * GAMMA
                z = (z ^ (z >> np.uint64(30))) * M1
                z = (z ^ (z >> np.uint64(27))) * M2
                out[start:start + m] = z ^ (z >> np.uint64(31))
            self.state = self.state + np.uint64(n) * GAMMA
        return out

    def uniform(self, n, lo, hi):
        u = (self.next_u64(n) >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
        lo, hi = np.float32(lo), np.float32(hi)
        return (lo + (hi - lo) * u).astype(np.float32)


def _check_rng():
    # Reference values of SplitMix64(seed 0): 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4
    r = SplitMix64(0)
    v = r.next_u64(2)
    assert int(v[0]) == 0xE220A8397B1DCDAF and int(v[1]) == 0x6E789E6AA1B965F4, [hex(int(x)) for x in v]


def fill_weights(model, arch):
    rng = SplitMix64(SEEDS[arch])
    sd = model.state_dict()
    names = []
    new = {}
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            new[name] = torch.zeros_like(t)
            continue
        names.append(name)
        n = t.numel()
        if t.dim() >= 2:
            fan_in = int(np.prod(t.shape[1:]))
            b = np.float32(math.sqrt((3.0 if name == LAST_LINEAR[arch] else 6.0) / fan_in))
            v = rng.uniform(n, -b, b)
        elif name.endswith("running_var"):
            v = rng.uniform(n, 0.5, 1.5)
        elif name.endswith("running_mean"):
            v = rng.uniform(n, -0.1, 0.1)
        elif name.endswith("weight"):
            v = rng.uniform(n, *GAMMA_RANGE[arch])
        elif name.endswith("bias"):
            v = rng.uniform(n, -0.1, 0.1)
        else:
            raise ValueError(f"no recipe for {name}")
        new[name] = torch.from_numpy(v.reshape(tuple(t.shape)))
    model.load_state_dict(new)
    return names, new


def save_safetensors(tensors, path, metadata):
    """safetensors with keys and metadata in sorted order, so reruns are byte-identical
    (safetensors' own writer orders the metadata map arbitrarily)."""
    header, offset, blobs = {"__metadata__": dict(sorted(metadata.items()))}, 0, []
    for name in sorted(tensors):
        b = tensors[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * ((8 - (8 + len(js)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(js).to_bytes(8, "little") + js + b"".join(blobs))
    os.replace(tmp, path)


def make_images():
    rng = SplitMix64(IMAGE_SEED)
    s = rng.uniform(N * 3 * 8 * 8, -1.0, 1.0).reshape(N, 3, 8, 8)
    s = s.repeat(8, axis=2).repeat(8, axis=3)
    noise = rng.uniform(N * 3 * H * W, -0.3, 0.3).reshape(N, 3, H, W)
    x = (np.float32(0.7) * s + noise).astype(np.float32)
    return np.clip(x, np.float32(-1.0), np.float32(1.0)).astype(np.float32)


# MARK: paper A's soft-backward modules (forward unchanged)
class SoftGateReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, temperature):
        ctx.save_for_backward(z)
        ctx.temperature = temperature
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, dy):
        (z,) = ctx.saved_tensors
        return dy * torch.sigmoid(z / ctx.temperature), None


class SoftGateReLU(nn.Module):
    def __init__(self, temperature):
        super().__init__()
        self.temperature = temperature

    def forward(self, x):
        return SoftGateReLUFn.apply(x, self.temperature)


class SurrogateMaxPool(nn.Module):
    """Hard max-pool forward; backward = gradient of sum_j softmax(x_win/T)_j x_j (zero padded)."""

    def __init__(self, pool: nn.MaxPool2d, temperature):
        super().__init__()
        self.k, self.s, self.p = pool.kernel_size, pool.stride, pool.padding
        assert isinstance(self.k, int) and pool.dilation == 1 and not pool.ceil_mode
        self.temperature = temperature

    def forward(self, x):
        b, c, h, w = x.shape
        hard = F.max_pool2d(x, self.k, self.s, self.p)
        win = F.unfold(x, self.k, padding=self.p, stride=self.s).view(b, c, self.k * self.k, -1)
        soft = (torch.softmax(win / self.temperature, dim=2) * win).sum(dim=2).view_as(hard)
        return hard.detach() + (soft - soft.detach())  # exactly the hard value forward


def swap_gates(module, temperature):
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, SoftGateReLU(temperature))
        elif isinstance(child, nn.MaxPool2d):
            setattr(module, name, SurrogateMaxPool(child, temperature))
        else:
            swap_gates(child, temperature)


class Wrapped(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(MEAN, dtype=torch.float64).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD, dtype=torch.float64).view(1, 3, 1, 1))

    def forward(self, x):
        return self.backbone(((x + 1) / 2 - self.mean) / self.std)


def input_gradient(model, x, targets):
    x = x.clone().requires_grad_(True)
    out = model(x)
    out[torch.arange(len(targets)), targets].sum().backward()
    return x.grad.detach()


def pga(model, x0, targets, alpha, eps, steps):
    x = x0.clone()
    for _ in range(steps):
        g = input_gradient(model, x, targets)
        gn = g.flatten(1).norm(dim=1).clamp_min(1e-20).view(-1, 1, 1, 1)
        x = x + alpha * g / gn
        d = x - x0
        dn = d.flatten(1).norm(dim=1).clamp_min(1e-20)
        d = d * torch.clamp(eps / dn, max=1.0).view(-1, 1, 1, 1)
        x = (x0 + d).clamp(-1, 1)
    return x


def build(arch):
    ctor = getattr(torchvision.models, arch)
    torch.manual_seed(0)  # irrelevant (all tensors overwritten), keeps construction quiet and fixed
    net = ctor(weights=None)
    names, sd = fill_weights(net, arch)
    return net, names, sd


def main():
    _check_rng()
    out_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Tests", "Fixtures", "pullbacks")
    images = torch.from_numpy(make_images())
    only = sys.argv[1:] or list(SEEDS)
    for arch in only:
        net, names, sd = build(arch)
        plain = Wrapped(net).double().eval()
        net2, _, _ = build(arch)
        swap_gates(net2, T)
        soft = Wrapped(net2).double().eval()
        x = images.double()
        with torch.no_grad():
            logits = plain(x)
            logits_soft = soft(x)
        assert torch.equal(logits, logits_soft), "soft gates must not change the forward pass"
        top = logits.argmax(dim=1)
        low = logits.argmin(dim=1)
        targets = torch.stack([top[0], low[1]])
        pullback = input_gradient(soft, x, targets)
        vanilla = input_gradient(plain, x, targets)
        perturbed = pga(soft, x, targets, ALPHA, EPS, STEPS)
        cos = F.cosine_similarity(pullback.flatten(1), vanilla.flatten(1), dim=1)
        with torch.no_grad():
            lp = soft(perturbed)
        print(f"{arch}: logits std {logits.std():.3f} range [{logits.min():.3f}, {logits.max():.3f}] "
              f"targets {targets.tolist()} cos(pullback, vanilla) {cos.tolist()} "
              f"target logit before {logits[[0, 1], targets].tolist()} after PGA {lp[[0, 1], targets].tolist()} "
              f"|delta| {(perturbed - x).flatten(1).norm(dim=1).tolist()}")
        first, last = names[0], names[-1]
        tensors = {
            "images": images.float().contiguous(),
            "logits": logits.float().contiguous(),
            "targets": targets.float().contiguous(),
            "pullback": pullback.float().contiguous(),
            "vanilla": vanilla.float().contiguous(),
            "pga": perturbed.float().contiguous(),
            "weights.first": sd[first].flatten()[:16].float().contiguous(),
            "weights.last": sd[last].flatten()[:16].float().contiguous(),
        }
        meta = {
            "arch": arch, "weight_seed": str(SEEDS[arch]), "image_seed": str(IMAGE_SEED),
            "temperature": str(T), "alpha": str(ALPHA), "eps": str(EPS), "steps": str(STEPS),
            "resolution": f"{H}x{W}", "state_dict": ",".join(names),
            "logit_std": f"{logits.std().item():.4f}",
            "source": "reference/pullbacks/make_pullback_goldens.py (torch %s, torchvision %s, float64)"
                      % (torch.__version__, torchvision.__version__),
        }
        save_safetensors(tensors, os.path.join(out_dir, f"{arch}.safetensors"), meta)


if __name__ == "__main__":
    main()
