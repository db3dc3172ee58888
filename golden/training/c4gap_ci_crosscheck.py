"""PyTorch cross-check of the ci-scale C4GAP training runs of recipes/dlgn-table1.yaml.

Question it answers: when the engine's ci-scale C4GAP reaches a given test accuracy, is that what
an independent implementation reaches with the same data, network, initialisation, optimiser and
batch order — i.e. is a weak ci baseline the engine's fault or the setting's?

Everything is rebuilt here from the spec and the documented conventions, not from the Swift code:
  data     data/mnist5k IDX files; split rule of data/mnist5k/README.md (first 400 of each class in
           file order = train, the other 100 = test); `per_class` keeps the first k of each class of
           the split (file order); `downsample f` averages f x f blocks; inputs are standardised with
           the training subset's mean and population std (one channel).
  network  C4GAP: 4 x [conv3x3 width, pad 1, act] -> global average pool -> linear 10 (SPEC B2);
           DNN act = ReLU; DGN / DLGN soft gates sigmoid(10 q_f) from a ReLU / linear feature net.
  init     --init engine: PyTorch's default bounds U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights
           and biases, drawn from SplitMix64(seed) (SIMDCore/Tensor/SeededRNG.swift documents the
           conversions) in forward first-use order (feature net, then value net; weight then bias)
           -> bit-identical starting parameters; --init torch: torch.manual_seed(seed) and
           nn.Conv2d / nn.Linear defaults (same distribution, independent draws).
  batches  epoch e visits SplitMix64(seed + e).permutation(N) (Fisher-Yates, below(n) =
           ((next >> 32) * n) >> 32), batches of B, the last one smaller.
  optim    torch.optim.Adam(lr) (betas 0.9 / 0.999, eps 1e-8) or SGD(momentum), cross-entropy.

Run:  /tmp/torch-env/bin/python golden/training/c4gap_ci_crosscheck.py --seeds 0 1 2
      (options: --variant dnn|dgn_xx|dgn_x1|dlgn_xx|dlgn_x1, --width, --epochs, --lr, --batch,
       --train-per-class, --test-per-class, --downsample, --init engine|torch)
Prints per epoch: mean training loss, training accuracy (during the epoch), test accuracy.
Writes nothing: the numbers it prints are quoted in the recipe summaries and the report.
"""
import argparse
import gzip
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MASK = (1 << 64) - 1


# ---- SplitMix64 (as documented in SeededRNG.swift) ----

class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform_tensor(self, shape, bound):
        n = int(np.prod(shape))
        u = np.array([self.next() >> 40 for _ in range(n)], dtype=np.float64).astype(np.float32) * np.float32(2.0 ** -24)
        lo, hi = np.float32(-bound), np.float32(bound)
        x = (lo + (hi - lo) * u).astype(np.float32)      # low + (high - low) * u, in Float
        return torch.from_numpy(x.reshape(shape))

    def below(self, n):
        return ((self.next() >> 32) * n) >> 32

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


# ---- data ----

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def load_split(split, per_class, downsample):
    d = os.path.join(ROOT, "data", "mnist5k")
    images = read_idx(os.path.join(d, "images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(d, "labels-idx1-ubyte.gz")).astype(np.int64)
    seen = [0] * 10
    idx = []
    for i, l in enumerate(labels):          # first 400 of each class (file order) are train
        is_train = seen[l] < 400
        seen[l] += 1
        if is_train == (split == "train"):
            idx.append(i)
    x, y = images[idx], labels[idx]
    if per_class is not None:               # first per_class of each class, data-set order kept
        taken = [0] * 10
        keep = []
        for i, l in enumerate(y):
            if taken[l] < per_class:
                taken[l] += 1
                keep.append(i)
        x, y = x[keep], y[keep]
    x = x.astype(np.float32) / np.float32(255)
    if downsample > 1:
        n, h, w = x.shape
        f = downsample
        x = x.reshape(n, h // f, f, w // f, f).sum(axis=(2, 4), dtype=np.float32) * np.float32(1 / (f * f))
    return x[:, None, :, :].astype(np.float32), y


def standardise(x, stats):
    m = stats.astype(np.float64).mean()
    s = np.sqrt(max((stats.astype(np.float64) ** 2).mean() - m * m, 1e-12))
    return ((x - np.float32(m)) * np.float32(1 / np.float32(s))).astype(np.float32)


# ---- C4GAP, DNN and gated ----

def declare(P, rng, pre, cin, width, head):
    def conv(name, ci, co):
        b = np.float32(1) / np.sqrt(np.float32(ci * 9))
        if rng is not None:
            P[name + ".weight"] = rng.uniform_tensor([co, ci, 3, 3], b)
            P[name + ".bias"] = rng.uniform_tensor([co], b)
        else:
            m = torch.nn.Conv2d(ci, co, 3, padding=1)
            P[name + ".weight"], P[name + ".bias"] = m.weight.detach().clone(), m.bias.detach().clone()
    c = cin
    for l in range(4):
        conv(pre + f"layers.{l}", c, width)
        c = width
    if head:
        if rng is not None:
            b = np.float32(1) / np.sqrt(np.float32(width))
            P[pre + "head.weight"] = rng.uniform_tensor([10, width], b)
            P[pre + "head.bias"] = rng.uniform_tensor([10], b)
        else:
            m = torch.nn.Linear(width, 10)
            P[pre + "head.weight"], P[pre + "head.bias"] = m.weight.detach().clone(), m.bias.detach().clone()


def c4(P, pre, x, act, head):
    z = x
    for l in range(4):
        z = act(l, F.conv2d(z, P[pre + f"layers.{l}.weight"], P[pre + f"layers.{l}.bias"], padding=1))
    return F.linear(z.mean(dim=(2, 3)), P[pre + "head.weight"], P[pre + "head.bias"]) if head else None


def forward(P, variant, x):
    if variant == "dnn":
        return c4(P, "", x, lambda l, q: F.relu(q), True)
    gates = [None] * 4
    linear = variant.startswith("dlgn")

    def fact(l, q):
        gates[l] = torch.sigmoid(10.0 * q)
        return q if linear else F.relu(q)
    c4(P, "feature.", x, fact, False)
    xv = torch.ones_like(x) if variant.endswith("x1") else x
    return c4(P, "value.", xv, lambda l, q: q * gates[l], True)


def train(args, seed, xtr, ytr, xte, yte):
    P = {}
    rng = SplitMix64(seed) if args.init == "engine" else None
    if args.init == "torch":
        torch.manual_seed(seed)
    if args.variant == "dnn":
        declare(P, rng, "", 1, args.width, True)
    else:
        declare(P, rng, "feature.", 1, args.width, False)
        declare(P, rng, "value.", 1, args.width, True)
    params = [P[k].requires_grad_() for k in sorted(P)]
    opt = (torch.optim.Adam(params, lr=args.lr) if args.optimizer == "adam"
           else torch.optim.SGD(params, lr=args.lr, momentum=args.momentum))
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xte_t, yte_t = torch.from_numpy(xte), torch.from_numpy(yte)
    n = len(ytr)
    out = []
    for e in range(args.epochs):
        order = SplitMix64(seed + e).permutation(n) if args.order == "engine" else torch.randperm(n).tolist()
        loss_sum, right = 0.0, 0
        for s in range(0, n, args.batch):
            ix = torch.tensor(order[s:s + args.batch])
            logits = forward(P, args.variant, xtr_t[ix])
            loss = F.cross_entropy(logits, ytr_t[ix])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(ix)
            right += (logits.argmax(1) == ytr_t[ix]).sum().item()
        with torch.no_grad():
            acc = (forward(P, args.variant, xte_t).argmax(1) == yte_t).float().mean().item() * 100
        out.append((loss_sum / n, 100 * right / n, acc))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variant", default="dnn", choices=["dnn", "dgn_xx", "dgn_x1", "dlgn_xx", "dlgn_x1"])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--train-per-class", type=int, default=100)
    ap.add_argument("--test-per-class", type=int, default=50)
    ap.add_argument("--downsample", type=int, default=2)
    ap.add_argument("--init", default="engine", choices=["engine", "torch"])
    ap.add_argument("--order", default="engine", choices=["engine", "torch"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    xtr, ytr = load_split("train", args.train_per_class, args.downsample)
    xte, yte = load_split("test", args.test_per_class, args.downsample)
    xte = standardise(xte, xtr)
    xtr = standardise(xtr, xtr)
    print(f"# C4GAP {args.variant} width {args.width}, {len(ytr)} train / {len(yte)} test at "
          f"{xtr.shape[2]}x{xtr.shape[3]}, {args.optimizer} lr {args.lr}, batch {args.batch}, "
          f"{args.epochs} epochs, init {args.init}, order {args.order}")
    finals = []
    for seed in args.seeds:
        recs = train(args, seed, xtr, ytr, xte, yte)
        for e, (l, tr, te) in enumerate(recs):
            print(f"seed {seed} epoch {e + 1}: train loss {l:.4f}  train acc {tr:.2f}  test acc {te:.2f}")
        finals.append(recs[-1][2])
    print(f"final test acc per seed: {', '.join(f'{a:.2f}' for a in finals)}; mean {np.mean(finals):.2f}")


if __name__ == "__main__":
    main()
