"""Near-duplicate clustering: precision and recall on real and generated crops, and its time.

    .venv/bin/python tests/benchmarks/bench_dedupe.py --real DIR --crops 11000
    .venv/bin/python tests/benchmarks/bench_dedupe.py --real DIR --crops 3000 --sweep

Originals: every picture found in ``--real`` (image files, and the images embedded in any PDF
there: the figures were measured on the example PDFs of Unstructured-IO/unstructured) plus
pictures drawn by ``curation.samplebook.images`` in all three modalities. Those drawn pictures
are the hard negatives: every dermoscopy is a dark-framed disc with a brown lesion, every
histology a pink field with a purple band, as different photographs of one disease are alike.
Variants of about a third of the originals: re-encoded as JPEG (quality 60-90), resized
(50-200 %), cropped by 2-5 % on each side, marked with arrows, circles or letters, or several
of these at once, and a few byte-identical copies. Ground truth: a variant is the same picture
as its original, and nothing else is.

It prints the pairwise precision and recall of the clustering (a pair of crops put in one
cluster is a true positive when they come from one original), the largest cluster (chaining
shows here first), and the seconds to describe and to cluster. Not a test: nothing asserts.

Measured (2-core machine shared with other jobs, load average about 7, so times are high):

- 2,500 crops (49 real pictures from the example PDFs of Unstructured-IO/unstructured and
  opendatalab/MinerU, the rest drawn), inliers 12: precision 1.000, recall 0.958; the sweep
  gave inliers 6: 0.631 / 0.977, 9: 1.000 / 0.966, 15: 1.000 / 0.947, 18: 1.000 / 0.939.
  Chosen: 10, between the last perfectly precise value and the recall target.
- 11,000 crops, inliers 10: precision 0.9958, recall 0.9665 (7,159 pairs predicted, 7,376
  true), largest cluster 7; describe 34 ms/crop, cluster 94 s.
- 11,000 drawn crops (no real ones), load average 10-12, after incremental clustering came
  in: precision 0.9986, recall 0.9651, largest cluster 5; global cluster 124.5 s; book by
  book (15 books of ~718 crops, copies scattered over books) 10.7 s a book after the first,
  17.8 s for the last (1,534 crops clustered again), 151 s for all 15; incremental == global.
- Before (one global pHash per crop and complete-link on hashes only): 2,000 crops gave
  precision 0.43 at recall 0.80, and no threshold reached both targets; a 5 % crop moves a
  global pHash by 12-24 bits, as far as two different dermoscopies are apart.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from curation.dedupe import Thresholds, cluster, cluster_components, describe, update  # noqa: E402
from curation.samplebook import images as drawn  # noqa: E402

MODALITIES = ("clinical", "dermoscopic", "pathological")


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def real_pictures(folder: Path | None, min_side: int = 96) -> list[bytes]:
    """PNG bytes of every picture in ``folder``: image files, and images embedded in PDFs."""
    if folder is None:
        return []
    out: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        suffix = path.suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg"):
            try:
                with Image.open(path) as img:
                    if min(img.size) >= min_side:
                        data = _png(img.convert("RGB"))
                        out[hashlib.sha256(data).hexdigest()] = data
            except OSError:
                continue
        elif suffix == ".pdf":
            import pymupdf

            try:
                doc = pymupdf.open(path)
                if doc.needs_pass:
                    continue
                for page in doc:
                    for ref in page.get_images(full=True):
                        try:
                            raw = doc.extract_image(ref[0])["image"]
                            with Image.open(io.BytesIO(raw)) as img:
                                if min(img.size) < min_side:
                                    continue
                                data = _png(img.convert("RGB"))
                        except Exception:
                            continue
                        out[hashlib.sha256(data).hexdigest()] = data
            except (RuntimeError, ValueError):
                continue
    return [data for data in out.values() if _photographic(data)]


def _photographic(data: bytes) -> bool:
    """Masks, logos and line art (mostly pure black or white) are not photographs: the
    example PDFs repeat the same shapes in many near-identical copies, which would count as
    false positives although they are the same picture."""
    with Image.open(io.BytesIO(data)) as img:
        grey = np.asarray(img.convert("L"))
    return float(((grey < 16) | (grey > 239)).mean()) <= 0.9


def _marks(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    if rng.random() < 0.6:
        return drawn.burn_marks(img, rng)
    out = img.copy()
    d = ImageDraw.Draw(out)
    w, h = out.size
    for _ in range(int(rng.integers(1, 4))):
        x, y = w * rng.uniform(0.05, 0.85), h * rng.uniform(0.05, 0.85)
        d.text((x, y), "ABCD*"[int(rng.integers(5))], fill=(255, 255, 255), font_size=h // 12)
    return out


def variant(data: bytes, rng: np.random.Generator) -> bytes:
    """One altered copy: 1-3 of re-encode, resize, crop, marks, in random order."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    steps = rng.choice(
        ["jpeg", "resize", "crop", "marks"], size=int(rng.integers(1, 4)), replace=False
    )
    jpeg_q = None
    for step in steps:
        w, h = img.size
        if step == "resize":
            f = float(rng.uniform(0.5, 2.0))
            img = img.resize((max(16, int(w * f)), max(16, int(h * f))), Image.Resampling.BICUBIC)
        elif step == "crop":
            dx, dy = (float(v) for v in rng.uniform(0.02, 0.05, 2))
            box = (
                int(w * dx),
                int(h * dy),
                w - int(w * rng.uniform(0.02, 0.05)),
                h - int(h * rng.uniform(0.02, 0.05)),
            )
            img = img.crop(box)
        elif step == "marks":
            img = _marks(img, rng)
        else:
            jpeg_q = int(rng.integers(60, 91))
    buf = io.BytesIO()
    if jpeg_q is not None:
        img.save(buf, "JPEG", quality=jpeg_q)
    else:
        img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def corpus(total: int, real: list[bytes], seed: int) -> tuple[list[bytes], list[int], list[str]]:
    """(crops, original index per crop, kind per original) with about ``total`` crops."""
    rng = np.random.default_rng(seed)
    crops: list[bytes] = []
    truth: list[int] = []
    kinds: list[str] = []
    # About 3 crops per 2 originals: a third of them get 1-3 variants (MM-Skin-like reuse).
    n_orig = max(len(real), int(total / 1.6))
    for k in range(n_orig):
        if k < len(real):
            data, kind = real[k], "real"
        else:
            kind = MODALITIES[k % 3]
            w = int(rng.integers(200, 360))
            h = int(w * rng.uniform(0.6, 1.0))
            data = _png(drawn.draw(kind, rng, w, h))
        kinds.append(kind)
        crops.append(data)
        truth.append(k)
        if rng.random() < 1 / 3 and len(crops) < total:
            for _ in range(int(rng.integers(1, 4))):
                crops.append(data if rng.random() < 0.05 else variant(data, rng))
                truth.append(k)
        if len(crops) >= total:
            break
    return crops, truth, kinds


def pair_scores(labels: list[int], truth: list[int]) -> tuple[float, float, int, int]:
    def pairs(counter: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    predicted = pairs(Counter(labels))
    actual = pairs(Counter(truth))
    both = pairs(Counter(zip(labels, truth, strict=True)))
    precision = both / predicted if predicted else 1.0
    recall = both / actual if actual else 1.0
    return precision, recall, predicted, actual


def run(crops: list[bytes], truth: list[int], thresholds: Thresholds) -> dict:
    t0 = time.perf_counter()
    by_sha: dict[str, int] = {}
    unique: list[bytes] = []
    index = []
    for data in crops:
        sha = hashlib.sha256(data).hexdigest()
        if sha not in by_sha:
            by_sha[sha] = len(unique)
            unique.append(data)
        index.append(by_sha[sha])
    descs = [describe(d) for d in unique]
    t1 = time.perf_counter()
    labels_unique = cluster(descs, thresholds)
    t2 = time.perf_counter()
    labels = [labels_unique[i] for i in index]
    precision, recall, predicted, actual = pair_scores(labels, truth)
    sizes = Counter(labels)
    return {
        "descs": descs, "index": index, "precision": precision, "recall": recall,
        "predicted_pairs": predicted, "true_pairs": actual, "largest": max(sizes.values()),
        "clusters": sum(1 for n in sizes.values() if n > 1),
        "describe_s": t1 - t0, "cluster_s": t2 - t1,
    }  # fmt: skip


def incremental(descs: list, books: int, seed: int, thresholds: Thresholds) -> dict:
    """Cluster everything at once, then the same crops book by book (``dedupe.update``, as
    ingest does): seconds of each, and whether the two agree.

    The crops are put in a random order first, so a picture's copies land in different books
    (MM-Skin's books reuse pictures), which is the costly case for the incremental path: a
    book then reaches many earlier components.
    """
    order = np.random.default_rng(seed).permutation(len(descs))
    crops = [descs[k] for k in order]
    t0 = time.perf_counter()
    whole = cluster_components(crops, thresholds)
    global_s = time.perf_counter() - t0
    state: list = []
    book_s, redone = [], []
    for end in np.linspace(0, len(crops), books + 1).astype(int)[1:]:
        previous = state + [None] * (int(end) - len(state))
        t0 = time.perf_counter()
        result, redo = update(crops[:end], previous, thresholds)
        book_s.append(time.perf_counter() - t0)
        redone.append(len(redo))
        state = list(zip(result.labels, result.components, strict=True))
    return {
        "global_s": global_s, "book_s": book_s, "redone": redone,
        "book_crops": len(crops) // books, "equal": result == whole,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, help="a folder of real images and/or PDFs")
    parser.add_argument("--crops", type=int, default=11_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="also try other thresholds")
    parser.add_argument(
        "--books", type=int, default=15, help="books for the incremental timing (0: skip)"
    )
    args = parser.parse_args()

    real = real_pictures(args.real)
    t0 = time.perf_counter()
    crops, truth, kinds = corpus(args.crops, real, args.seed)
    print(
        f"corpus: {len(crops)} crops from {len(kinds)} originals "
        f"({sum(k == 'real' for k in kinds)} real, the rest drawn: "
        f"{dict(Counter(k for k in kinds if k != 'real'))}), "
        f"made in {time.perf_counter() - t0:.1f} s"
    )
    chosen = Thresholds()
    result = run(crops, truth, chosen)
    print(
        f"chosen {chosen}: precision {result['precision']:.4f} recall {result['recall']:.4f} "
        f"({result['predicted_pairs']} pairs predicted, {result['true_pairs']} true), "
        f"{result['clusters']} clusters, largest {result['largest']}"
    )
    print(
        f"time at {len(crops)} crops: describe {result['describe_s']:.1f} s "
        f"({1000 * result['describe_s'] / len(crops):.2f} ms/crop), "
        f"cluster {result['cluster_s']:.2f} s"
    )
    if args.books:
        inc = incremental(result["descs"], args.books, args.seed, chosen)
        print(
            f"global cluster of {len(result['descs'])} distinct crops: {inc['global_s']:.1f} s; "
            f"book by book ({args.books} books of ~{inc['book_crops']}): last book "
            f"{inc['book_s'][-1]:.2f} s ({inc['redone'][-1]} crops clustered again), mean "
            f"{sum(inc['book_s'][1:]) / max(1, len(inc['book_s']) - 1):.2f} s a book after the "
            f"first, all books {sum(inc['book_s']):.1f} s; incremental == global: {inc['equal']}"
        )
    if args.sweep:
        descs, index = result["descs"], result["index"]
        for scale in (0.5, 0.75, 1.25, 1.5):
            t = replace(chosen, inliers=max(4, round(chosen.inliers * scale)))
            labels_unique = cluster(descs, t)
            labels = [labels_unique[i] for i in index]
            p, r, _, _ = pair_scores(labels, truth)
            print(f"  inliers {t.inliers}: precision {p:.4f} recall {r:.4f}")


if __name__ == "__main__":
    main()
