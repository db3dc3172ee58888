#!/usr/bin/env python3
"""Writes the small seed corpora under Fuzz/corpus/<target>/ and the regression fixtures under
Tests/Fixtures/fuzz-regressions/. Needs Pillow and PyTorch (the reference environment); the
outputs are committed, so neither fuzzing nor the tests need this script.

    python3 Fuzz/make-corpus.py
"""
import gzip, io, json, os, struct, tarfile, zlib
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Fuzz" / "corpus"
FIXTURES = ROOT / "Tests" / "Fixtures" / "fuzz-regressions"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def fixture(name, data):
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / name).write_bytes(data)


# MARK: safetensors
def safetensors(entries, metadata=None, pad_data=b""):
    """entries: name -> (dtype, shape, offsets); data bytes follow."""
    header = {k: {"dtype": d, "shape": s, "data_offsets": o} for k, (d, s, o) in entries.items()}
    if metadata:
        header["__metadata__"] = metadata
    js = json.dumps(header).encode()
    js += b" " * ((8 - (8 + len(js)) % 8) % 8)
    return struct.pack("<Q", len(js)) + js + pad_data


put("safetensors", "f32", safetensors({"w": ("F32", [2, 2], [0, 16]), "b": ("F32", [2], [16, 24])},
                                      {"format": "pt"}, struct.pack("<6f", 1, 2, 3, 4, 5, 6)))
put("safetensors", "dtypes", safetensors({"h": ("F16", [2], [0, 4]), "bf": ("BF16", [2], [4, 8]),
                                          "d": ("F64", [1], [8, 16]), "i": ("I64", [1], [16, 24])},
                                         None, struct.pack("<2e", 1.5, -2) + b"\x80\x3f\x00\x40"
                                         + struct.pack("<d", 3.25) + struct.pack("<q", -7)))
put("safetensors", "empty", safetensors({"z": ("F32", [0, 3], [0, 0])}))

# The five overflow traps of the first black-box pass, each a complete small file.
good = struct.pack("<4f", 1, 2, 3, 4)
fixture("safetensors-offset-begin-overflow.safetensors",
        safetensors({"w": ("F32", [4], [9223372036854775807, 16])}, None, good))
fixture("safetensors-offset-end-overflow.safetensors",
        safetensors({"w": ("F32", [4], [8, 9223372036854775807])}, None, good))
fixture("safetensors-shape-product-overflow.safetensors",
        safetensors({"w": ("F32", [65536, 65536, 65536, 65536], [0, 16])}, None, good))
fixture("safetensors-f32-count-overflow.safetensors",
        safetensors({"w": ("F32", [9223372036854775807], [0, 16])}, None, good))
fixture("safetensors-f16-count-overflow.safetensors",
        safetensors({"w": ("F16", [9223372036854775807], [0, 16])}, None, good))

# MARK: .pth (torch.save: ZIP + pickle)
for name, sd in [("linear", {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "bias": torch.zeros(2)}),
                 ("half", {"w": torch.ones(3, dtype=torch.float16), "n": torch.tensor([1, 2], dtype=torch.int64)}),
                 ("view", {"w": torch.arange(12.0).reshape(3, 4).t()})]:
    buf = io.BytesIO()
    torch.save(sd, buf)
    put("pth", name, buf.getvalue())

# The pickles alone (the pickle target), plus a few hand-written ones.
import zipfile
for name in ["linear", "half", "view"]:
    with zipfile.ZipFile(CORPUS / "pth" / name) as z:
        put("pickle", name + ".pkl", z.read([n for n in z.namelist() if n.endswith("data.pkl")][0]))
put("pickle", "cycle.pkl", bytes([0x80, 2, 0x5d, 0x32, 0x61, 0x2e]))
put("pickle", "nested.pkl", bytes([0x80, 2, 0x29] + [0x85] * 64 + [0x2e]))

# MARK: PNG and JPEG
img = Image.new("RGB", (5, 3))
img.putdata([(i * 40 % 256, i * 90 % 256, i * 17 % 256) for i in range(15)])
for mode in ["RGB", "L", "P", "RGBA", "LA", "1"]:
    b = io.BytesIO(); img.convert(mode).save(b, "PNG"); put("png", f"{mode.lower()}.png", b.getvalue())
b = io.BytesIO(); img.save(b, "PNG", interlace=True) if False else img.convert("I;16").save(b, "PNG"); put("png", "gray16.png", b.getvalue())
for name, kw in [("baseline", {}), ("progressive", {"progressive": True}), ("q10", {"quality": 10}),
                 ("subsampled", {"subsampling": 2})]:
    b = io.BytesIO(); img.resize((17, 9)).save(b, "JPEG", **kw); put("jpeg", name + ".jpg", b.getvalue())
b = io.BytesIO(); img.convert("L").save(b, "JPEG"); put("jpeg", "gray.jpg", b.getvalue())


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


# A PNG that claims 32768 x 32768 (4 GiB of RGBA) with one tiny IDAT: refused before allocating.
fixture("png-huge-dimensions.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 32768, 32768, 8, 2, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + png_chunk(b"IEND", b""))
# A JPEG whose frame header says 65000 x 65000: refused after the header, before libjpeg allocates.
jpg = bytearray((CORPUS / "jpeg" / "baseline.jpg").read_bytes())
sof = jpg.index(b"\xff\xc0")
jpg[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
fixture("jpeg-huge-dimensions.jpg", bytes(jpg))

# MARK: IDX (plain and gzip)
idx3 = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 3) + bytes(range(18))
idx1 = bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + bytes([1, 7, 0, 9])
put("idx", "images-idx3", idx3)
put("idx", "labels-idx1", idx1)
put("idx", "images-idx3.gz", gzip.compress(idx3, mtime=0))
put("idx", "labels-idx1.gz", gzip.compress(idx1, mtime=0))

# MARK: CIFAR binary batches (first byte's low bit picks the variant in the fuzz target)
rec10 = bytes([2]) + bytes(i % 256 for i in range(3072))
rec100 = bytes([3, 41]) + bytes((7 * i) % 256 for i in range(3072))
put("cifar", "cifar10-2records", rec10 + bytes([8]) + rec10[1:])
put("cifar", "cifar100-1record", rec100)


# MARK: tar (ustar, GNU long name, pax path)
def tar_bytes(fmt, members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for name, data in members:
            info = tarfile.TarInfo(name); info.size = len(data); info.mtime = 0
            t.addfile(info, io.BytesIO(data))
    return b.getvalue()


put("tar", "ustar", tar_bytes(tarfile.USTAR_FORMAT, [("a", b"hello"), ("cifar-10-batches-bin/test_batch.bin", rec10)]))
put("tar", "gnu-longname", tar_bytes(tarfile.GNU_FORMAT, [("d/" + "x" * 120, b"long"), ("./a", b"dot")]))
put("tar", "pax", tar_bytes(tarfile.PAX_FORMAT, [("p/" + "y" * 130, b"pax"), ("data_batch_1.bin", b"\x01\x02")]))

# A member whose GNU base-256 size is negative: once a trap on a reversed range.
neg = bytearray(tar_bytes(tarfile.USTAR_FORMAT, [("a", b"hello")]))
neg[124:136] = b"\xff" * 12
neg[148:156] = b" " * 8
neg[148:156] = ("%06o\0 " % sum(neg[:512])).encode()
fixture("tar-negative-size.tar", bytes(neg))

# MARK: recipes and --set lines
put("recipe", "minimal.yaml", b"""title: t
parameters:
  seed: 0
  scale: {default: ci, choices: [ci, paper]}
  n: {default: 2, min: 1, max: 9, help: "count"}
variants:
  paper: {n: 5}
cells:
  - markdown: "n is ${n}"
  - step: load_data
    id: d
    with: {dataset: mnist5k, split: test, per_class: $n}
  - step: table
    id: t
    with: {caption: x, rows: [{label: a, expr: "d.count * 2", paper: "1"}]}
  - step: check
    id: c
    with: {claims: ["t.a >= 0"]}
""")
for r in sorted((ROOT / "recipes").glob("*.yaml"))[:4]:
    put("recipe", r.name, r.read_bytes())
put("recipe", "anchors.yaml", b"title: &t x\nsummary: *t\ncells: [{markdown: *t}]\n")
put("set", "values", b"count=7\nrate=0.25\nname=zzz\nflag=false\nscale=paper")
put("set", "bad", b"count=1e9\nrate=nan\nflag=yes\nscale=papr\nnope=1\n=x")
put("set", "seed", b"seed=-5\ncount=1000")

# MARK: runner serve: query strings the page sends, and the smallest PNG / JPEG headers of an upload
put("serve", "mnist.txt", b"model=mnist_cnn&image=digit:7&target=3&method=excitation_pullback&gate=normal_cdf&T=0.3&steps=5&alpha=1.5&eps=7&client=page-1")
put("serve", "resnet.txt", b"model=resnet50&weights=synthetic&image=example:chelsea&target=281&method=integrated_gradients&T=1e-2&steps=10&alpha=2&eps=20&size=64")
put("serve", "strip.txt", b"kind=temperature&model=vgg11_bn&weights=torchvision&image=upload:0123456789abcdef&method=smoothgrad&size=224")
put("serve", "percent.txt", b"model=densenet121&weights=synthetic&image=example%3Arocket&T=%31.5&client=a%2Db&steps=")
put("serve", "tiny.png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0))
    + png_chunk(b"IDAT", zlib.compress(b"\x00" + b"\x00" * 9 + b"\x00" + b"\xff" * 9)) + png_chunk(b"IEND", b""))
# SOI, APP0 (JFIF), a 3x2 baseline frame header, EOI: all the header check reads.
put("serve", "tiny-header.jpg", b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 2, 3, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01" + b"\xff\xd9")
