"""Small JPEGs for the scaled decoder's tests (src/images/jpeg/tests.rs).

Every layout the fast path decodes (gray; YCbCr 4:4:4, 4:2:2, 4:2:0; odd
sizes; restart intervals; optimised Huffman tables with long codes;
quality 100 with large coefficients) and three it must leave to
jpeg-decoder (progressive, RGB without the YCbCr transform, CMYK). The
content is a smooth gradient with seeded noise, so blocks carry many AC
coefficients. The tests compare the decoder with jpeg-decoder at the same
scale, so only the files are needed, not values from here.

    python tests/reference/make_jpeg_fixtures.py   # Pillow >= 11 (libjpeg-turbo)
"""

import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "jpeg")


def picture(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], axis=-1)
    ring = 60 * np.sin((x - w / 2) ** 2 / 90 + (y - h / 2) ** 2 / 70)[..., None]
    noise = rng.normal(0, 18, (h, w, 3))
    return np.clip(base + ring + noise, 0, 255).astype(np.uint8)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rgb = lambda w, h, s: Image.fromarray(picture(w, h, s))
    cases = {
        "gray-75x61.jpg": (rgb(75, 61, 1).convert("L"), dict(quality=90)),
        "444-64x48.jpg": (rgb(64, 48, 2), dict(quality=90, subsampling=0)),
        "422-113x70.jpg": (rgb(113, 70, 3), dict(quality=85, subsampling=1)),
        "420-75x61.jpg": (rgb(75, 61, 4), dict(quality=90, subsampling=2)),
        "420-restart-200x136.jpg": (rgb(200, 136, 5), dict(quality=80, subsampling=2, restart_marker_blocks=3)),
        "444-restart-rows-97x65.jpg": (rgb(97, 65, 6), dict(quality=90, subsampling=0, restart_marker_rows=1)),
        "420-optimized-q100-90x90.jpg": (rgb(90, 90, 7), dict(quality=100, subsampling=2, optimize=True)),
        "gray-optimized-41x200.jpg": (rgb(41, 200, 8).convert("L"), dict(quality=95, optimize=True)),
        "fallback-progressive-64x64.jpg": (rgb(64, 64, 9), dict(quality=90, progressive=True)),
        "fallback-rgb-64x64.jpg": (rgb(64, 64, 10), dict(quality=90, keep_rgb=True, subsampling=0)),
        "fallback-cmyk-64x64.jpg": (rgb(64, 64, 11).convert("CMYK"), dict(quality=90)),
    }
    for name, (im, kw) in cases.items():
        im.save(os.path.join(OUT, name), "JPEG", **kw)
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
