"""One crop -> a descriptor: pHash, dHash and colour grid at three framings, plus ORB keypoints.

Why these parts (measured in tests/benchmarks/bench_dedupe.py):

- A global pHash of the whole crop moves by 12-24 of its 64 bits when the crop is cut by 5 %
  on a side, as much as it moves between two different dermoscopies. So each crop is hashed
  at three framings (0, 4 and 8 % cut from every side) and two crops compare by the closest
  pair of framings: a copy cut by 2-5 % lands within 2 % of one of them.
- Hashes (``imagehash``'s pHash and dHash) and the colour grid only *propose* a pair: pictures
  of one disease drawn alike share them (every dermoscopy is a dark disc with a brown lesion,
  which is how single-descriptor clustering chained thousands of crops together).
- ORB keypoints decide: the same picture re-encoded, resized, cut or marked keeps dozens of
  keypoints that one similarity transform maps onto each other; two different pictures do not.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import cv2
import imagehash
import numpy as np
from PIL import Image

#: Framings hashed per crop: this fraction cut from every side.
FRAMINGS = (0.0, 0.04, 0.08)
#: Side of the colour grid (GRID x GRID cells, mean RGB each).
GRID = 4
#: Working size: big crops are shrunk first, which makes describing cheap and insensitive to
#: the crop's resolution (a 50 % and a 200 % copy look alike at this size).
WORK_SIDE = 256
KEYPOINTS = 128
#: Below this grey-level spread (0-255), or with fewer keypoints than this, a crop is flat
#: (a blank panel, a colour swatch): its hashes are noise and would match every other flat
#: crop. Flat crops only ever join by exact sha256.
MIN_SPREAD = 6.0
MIN_KEYPOINTS = 12
_VERSION = 1

_orb = cv2.ORB_create(
    nfeatures=KEYPOINTS, scaleFactor=1.3, nlevels=4, edgeThreshold=15, patchSize=15
)


@dataclass(frozen=True)
class Descriptor:
    phash: tuple[int, ...]  # 64 bits per framing
    dhash: tuple[int, ...]
    colour: bytes  # per framing GRID*GRID*3 bytes of mean RGB, row-major
    points: bytes  # float16 (x, y) per keypoint, in units of the longer side
    features: bytes  # 32-byte ORB descriptor per keypoint
    informative: bool

    def to_bytes(self) -> bytes:
        """A compact, versioned encoding for the database (about 4.5 KB)."""
        head = struct.pack(
            "<BB3Q3QHH", _VERSION, self.informative, *self.phash, *self.dhash,
            len(self.points) // 4, len(self.colour),
        )  # fmt: skip
        return head + self.colour + self.points + self.features

    @classmethod
    def from_bytes(cls, data: bytes) -> Descriptor:
        head = struct.Struct("<BB3Q3QHH")
        version, informative, *rest = head.unpack_from(data)
        if version != _VERSION:
            raise ValueError(f"descriptor version {version} is not {_VERSION}")
        phash, dhash, n, ncol = tuple(rest[:3]), tuple(rest[3:6]), rest[6], rest[7]
        at = head.size
        colour = data[at : at + ncol]
        points = data[at + ncol : at + ncol + 4 * n]
        features = data[at + ncol + 4 * n : at + ncol + 36 * n]
        return cls(phash, dhash, colour, points, features, bool(informative))

    @property
    def keypoint_count(self) -> int:
        return len(self.points) // 4


def _bits(value: imagehash.ImageHash) -> int:
    return int(str(value), 16)


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def describe_image(image: Image.Image) -> Descriptor:
    """The descriptor of a decoded picture (any mode; alpha is flattened onto white)."""
    image = _rgb(image)
    if max(image.size) > WORK_SIDE:
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    w, h = image.size
    grey = image.convert("L")
    phash, dhash, colour = [], [], b""
    for cut in FRAMINGS:
        right, bottom = max(1, round(w * (1 - cut))), max(1, round(h * (1 - cut)))
        box = (round(w * cut), round(h * cut), right, bottom)
        sub = grey.crop(box).resize((32, 32), Image.Resampling.BOX)
        phash.append(_bits(imagehash.phash(sub)))
        dhash.append(_bits(imagehash.dhash(sub)))
        grid = image.crop(box).resize((GRID, GRID), Image.Resampling.BOX)
        colour += bytes(np.asarray(grid, dtype=np.uint8).reshape(-1))
    pixels = np.asarray(grey)
    spread = float(pixels.std())
    keypoints, features = _orb.detectAndCompute(pixels, None)
    if features is None or not keypoints:
        points = np.zeros((0, 2), np.float16)
        features = np.zeros((0, 32), np.uint8)
    else:
        points = (np.array([k.pt for k in keypoints], np.float32) / max(w, h)).astype(np.float16)
    return Descriptor(
        phash=tuple(phash),
        dhash=tuple(dhash),
        colour=colour,
        points=points.tobytes(),
        features=np.ascontiguousarray(features, dtype=np.uint8).tobytes(),
        informative=spread >= MIN_SPREAD and len(points) >= MIN_KEYPOINTS,
    )


def describe(data: bytes) -> Descriptor:
    """The descriptor of an encoded crop (PNG, JPEG, ...)."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (WORK_SIDE * 2, WORK_SIDE * 2))  # JPEG: decode at a reduced scale
        return describe_image(image)
