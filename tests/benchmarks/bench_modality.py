"""Modality classifier on real pictures: per-class accuracy, calibration and time per panel.

    python -m curation.extract.modality.devset --out var/modality-devset   # needs the mirrors
    python tests/benchmarks/bench_modality.py [--cache var/modality-devset]

Prints, for the development split (out-of-fold by file, so no picture scores a model that saw
it) and for the held-out source repositories (the shipped model, which never saw them):
accuracy per class with ``unknown`` counted wrong, coverage, ECE and the reliability table;
then the same pictures under an ordinary caption that names no modality ("Lesion on the left
forearm ..."), where only the pixels can decide; then milliseconds per panel on one core.
Targets (issue 18): clinical, dermoscopic, pathological >= 0.90, other >= 0.80, ECE <= 0.05,
<= 20 ms a panel.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, as the target says

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from curation.extract import annotate, imagecues  # noqa: E402
from curation.extract.modality import devset, train  # noqa: E402
from curation.extract.modality import model as mm  # noqa: E402

TARGETS = {"clinical": 0.90, "dermoscopic": 0.90, "pathological": 0.90, "other": 0.80}
ORDINARY = "Lesion on the left forearm of a 54-year-old woman."


def report(title: str, s: dict) -> None:
    print(f"\n== {title}: n={s['n']} accuracy {s['accuracy']:.3f} (top-1 {s['top1']:.3f}), "
          f"coverage {s['coverage']:.3f}, ECE {s['ece']:.4f} (target <= 0.05)")  # fmt: skip
    for cls, row in s["per_class"].items():
        target = TARGETS[cls]
        mark = "ok" if row["accuracy"] >= target else "BELOW"
        print(f"   {cls:13s} n={row['n']:3d} accuracy {row['accuracy']:.3f} "
              f"(target {target:.2f} {mark}) top-1 {row['top1']:.3f} "
              f"unknown {row['unknown']:.3f}")  # fmt: skip
    print("   reliability (top-class probability bin: n, mean confidence, accuracy)")
    for b in s["reliability"]:
        bar = "#" * round(b["accuracy"] * 20)
        print(f"     {b['bin']}  n={b['n']:3d}  conf {b['confidence']:.2f}  "
              f"acc {b['accuracy']:.2f}  {bar}")  # fmt: skip


def with_caption(m: mm.ModalityModel, pictures, labels) -> dict:
    """Scores of the combined suggestion under a caption that names no modality."""
    text_mod, text_conf = annotate.modality_from_text(ORDINARY)
    rows = []
    for img in pictures:
        s = imagecues.suggest(img, text_mod, text_conf, model=m)
        p = np.zeros(len(m.classes))
        p[m.classes.index(s.best)] = s.confidence
        rest = (1 - s.confidence) / (len(m.classes) - 1)
        p[p == 0] = rest
        rows.append(p)
    return train.score(np.asarray(rows), labels, m.classes, m.threshold)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cache", default=os.environ.get("MMSKIN_DEVSET", "var/modality-devset"))
    p.add_argument("--mirror", default=os.environ.get("MMSKIN_MIRROR", "/work/.mirror"))
    args = p.parse_args()
    if not (Path(args.cache) / "index.jsonl").exists():
        print(f"building the dev set into {args.cache} from {args.mirror} ...")
        devset.build(args.cache, args.mirror)
    loaded = list(devset.load(args.cache))
    items = [it for it, _ in loaded]
    pictures = [img for _, img in loaded]
    x, y = np.asarray([train.feats.features(img) for img in pictures]), [it.label for it in items]
    dev = [i for i, it in enumerate(items) if it.split == "dev"]
    held = [i for i, it in enumerate(items) if it.split == "heldout"]
    m = mm.shipped()
    print(f"model {m.version}: temperature {m.temperature:.3f}, threshold {m.threshold}")
    print(f"dev: {len(dev)} pictures from {len({items[i].source for i in dev})} repositories; "
          f"held-out: {len(held)} from {len({items[i].source for i in held})}")  # fmt: skip

    xs, ys, gs = train.drawn_examples(30)
    xd = np.vstack([x[dev], xs])
    yd, gd = [y[i] for i in dev] + ys, [items[i].origin for i in dev] + gs
    oof = train.out_of_fold(xd, yd, gd, train.CLASSES)[: len(dev)] / m.temperature
    oof = np.exp(oof - oof.max(axis=1, keepdims=True))
    oof /= oof.sum(axis=1, keepdims=True)
    report("dev, pixels only, out-of-fold by file", train.score(oof, [y[i] for i in dev],
           train.CLASSES, m.threshold))  # fmt: skip
    report("held-out sources, pixels only, shipped model", train.evaluate(m, x[held],
           [y[i] for i in held]))  # fmt: skip
    report(f'held-out sources, caption "{ORDINARY}"',
           with_caption(m, [pictures[i] for i in held], [y[i] for i in held]))  # fmt: skip

    times = []
    for img in pictures[:80]:
        t0 = time.perf_counter()
        m.predict(img)
        times.append((time.perf_counter() - t0) * 1000)
    big = pictures[0].resize((1200, 900))
    t_big = []
    for _ in range(20):
        t0 = time.perf_counter()
        m.predict(big)
        t_big.append((time.perf_counter() - t0) * 1000)
    print(f"\n== time per panel, one core: median {statistics.median(times):.1f} ms, "
          f"p95 {np.percentile(times, 95):.1f} ms (up to 512 px); 1200x900 panel median "
          f"{statistics.median(t_big):.1f} ms (target <= 20 ms)")  # fmt: skip
    print(f"   load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
