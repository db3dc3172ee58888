#!/usr/bin/env python3
"""PyTorch goldens for the engine's non-GEMM ops.

Run:  $(reference/setup-env.sh --python) reference/ops/make_op_goldens.py
Writes Tests/Fixtures/ops/*.safetensors (float32). Each file holds several cases `<case>.<tensor>`; the
metadata entry `<case>` lists the case's parameters as `key=value` pairs separated by spaces.
For every case: inputs, the upstream gradient `dy` (a fixed random tensor), the output `y` and the
gradients `dx` (and `dweight`, `dbias`, ... where there are parameters) of sum(dy * y).

Inputs are drawn with torch.Generator seeded per file, so re-running reproduces the files exactly
(on the same PyTorch version, CPU).

The soft gates follow paper A's published semantics (314-Foundation/ExcitationPullbacks,
lib/modules.py), re-implemented here:
  - soft ReLU: forward relu(z), backward grad * sigmoid(z / T)  (custom autograd Function)
  - surrogate soft max-pool: forward = hard max_pool2d; backward = gradient of
    s = sum_j softmax(unfold(x) / T)_j * unfold(x)_j, where unfold zero-pads, weights not detached
    (paper A) or detached (successor work).
"""
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Tests", "Fixtures", "ops")
torch.set_default_dtype(torch.float32)


def write(name, tensors, meta):
    tensors = {k: v.detach().clone().contiguous().to(torch.float32) for k, v in tensors.items()}
    save_file(tensors, os.path.join(HERE, name + ".safetensors"), metadata=meta)
    size = os.path.getsize(os.path.join(HERE, name + ".safetensors"))
    print(f"{name}.safetensors: {len(tensors)} tensors, {size} bytes")


def params(**kw):
    return " ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in kw.items())


def grad_of(fn, *inputs, dy_gen):
    """Runs fn on leaf copies of inputs; returns y, dy and the input gradients of sum(dy * y)."""
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    y = fn(*leaves)
    dy = torch.randn(y.shape, generator=dy_gen)
    (y * dy).sum().backward()
    return y, dy, [l.grad for l in leaves]


# MARK: max-pool (hard)
def maxpool():
    g = torch.Generator().manual_seed(1)
    cases = {
        "k3s2p1": ((2, 3, 9, 9), dict(kernel=3, stride=2, padding=1, ceil=False)),   # ResNet stem
        "k2s2": ((1, 2, 8, 7), dict(kernel=2, stride=2, padding=0, ceil=False)),      # VGG, odd width
        "k3s2ceil": ((1, 2, 8, 8), dict(kernel=3, stride=2, padding=0, ceil=True)),   # GoogLeNet style
        # ceil rule: (5 + 2 - 2)/2 -> ceil 2.5 + 1 = 4 windows, but the 4th would start in the right
        # padding (3 * 2 >= 5 + 1), so PyTorch drops it: 3.
        "k2s2p1ceil": ((1, 2, 5, 5), dict(kernel=2, stride=2, padding=1, ceil=True)),
        "k3s1p1": ((1, 1, 6, 5), dict(kernel=3, stride=1, padding=1, ceil=False)),
    }
    out, meta = {}, {}
    for name, (shape, p) in cases.items():
        x = torch.randn(shape, generator=g)
        y, dy, (dx,) = grad_of(lambda t: F.max_pool2d(t, p["kernel"], p["stride"], p["padding"], ceil_mode=p["ceil"]),
                               x, dy_gen=g)
        out.update({f"{name}.x": x, f"{name}.y": y, f"{name}.dy": dy, f"{name}.dx": dx})
        meta[name] = params(**p)
    write("maxpool", out, meta)


# MARK: average pools
def avgpool():
    g = torch.Generator().manual_seed(2)
    cases = {}
    for include in (True, False):
        tag = "incl" if include else "excl"
        cases[f"k3s2p1_{tag}"] = ((2, 2, 7, 8), dict(kernel=3, stride=2, padding=1, ceil=False, include_pad=include))
        cases[f"k3s2p1ceil_{tag}"] = ((1, 2, 8, 6), dict(kernel=3, stride=2, padding=1, ceil=True, include_pad=include))
        cases[f"k2s2p1ceil_{tag}"] = ((1, 1, 5, 5), dict(kernel=2, stride=2, padding=1, ceil=True, include_pad=include))
    cases["k2s2"] = ((2, 3, 6, 6), dict(kernel=2, stride=2, padding=0, ceil=False, include_pad=True))
    out, meta = {}, {}
    for name, (shape, p) in cases.items():
        x = torch.randn(shape, generator=g)
        fn = lambda t: F.avg_pool2d(t, p["kernel"], p["stride"], p["padding"], ceil_mode=p["ceil"],
                                    count_include_pad=p["include_pad"])
        y, dy, (dx,) = grad_of(fn, x, dy_gen=g)
        out.update({f"{name}.x": x, f"{name}.y": y, f"{name}.dy": dy, f"{name}.dx": dx})
        meta[name] = params(**p)
    write("avgpool", out, meta)


def adaptive():
    g = torch.Generator().manual_seed(3)
    cases = {"9x11": (2, 3, 9, 11), "13x10": (1, 2, 13, 10), "5x3": (1, 2, 5, 3), "7x7": (1, 1, 7, 7)}
    out, meta = {}, {}
    for name, shape in cases.items():
        x = torch.randn(shape, generator=g)
        y, dy, (dx,) = grad_of(lambda t: F.adaptive_avg_pool2d(t, (7, 7)), x, dy_gen=g)
        out.update({f"{name}.x": x, f"{name}.y": y, f"{name}.dy": dy, f"{name}.dx": dx})
        meta[name] = params(out_h=7, out_w=7)
    # global average pool == adaptive to 1x1, flattened
    x = torch.randn((2, 3, 5, 7), generator=g)
    y, dy, (dx,) = grad_of(lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1), x, dy_gen=g)
    out.update({"global.x": x, "global.y": y, "global.dy": dy, "global.dx": dx})
    meta["global"] = params(out_h=1, out_w=1)
    write("adaptive_avgpool", out, meta)


# MARK: BatchNorm
def batchnorm():
    g = torch.Generator().manual_seed(4)
    out, meta = {}, {}
    for name, shape, training in (("eval4d", (2, 3, 5, 4), False), ("train4d", (4, 3, 5, 5), True),
                                  ("train2d", (6, 5), True), ("eval2d", (3, 5), False)):
        c = shape[1]
        x = torch.randn(shape, generator=g) * 2 + 0.5
        w = torch.rand(c, generator=g) + 0.5
        b = torch.randn(c, generator=g)
        rm = torch.randn(c, generator=g) * 0.3
        rv = torch.rand(c, generator=g) + 0.5
        rm_after, rv_after = rm.clone(), rv.clone()
        fn = lambda xx, ww, bb: F.batch_norm(xx, rm_after, rv_after, ww, bb, training=training, momentum=0.1, eps=1e-5)
        y, dy, (dx, dw, db) = grad_of(fn, x, w, b, dy_gen=g)
        out.update({f"{name}.x": x, f"{name}.weight": w, f"{name}.bias": b,
                    f"{name}.running_mean": rm, f"{name}.running_var": rv,
                    f"{name}.running_mean_after": rm_after, f"{name}.running_var_after": rv_after,
                    f"{name}.y": y, f"{name}.dy": dy, f"{name}.dx": dx, f"{name}.dweight": dw, f"{name}.dbias": db})
        meta[name] = params(training=training, momentum=0.1, eps=1e-5)
    write("batchnorm", out, meta)


# MARK: softmax, losses
def softmax_losses():
    g = torch.Generator().manual_seed(5)
    out, meta = {}, {}
    x = torch.randn((3, 7), generator=g) * 3
    y, dy, (dx,) = grad_of(lambda t: F.softmax(t, dim=-1), x, dy_gen=g)
    out.update({"softmax.x": x, "softmax.y": y, "softmax.dy": dy, "softmax.dx": dx})
    y, dy, (dx,) = grad_of(lambda t: F.log_softmax(t, dim=-1), x, dy_gen=g)
    out.update({"log_softmax.x": x, "log_softmax.y": y, "log_softmax.dy": dy, "log_softmax.dx": dx})
    logits = torch.randn((4, 10), generator=g) * 4
    labels = torch.tensor([3, 0, 9, 3])
    lg = logits.clone().requires_grad_(True)
    loss = F.cross_entropy(lg, labels)
    loss.backward()
    out.update({"cross_entropy.logits": logits, "cross_entropy.labels": labels.float(),
                "cross_entropy.loss": loss.reshape(()), "cross_entropy.dlogits": lg.grad})
    xm = torch.randn((2, 3, 4), generator=g)
    t = torch.randn((2, 3, 4), generator=g)
    xl = xm.clone().requires_grad_(True)
    l2 = F.mse_loss(xl, t)
    l2.backward()
    out.update({"mse.x": xm, "mse.target": t, "mse.loss": l2.reshape(()), "mse.dx": xl.grad})
    for k in ("softmax", "log_softmax", "cross_entropy", "mse"):
        meta[k] = "dim=-1" if "softmax" in k else "reduction=mean"
    write("softmax_losses", out, meta)


# MARK: soft gates (paper A semantics)
class SoftGateReLU(torch.autograd.Function):
    """relu forward; backward grad * sigmoid(z / T) (paper A's two-way ReLU)."""

    @staticmethod
    def forward(ctx, z, t):
        ctx.save_for_backward(z)
        ctx.t = t
        return F.relu(z)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * torch.sigmoid(z / ctx.t), None


def surrogate_soft_maxpool(x, kernel, stride, padding, t, detach):
    """Hard max-pool value, gradient of the zero-padded soft pool (paper A; detach = successor)."""
    n, c, h, w = x.shape
    cols = F.unfold(x, kernel_size=kernel, stride=stride, padding=padding).view(n, c, kernel * kernel, -1)
    wts = F.softmax(cols / t, dim=2)
    if detach:
        wts = wts.detach()
    oh = (h + 2 * padding - kernel) // stride + 1
    ow = (w + 2 * padding - kernel) // stride + 1
    soft = (cols * wts).sum(dim=2).view(n, c, oh, ow)
    hard = F.max_pool2d(x, kernel, stride, padding)
    return hard.detach() + (soft - soft.detach())


def soft_gates():
    g = torch.Generator().manual_seed(6)
    T = 0.3
    out, meta = {}, {}
    z = torch.randn((2, 3, 5, 5), generator=g)
    y, dy, (dz,) = grad_of(lambda v: SoftGateReLU.apply(v, T), z, dy_gen=g)
    out.update({"relu.x": z, "relu.y": y, "relu.dy": dy, "relu.dx": dz})
    meta["relu"] = params(temperature=T, gate="sigmoid")
    for pname, shape, k, s, p in (("k3s2p1", (2, 3, 9, 9), 3, 2, 1), ("k2s2", (1, 2, 8, 6), 2, 2, 0)):
        x = torch.randn(shape, generator=g) * 0.5   # small values: padding zeros matter in the softmax
        for detach in (False, True):
            name = f"pool_{pname}_{'detached' if detach else 'attached'}"
            y, dy, (dx,) = grad_of(lambda v: surrogate_soft_maxpool(v, k, s, p, T, detach), x, dy_gen=g)
            out.update({f"{name}.x": x, f"{name}.y": y, f"{name}.dy": dy, f"{name}.dx": dx})
            meta[name] = params(kernel=k, stride=s, padding=p, ceil=False, temperature=T, detach=detach)
    write("soft_gates", out, meta)


if __name__ == "__main__":
    torch.manual_seed(0)
    maxpool()
    avgpool()
    adaptive()
    batchnorm()
    softmax_losses()
    soft_gates()
