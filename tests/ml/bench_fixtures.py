"""Benchmark CSVs in MM-Skin's exact formats, with a generated image folder.

The formats are those of ZwQ803/MM-Skin's `Dataframe/test/` files: classification CSVs with
the header `image,atributes,categories` (sic; Patch16's say `attributes` and add `set`),
`[]` attributes and list-literal categories; the VQA CSV `image,question,answer`, with
answers quoted where they hold commas. The rows are written here, not copied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Colour per class, so a probe on image features can tell the classes apart.
CLASS_COLOURS = {
    "Nevus": (200, 40, 40),
    "Melanoma": (40, 200, 40),
    "other": (40, 40, 200),
}


def write_image(path: Path, colour: tuple[int, int, int], seed: int) -> None:
    """A JPEG of one colour plus a little noise (MM-Skin's benchmark images are JPEG)."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour) + rng.normal(0, 12, (40, 48, 3)), 0, 255).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="JPEG", quality=90)


def write_classification(
    root: Path, name: str, n_per_class: int = 3, seed: int = 0, patch16_style: bool = False
) -> Path:
    """`NAME.csv` with rows `NAME/ISIC_00000NN.jpg,[],['Nevus']` and the images under root."""
    lines = ["image,attributes,categories,set" if patch16_style else "image,atributes,categories"]
    i = 0
    for label, colour in CLASS_COLOURS.items():
        for _ in range(n_per_class):
            rel = f"{name}/ISIC_{seed * 1000 + i:07d}.jpg"
            write_image(root / "images" / rel, colour, seed * 1000 + i)
            row = f"{rel},[],['{label}']"
            lines.append(f"{row},Test" if patch16_style else row)
            i += 1
    path = root / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


VQA_ROWS = [
    ("dataset/bk1_1.png", "What does the image show?", "The image shows a nevus."),
    (
        "dataset/bk1_2.png",
        "Is the lesion raised above the skin surface?",
        '"No, the lesion is flat against the skin surface."',
    ),
    ("dataset/bk2_3.png", "Is this a dermoscopic image?", '"Yes, it is a dermoscopic image."'),
    ("dataset/bk2_4.png", "What is the most likely diagnosis?", "Melanoma in situ."),
]


def write_vqa(root: Path) -> Path:
    """`VQA_test.csv` in MM-Skin_test.csv's columns, with its images (PNG, as MM-Skin's)."""
    lines = ["image,question,answer"]
    for i, (rel, question, answer) in enumerate(VQA_ROWS):
        path = root / "images" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = np.random.default_rng(50 + i).integers(0, 255, (40, 48, 3), dtype="uint8")
        Image.fromarray(arr).save(path, format="PNG")
        lines.append(f"{rel},{question},{answer}")
    path = root / "VQA_test.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
