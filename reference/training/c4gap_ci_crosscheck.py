"""PyTorch cross-check of the ci-scale C4GAP training runs of recipes/dlgn-table1.yaml.

Question it answers: when the engine's ci-scale C4GAP reaches a given test accuracy, is that what
an independent implementation reaches with the same data, network, initialisation, optimiser and
batch order — i.e. is a weak ci baseline the engine's fault or the setting's?

Everything is rebuilt here from the spec and the documented conventions, not from the Swift code:
  data     data/mnist5k IDX files; split rule of data/mnist5k/README.md (first 400 of each class in
           file order = train, the other 100 = test); `per_class` keeps the first k of each class of
           the split (file order); `downsample f` averages f x f blocks; inputs are standardised with
           the training subset's mean and population std (one channel).
  network  C4GAP: 4 x [conv3x3 width, pad 1, act] -> global average pool -> linear 10 (paper B);
           DNN act = ReLU; DGN / DLGN soft gates sigmoid(10 q_f) from a ReLU / linear feature net.
  init     --init engine: PyTorch's default bounds U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights
           and biases, drawn from SplitMix64(seed) (SIMDCore/Tensor/SeededRNG.swift documents the
           conversions) in forward first-use order (feature net, then value net; weight then bias)
           -> bit-identical starting parameters; --init torch: torch.manual_seed(seed) and
           nn.Conv2d / nn.Linear defaults (same distribution, independent draws).
  batches  epoch e visits SplitMix64(seed + e).permutation(N) (Fisher-Yates, below(n) =
           ((next >> 32) * n) >> 32), batches of B, the last one smaller.
  optim    torch.optim.Adam(lr) (betas 0.9 / 0.999, eps 1e-8) or SGD(momentum), cross-entropy.

Run:  $(reference/setup-env.sh --python) reference/training/c4gap_ci_crosscheck.py --seeds 0 1 2
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


VGG_BLOCKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]


def uniform_param(rng, shape, fan_in, module):
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from SplitMix64 (engine init) or the torch module's own init."""
    if rng is not None:
        return rng.uniform_tensor(shape, np.float32(1) / np.sqrt(np.float32(fan_in)))
    return module.detach().clone()


def declare_bn(P, S, name, c):
    P[name + ".weight"], P[name + ".bias"] = torch.ones(c), torch.zeros(c)
    S[name] = [torch.zeros(c), torch.ones(c)]


def declare_vgg(P, S, rng, pre, cin, div, head):
    c, l = cin, 0
    for block in VGG_BLOCKS:
        for ch in block:
            co = max(1, ch // div)
            P[pre + f"layers.{l}.conv.weight"] = uniform_param(rng, [co, c, 3, 3], c * 9, None if rng else torch.nn.Conv2d(c, co, 3, bias=False).weight)
            declare_bn(P, S, pre + f"layers.{l}.bn", co)
            c, l = co, l + 1
    if head:
        m = None if rng else torch.nn.Linear(c, 10)
        P[pre + "head.weight"] = uniform_param(rng, [10, c], c, None if rng else m.weight)
        P[pre + "head.bias"] = uniform_param(rng, [10], c, None if rng else m.bias)


def declare_resnet(P, S, rng, pre, cin, w, head):
    def conv(name, ci, co):
        P[name + ".weight"] = uniform_param(rng, [co, ci, 3, 3], ci * 9, None if rng else torch.nn.Conv2d(ci, co, 3, bias=False).weight)
    conv(pre + "stem.conv", cin, w)
    declare_bn(P, S, pre + "stem.bn", w)
    c = w
    for s, ch in enumerate([w, 2 * w, 4 * w]):      # one basic block per stage: ResNet-8
        nm = pre + f"stages.{s}.0"
        conv(nm + ".conv1", c, ch); declare_bn(P, S, nm + ".bn1", ch)
        conv(nm + ".conv2", ch, ch); declare_bn(P, S, nm + ".bn2", ch)
        c = ch
    if head:
        m = None if rng else torch.nn.Linear(c, 10)
        P[pre + "head.weight"] = uniform_param(rng, [10, c], c, None if rng else m.weight)
        P[pre + "head.bias"] = uniform_param(rng, [10], c, None if rng else m.bias)


def bn(P, S, name, x, training):
    rm, rv = S[name]
    return F.batch_norm(x, rm, rv, P[name + ".weight"], P[name + ".bias"], training=training, momentum=0.1, eps=1e-5)


def vgg(P, S, pre, x, act, head, training):
    z, l = x, 0
    for block in VGG_BLOCKS:
        for _ in block:
            z = act(l, bn(P, S, pre + f"layers.{l}.bn", F.conv2d(z, P[pre + f"layers.{l}.conv.weight"], None, padding=1), training))
            l += 1
        z = F.avg_pool2d(z, 2)
    return F.linear(z.mean(dim=(2, 3)), P[pre + "head.weight"], P[pre + "head.bias"]) if head else None


def resnet(P, S, pre, x, act, head, training):
    z = act(0, bn(P, S, pre + "stem.bn", F.conv2d(x, P[pre + "stem.conv.weight"], None, padding=1), training))
    l = 1
    for s in range(3):
        stride = 2 if s > 0 else 1
        nm = pre + f"stages.{s}.0"
        c = P[nm + ".conv1.weight"].shape[0]
        z1 = act(l, bn(P, S, nm + ".bn1", F.conv2d(z, P[nm + ".conv1.weight"], None, stride=stride, padding=1), training))
        q2 = bn(P, S, nm + ".bn2", F.conv2d(z1, P[nm + ".conv2.weight"], None, padding=1), training)
        if stride != 1 or z.shape[1] != c:        # option A: subsample, zero-pad channels on both sides
            pad = (c - z.shape[1]) // 2
            sc = F.pad(z[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))
        else:
            sc = z
        z = act(l + 1, q2 + sc)
        l += 2
    return F.linear(z.mean(dim=(2, 3)), P[pre + "head.weight"], P[pre + "head.bias"]) if head else None


def c4(P, pre, x, act, head):
    z = x
    for l in range(4):
        z = act(l, F.conv2d(z, P[pre + f"layers.{l}.weight"], P[pre + f"layers.{l}.bias"], padding=1))
    return F.linear(z.mean(dim=(2, 3)), P[pre + "head.weight"], P[pre + "head.bias"]) if head else None


def forward(P, S, arch, variant, x, training):
    def body(pre, x, act, head):
        if arch == "vgg16":
            return vgg(P, S, pre, x, act, head, training)
        if arch == "resnet8":
            return resnet(P, S, pre, x, act, head, training)
        return c4(P, pre, x, act, head)
    if variant == "dnn":
        return body("", x, lambda l, q: F.relu(q), True)
    gates = [None] * 13
    linear = variant.startswith("dlgn")

    def fact(l, q):
        gates[l] = torch.sigmoid(10.0 * q)
        return q if linear else F.relu(q)
    body("feature.", x, fact, False)
    xv = torch.ones_like(x) if variant.endswith("x1") else x
    return body("value.", xv, lambda l, q: q * gates[l], True)


def scaled_table2(it, total):
    """Paper B Table II's schedule (0.01 | 0.1 | 0.01 | 0.001 with boundaries 400, 32k, 48k of 64k
    iterations) with its boundaries scaled to `total` iterations: ceil(total*400/64000), total/2, 3*total/4."""
    b = [-(-total * 400 // 64000), total // 2, 3 * total // 4]
    v = [0.01, 0.1, 0.01, 0.001]
    k = 0
    while k < 3 and it >= b[k]:
        k += 1
    return v[k]


def train(args, seed, xtr, ytr, xte, yte):
    P, S = {}, {}
    rng = SplitMix64(seed) if args.init == "engine" else None
    if args.init == "torch":
        torch.manual_seed(seed)

    def dec(pre, head):
        if args.arch == "vgg16":
            declare_vgg(P, S, rng, pre, 1, max(1, 64 // args.width), head)
        elif args.arch == "resnet8":
            declare_resnet(P, S, rng, pre, 1, args.width, head)
        else:
            declare(P, rng, pre, 1, args.width, head)
    if args.variant == "dnn":
        dec("", True)
    else:
        dec("feature.", False)
        dec("value.", True)
    params = [P[k].requires_grad_() for k in sorted(P)]   # BN running statistics live in S, untrained
    opt = (torch.optim.Adam(params, lr=args.lr) if args.optimizer == "adam"
           else torch.optim.SGD(params, lr=args.lr, momentum=args.momentum))
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xte_t, yte_t = torch.from_numpy(xte), torch.from_numpy(yte)
    n = len(ytr)
    total = args.epochs * ((n + args.batch - 1) // args.batch)
    it = 0
    out = []
    for e in range(args.epochs):
        order = SplitMix64(seed + e).permutation(n) if args.order == "engine" else torch.randperm(n).tolist()
        loss_sum, right = 0.0, 0
        for s in range(0, n, args.batch):
            ix = torch.tensor(order[s:s + args.batch])
            logits = forward(P, S, args.arch, args.variant, xtr_t[ix], True)
            loss = F.cross_entropy(logits, ytr_t[ix])
            if args.schedule == "paper_b_table2_scaled":
                for g in opt.param_groups:
                    g["lr"] = scaled_table2(it, total)
            it += 1
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(ix)
            right += (logits.argmax(1) == ytr_t[ix]).sum().item()
        with torch.no_grad():
            right_te = 0
            for s in range(0, len(yte), 256):      # eval mode (BatchNorm running statistics), batches of 256
                right_te += (forward(P, S, args.arch, args.variant, xte_t[s:s + 256], False).argmax(1) == yte_t[s:s + 256]).sum().item()
            acc = 100 * right_te / len(yte)
        out.append((loss_sum / n, 100 * right / n, acc))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variant", default="dnn", choices=["dnn", "dgn_xx", "dgn_x1", "dlgn_xx", "dlgn_x1"])
    ap.add_argument("--arch", default="c4gap", choices=["c4gap", "vgg16", "resnet8"])
    ap.add_argument("--width", type=int, default=16, help="c4gap width; vgg16 first-block width; resnet8 base width")
    ap.add_argument("--pad", type=int, default=0, help="zero padding per side after loading (vgg16 / resnet8: 2, 28 -> 32)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--schedule", default="constant", choices=["constant", "paper_b_table2_scaled"],
                    help="paper_b_table2_scaled: Table II's lr values, boundaries scaled to this run's iterations")
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
    if args.pad:
        pw = ((0, 0), (0, 0), (args.pad, args.pad), (args.pad, args.pad))
        xtr, xte = np.pad(xtr, pw), np.pad(xte, pw)
    xte = standardise(xte, xtr)
    xtr = standardise(xtr, xtr)
    print(f"# {args.arch} {args.variant} width {args.width}, {len(ytr)} train / {len(yte)} test at "
          f"{xtr.shape[2]}x{xtr.shape[3]}, {args.optimizer} lr {args.lr if args.schedule == 'constant' else args.schedule}, batch {args.batch}, "
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
