"""Regenerates the image goldens read by Tests/RecipesTests/ImageTests.swift.

Run from the repository root:  $(reference/setup-env.sh --python) reference/images/make_image_goldens.py

Reference = paper A's app (github:314-Foundation/ExcitationPullbacks, lib/dataset.py
ConditionalTransform): a uint8 PIL RGB image; square -> T.Resize(224); otherwise T.Resize(256)
then T.CenterCrop(224); then ToTensor. torchvision resizes PIL images with PIL's own bilinear
(antialiased) filter. We store the uint8 224x224 result as PNG (lossless); ToTensor is k/255.

Also written:
  jpeg_decode_*.png   PIL's decode of the JPEG test images (decoder golden)
  fixtures/*.png      tiny PNGs covering gray / gray+alpha / palette / RGBA / 16-bit inputs,
                      with the expected 8-bit RGB in fixtures/expected.json
"""
import hashlib, json, os, struct, zlib
import numpy as np
from PIL import Image
from torchvision import transforms as T

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(ROOT, "data", "images")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "images")
os.makedirs(os.path.join(OUT, "fixtures"), exist_ok=True)


def conditional_transform(img):
    # Same decisions as ConditionalTransform.__call__, stopping before ToTensor/Normalize.
    w, h = img.size
    if w == h:
        return T.Resize(224)(img)
    return T.CenterCrop(224)(T.Resize(256)(img))


meta = {}
for name in ["chelsea.png", "rocket.jpg", "camera.png"]:
    img = Image.open(os.path.join(IMAGES, name)).convert("RGB")   # as the app's PREDEFINED_IMAGES
    out = conditional_transform(img)
    assert out.size == (224, 224) and out.mode == "RGB"
    stem = os.path.splitext(name)[0]
    out.save(os.path.join(OUT, f"paperA_{stem}.png"))
    # ToTensor check: values are exactly k/255.
    t = T.ToTensor()(out)
    assert np.allclose(t.numpy() * 255, np.asarray(out).transpose(2, 0, 1), atol=1e-4)
    meta[name] = {"input_size": list(img.size), "output": f"paperA_{stem}.png"}

# Decoder goldens. rocket.jpg itself is large once decoded, so we store its SHA-256 and per-channel
# sums plus a 160x120 crop; two small JPEGs (4:2:0 colour, grayscale) are stored fully decoded.
rocket = np.asarray(Image.open(os.path.join(IMAGES, "rocket.jpg")).convert("RGB"))
Image.fromarray(rocket[100:220, 200:360]).save(os.path.join(OUT, "jpeg_decode_rocket_crop.png"))
meta["rocket.jpg"]["decode"] = {
    "sha256_rgb": hashlib.sha256(rocket.tobytes()).hexdigest(),
    "channel_sums": [int(rocket[..., c].astype(np.int64).sum()) for c in range(3)],
    "crop": {"file": "jpeg_decode_rocket_crop.png", "x": 200, "y": 100, "width": 160, "height": 120},
}

chelsea = Image.open(os.path.join(IMAGES, "chelsea.png")).convert("RGB")
chelsea.resize((150, 100), Image.BILINEAR).save(os.path.join(OUT, "fixtures", "small_chelsea.jpg"), quality=85, subsampling=2)
camera = Image.open(os.path.join(IMAGES, "camera.png"))
camera.resize((96, 96), Image.BILINEAR).save(os.path.join(OUT, "fixtures", "small_camera_gray.jpg"), quality=90)
for name in ["small_chelsea.jpg", "small_camera_gray.jpg"]:
    dec = Image.open(os.path.join(OUT, "fixtures", name)).convert("RGB")
    dec.save(os.path.join(OUT, f"jpeg_decode_{os.path.splitext(name)[0]}.png"))

# PNG fixtures: 7x5 pixels, one per input kind, and the 8-bit RGB we expect back.
rng = np.random.default_rng(0)
rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
gray = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
alpha = rng.integers(0, 256, size=(5, 7), dtype=np.uint8)
expected = {}
Image.fromarray(gray, "L").save(os.path.join(OUT, "fixtures", "gray.png"))
expected["gray.png"] = np.repeat(gray[..., None], 3, axis=2)
Image.fromarray(np.dstack([gray, alpha]), "LA").save(os.path.join(OUT, "fixtures", "gray_alpha.png"))
expected["gray_alpha.png"] = np.repeat(gray[..., None], 3, axis=2)   # PIL convert("RGB") drops alpha
Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(os.path.join(OUT, "fixtures", "rgba.png"))
expected["rgba.png"] = rgb
pal = Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=16)
pal.save(os.path.join(OUT, "fixtures", "palette.png"))
expected["palette.png"] = np.asarray(pal.convert("RGB"))


def write_png16(path, arr16):
    """A minimal 16-bit RGB PNG (no gAMA/sRGB chunk) written by hand: PIL cannot write it."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_png8_gamma(path, arr8, gamma100000):
    """8-bit RGB PNG with a gAMA chunk far from sRGB; PIL ignores gAMA, and so must we."""
    h, w, _ = arr8.shape
    raw = b"".join(b"\x00" + arr8[y].tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"gAMA", struct.pack(">I", gamma100000))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


write_png8_gamma(os.path.join(OUT, "fixtures", "gamma50000.png"), rgb, 50000)
expected["gamma50000.png"] = np.asarray(Image.open(os.path.join(OUT, "fixtures", "gamma50000.png")).convert("RGB"))
assert (expected["gamma50000.png"] == rgb).all()

rgb16 = rng.integers(0, 65536, size=(5, 7, 3), dtype=np.uint16)
rgb16[0, 0] = [0, 65535, 32896]   # exact multiples of 257 -> 0, 255, 128
write_png16(os.path.join(OUT, "fixtures", "rgb16.png"), rgb16)
expected["rgb16.png"] = np.floor(rgb16.astype(np.float64) / 257 + 0.5).astype(np.uint8)   # round(v / 257)

# Upsampling (Imagenette-160 images have a 160 px short side, so Resize(256) enlarges them):
# the small JPEG fixtures through ConditionalTransform, decoded by PIL as above.
for name in ["small_chelsea.jpg", "small_camera_gray.jpg"]:
    img = Image.open(os.path.join(OUT, "fixtures", name)).convert("RGB")
    stem = os.path.splitext(name)[0]
    conditional_transform(img).save(os.path.join(OUT, f"paperA_{stem}.png"))
    meta[name] = {"input_size": list(img.size), "output": f"paperA_{stem}.png"}
# lib/dataset.py get_transform (the Imagenette dataset path): Resize(256) + CenterCrop(224) even
# for square images.
cam = Image.open(os.path.join(IMAGES, "camera.png")).convert("RGB")
T.CenterCrop(224)(T.Resize(256)(cam)).save(os.path.join(OUT, "dataset_camera.png"))
meta["camera.png"]["dataset_transform_output"] = "dataset_camera.png"

with open(os.path.join(OUT, "fixtures", "expected.json"), "w") as f:
    json.dump({k: {"width": 7, "height": 5, "rgb": v.reshape(-1).tolist()} for k, v in expected.items()}, f)
with open(os.path.join(OUT, "goldens.json"), "w") as f:
    json.dump(meta, f, indent=1)
print(json.dumps(meta, indent=1))
