"""Regenerates Tests/Fixtures/training/gated_networks.safetensors: PyTorch reference forward/backward passes of
the gated networks of paper B (docs/method.md), written independently of the Swift code from the papers.

Run: $(reference/setup-env.sh --python) reference/training/make_gated_goldens.py
Per case <c> the file holds the parameters under the engine's names ("<c>/value.layers.0.weight", ...),
BatchNorm running statistics ("<c>/layers.3.bn.running_mean" ...; values before the forward pass),
the input "<c>/@x", labels "<c>/@labels" (as floats), the logits "<c>/@logits", the loss
"<c>/@loss" (cross-entropy), gradients "<c>/@grad/<param>" for every parameter that gets one,
and for training-mode cases the running statistics after the pass "<c>/@after/<bn>.running_mean|var".
"""
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20260521)
BETA = 10.0
VGG_BLOCKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]


class Params:
    """Parameters by engine name, PyTorch-default initialised, random BN affine and statistics."""

    def __init__(self):
        self.p, self.stats = {}, {}

    def conv(self, name, cin, cout, k=3, bias=True):
        m = torch.nn.Conv2d(cin, cout, k, bias=bias)
        self.p[name + ".weight"] = m.weight.detach().clone().requires_grad_()
        if bias:
            self.p[name + ".bias"] = m.bias.detach().clone().requires_grad_()

    def linear(self, name, fin, fout, bias=True):
        m = torch.nn.Linear(fin, fout, bias=bias)
        self.p[name + ".weight"] = m.weight.detach().clone().requires_grad_()
        if bias:
            self.p[name + ".bias"] = m.bias.detach().clone().requires_grad_()

    def bn(self, name, c):
        self.p[name + ".weight"] = (1 + 0.2 * torch.randn(c)).requires_grad_()
        self.p[name + ".bias"] = (0.1 * torch.randn(c)).requires_grad_()
        self.stats[name] = [0.1 * torch.randn(c), 1 + 0.3 * torch.rand(c)]


def bn(P, name, x, training):
    rm, rv = P.stats[name]
    return F.batch_norm(x, rm, rv, P.p[name + ".weight"], P.p[name + ".bias"], training=training, momentum=0.1, eps=1e-5)


# ---- one forward description per architecture; act(l, q) is where the DNN has its l-th ReLU ----

def fc_forward(P, pre, x, depth, act, head):
    z = x.flatten(1)
    for l in range(depth):
        w = P.p[pre + f"layers.{l}.weight"]
        z = act(l, F.linear(z, w, P.p.get(pre + f"layers.{l}.bias")))
    return F.linear(z, P.p[pre + "head.weight"], P.p.get(pre + "head.bias")) if head else None


def c4_forward(P, pre, x, layers, act, head, training):
    z = x
    for l in range(layers):
        z = act(l, F.conv2d(z, P.p[pre + f"layers.{l}.weight"], P.p[pre + f"layers.{l}.bias"], padding=1))
    return F.linear(z.mean(dim=(2, 3)), P.p[pre + "head.weight"], P.p[pre + "head.bias"]) if head else None


def vgg_forward(P, pre, x, act, head, training):
    z, l = x, 0
    for block in VGG_BLOCKS:
        for _ in block:
            q = bn(P, pre + f"layers.{l}.bn", F.conv2d(z, P.p[pre + f"layers.{l}.conv.weight"], None, padding=1), training)
            z = act(l, q)
            l += 1
        z = F.avg_pool2d(z, 2)
    return F.linear(z.mean(dim=(2, 3)), P.p[pre + "head.weight"], P.p[pre + "head.bias"]) if head else None


def resnet_forward(P, pre, x, n, W, act, head, training):
    z = act(0, bn(P, pre + "stem.bn", F.conv2d(x, P.p[pre + "stem.conv.weight"], None, padding=1), training))
    l = 1
    for s, c in enumerate([W, 2 * W, 4 * W]):
        for b in range(n):
            stride = 2 if (s > 0 and b == 0) else 1
            nm = pre + f"stages.{s}.{b}"
            q1 = bn(P, nm + ".bn1", F.conv2d(z, P.p[nm + ".conv1.weight"], None, stride=stride, padding=1), training)
            z1 = act(l, q1)
            q2 = bn(P, nm + ".bn2", F.conv2d(z1, P.p[nm + ".conv2.weight"], None, padding=1), training)
            if stride != 1 or z.shape[1] != c:   # option A: subsample, zero-pad channels both sides
                pad = (c - z.shape[1]) // 2
                sc = F.pad(z[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))
            else:
                sc = z
            z = act(l + 1, q2 + sc)
            l += 2
    return F.linear(z.mean(dim=(2, 3)), P.p[pre + "head.weight"], P.p[pre + "head.bias"]) if head else None


# ---- parameter declarations (engine names) ----

def declare(P, arch, pre, cin, head=True, cfg=None):
    kind = arch["kind"]
    if kind == "fc":
        fin = arch["inputs"]
        for l in range(arch["depth"]):
            P.linear(pre + f"layers.{l}", fin, arch["width"], bias=False); fin = arch["width"]
        if head: P.linear(pre + "head", fin, arch["classes"], bias=False)
    elif kind == "c4":
        c = cin
        for l in range(arch["layers"]):
            P.conv(pre + f"layers.{l}", c, arch["width"]); c = arch["width"]
        if head: P.linear(pre + "head", c, arch["classes"])
    elif kind == "vgg":
        c, l = cin, 0
        for block in VGG_BLOCKS:
            for ch in block:
                ch = max(1, ch // arch["div"])
                P.conv(pre + f"layers.{l}.conv", c, ch, bias=False); P.bn(pre + f"layers.{l}.bn", ch); c = ch; l += 1
        if head: P.linear(pre + "head", c, arch["classes"])
    elif kind == "resnet":
        W = arch["w"]
        P.conv(pre + "stem.conv", cin, W, bias=False); P.bn(pre + "stem.bn", W)
        c = W
        for s, ch in enumerate([W, 2 * W, 4 * W]):
            for b in range(arch["n"]):
                nm = pre + f"stages.{s}.{b}"
                P.conv(nm + ".conv1", c, ch, bias=False); P.bn(nm + ".bn1", ch)
                P.conv(nm + ".conv2", ch, ch, bias=False); P.bn(nm + ".bn2", ch); c = ch
        if head: P.linear(pre + "head", c, arch["classes"])


def layer_count(arch):
    return {"fc": lambda a: a["depth"], "c4": lambda a: a["layers"], "vgg": lambda a: 13,
            "resnet": lambda a: 1 + 6 * a["n"]}[arch["kind"]](arch)


def body(P, arch, pre, x, act, head, training):
    k = arch["kind"]
    if k == "fc": return fc_forward(P, pre, x, arch["depth"], act, head)
    if k == "c4": return c4_forward(P, pre, x, arch["layers"], act, head, training)
    if k == "vgg": return vgg_forward(P, pre, x, act, head, training)
    return resnet_forward(P, pre, x, arch["n"], arch["w"], act, head, training)


def gate(q, hard):
    return (q > 0).float() if hard else torch.sigmoid(BETA * q)


def run(P, arch, variant, hard, ones, perm, x, training):
    L = layer_count(arch)
    if variant == "dnn":
        return body(P, arch, "", x, lambda l, q: F.relu(q), True, training)
    gates = [None] * L
    if variant in ("dgn", "dlgn"):
        def fact(l, q):
            gates[l] = gate(q, hard)
            return q if variant == "dlgn" else F.relu(q)
        body(P, arch, "feature.", x, fact, False, training)
    inv = list(range(L)) if perm is None else [perm.index(m) for m in range(L)]
    xv = torch.ones_like(x) if ones else x

    def vact(m, q):
        l = inv[m]
        if variant == "dlgn_sf":   # one linear map of the input, average-pooled to the layer's resolution
            if q.dim() == 2:
                qf = F.linear(x.flatten(1), P.p[f"feature.shallow.{l}.weight"], P.p.get(f"feature.shallow.{l}.bias"))
            else:
                f = x.shape[2] // q.shape[2]
                xp = F.avg_pool2d(x, f) if f > 1 else x
                qf = F.conv2d(xp, P.p[f"feature.shallow.{l}.weight"], P.p[f"feature.shallow.{l}.bias"], padding=1)
            gates[l] = gate(qf, hard)
        return q * gates[l]
    return body(P, arch, "value.", xv, vact, True, training)


def sf_declare(P, arch, cin):
    k = arch["kind"]
    if k == "c4":
        for l in range(arch["layers"]): P.conv(f"feature.shallow.{l}", cin, arch["width"])
    elif k == "vgg":
        l = 0
        for block in VGG_BLOCKS:
            for ch in block:
                P.conv(f"feature.shallow.{l}", cin, max(1, ch // arch["div"])); l += 1
    elif k == "fc":
        for l in range(arch["depth"]): P.linear(f"feature.shallow.{l}", arch["inputs"], arch["width"], bias=False)


CASES = {
    # name: (arch, variant, hard gates, value input ones, permutation, input shape, training mode)
    "fc_dgn_soft_perm": (dict(kind="fc", inputs=10, width=6, depth=3, classes=4), "dgn", False, False, [2, 0, 1], [5, 10], True),
    "fc_dlgn_sf": (dict(kind="fc", inputs=10, width=6, depth=3, classes=4), "dlgn_sf", False, True, None, [5, 10], True),
    "c4_dlgn_ones_perm": (dict(kind="c4", layers=4, width=4, classes=3), "dlgn", False, True, [1, 0, 3, 2], [3, 3, 6, 6], True),
    "c4_dlgn_sf": (dict(kind="c4", layers=4, width=4, classes=3), "dlgn_sf", False, True, None, [3, 3, 6, 6], True),
    "c1_dnn": (dict(kind="c4", layers=1, width=5, classes=3), "dnn", True, False, None, [2, 3, 6, 6], True),
    "vgg_dnn_train": (dict(kind="vgg", div=64, classes=3), "dnn", True, False, None, [3, 3, 32, 32], True),
    "vgg_dlgn_eval": (dict(kind="vgg", div=64, classes=3), "dlgn", False, True, None, [2, 3, 32, 32], False),
    "vgg_dlgn_sf_train": (dict(kind="vgg", div=64, classes=3), "dlgn_sf", False, True, None, [2, 3, 32, 32], True),
    "resnet8_dgn_hard_train": (dict(kind="resnet", n=1, w=4, classes=3), "dgn", True, False, None, [3, 3, 8, 8], True),
    "resnet8_dlgn_ones_eval": (dict(kind="resnet", n=1, w=4, classes=3), "dlgn", False, True, None, [2, 3, 8, 8], False),
}


def main():
    out = {}
    for name, (arch, variant, hard, ones, perm, shape, training) in CASES.items():
        P = Params()
        cin = shape[1] if len(shape) == 4 else None
        if variant == "dnn":
            declare(P, arch, "", cin)
        else:
            if variant in ("dgn", "dlgn"):
                declare(P, arch, "feature.", cin, head=False)
            else:
                sf_declare(P, arch, cin)
            declare(P, arch, "value.", cin)
        for k, v in P.p.items(): out[f"{name}/{k}"] = v.detach().clone()
        for k, (m, v) in P.stats.items():
            out[f"{name}/{k}.running_mean"] = m.clone(); out[f"{name}/{k}.running_var"] = v.clone()
        x = torch.randn(shape)
        labels = torch.randint(0, arch["classes"], (shape[0],))
        logits = run(P, arch, variant, hard, ones, perm, x, training)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        out[f"{name}/@x"] = x; out[f"{name}/@labels"] = labels.float()
        out[f"{name}/@logits"] = logits.detach(); out[f"{name}/@loss"] = loss.detach().reshape(1)
        for k, v in P.p.items():
            if v.grad is not None and v.grad.abs().sum() > 0:
                out[f"{name}/@grad/{k}"] = v.grad.clone()
        if training:
            for k, (m, v) in P.stats.items():
                out[f"{name}/@after/{k}.running_mean"] = m.clone(); out[f"{name}/@after/{k}.running_var"] = v.clone()
    path = os.path.join(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Tests", "Fixtures", "training"), "gated_networks.safetensors")
    out = {k: v.contiguous().float() for k, v in out.items()}
    save_file(out, path, metadata={"source": "torch " + torch.__version__, "script": "reference/training/make_gated_goldens.py"})
    print("wrote", path, len(out), "tensors", os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
