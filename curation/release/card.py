"""``DATASET_CARD.md``: counts by modality, book and split, and how the data was made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curation.release.formats import CAPTION_PROMPT
from curation.release.records import SPLITS, ReleaseMeta


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _duplicates_section(merged: dict[str, Any] | None) -> list[str]:
    """How many split units were joined because they show one picture (issue 13)."""
    if not merged:
        return []
    return [
        "### One picture, one split",
        "",
        "A picture reused in another figure, book or edition would put test items in "
        "training. Split groups are therefore the union of the unit above, every crop file "
        "(sha256), every near-duplicate cluster (perceptual hashes verified by keypoint "
        "matching, and expert verdicts) and, under the book rule, every work's editions. The "
        "build read the written rows back and found no image, cluster or work in two splits.",
        "",
        _row("what", "count"),
        _row("---", "---"),
        _row("split units (figures or books)", merged.get("units", 0)),
        _row("split groups after merging", merged.get("groups", 0)),
        _row("byte-identical crops shared by several units", merged.get("identical_images", 0)),
        _row("near-duplicate clusters merged across units", merged.get("duplicate_clusters", 0)),
        _row("works whose editions were merged", merged.get("works_with_editions", 0)),
        _row("pairs moved off their parent release's split", merged.get("inherited_moved", 0)),
        "",
    ]


def render_card(meta: ReleaseMeta, counts: dict[str, Any]) -> str:
    split = meta.split
    lines = [
        f"# {meta.name} {meta.version}",
        "",
        meta.description or "A reviewed dermatology vision-language dataset cut from textbooks.",
        "",
        f"- created: {meta.created_at} by {meta.created_by or 'unknown'}",
        f"- parent release: {meta.parent['name']} {meta.parent['version']}"
        if meta.parent
        else "- parent release: none (first version)",
        f"- pairs: {counts['pairs']}, VQA items: {counts['vqa']}, "
        f"preference pairs: {counts['preferences']}, images: {counts['images']}",
        "",
        "## Counts by split and modality",
        "",
        _row("modality", *SPLITS, "total"),
        _row(*["---"] * (len(SPLITS) + 2)),
    ]
    for modality, by_split in counts["modality_by_split"].items():
        lines.append(_row(modality, *(by_split.get(s, 0) for s in SPLITS), sum(by_split.values())))
    lines.append(
        _row(
            "**all pairs**", *(counts["pairs_by_split"].get(s, 0) for s in SPLITS), counts["pairs"]
        )
    )
    lines.append(
        _row("VQA items", *(counts["vqa_by_split"].get(s, 0) for s in SPLITS), counts["vqa"])
    )
    lines.append(
        _row(
            "preferences",
            *(counts["preferences_by_split"].get(s, 0) for s in SPLITS),
            counts["preferences"],
        )
    )
    lines += ["", "## Counts by book", "", _row("book", "pairs", "VQA items", *SPLITS)]
    lines.append(_row(*["---"] * (3 + len(SPLITS))))
    for book in counts["books"]:
        lines.append(
            _row(
                book["title"],
                book["pairs"],
                book["vqa"],
                *(book["by_split"].get(s, 0) for s in SPLITS),
            )
        )
    ratios = ", ".join(f"{s} {split['ratios'][s]:.0%}" for s in SPLITS)
    lines += [
        "",
        "## How it was made",
        "",
        "1. Textbook PDFs were imported; figures, captions and panels were extracted "
        "automatically, with modality, diagnosis, age and sex proposed from the caption.",
        "2. An LLM drafted visual question-answer items from each pair and its textbook "
        "context (the generator and prompt version are in each `vqa.jsonl` line).",
        "3. Dermatology experts accepted, edited or rejected every pair and every VQA item. "
        "Only the items matching the filter below are included; every decision is audited "
        "on the platform.",
        "4. `preferences.jsonl` holds one preference pair for each VQA item whose answer an "
        "expert replaced: `chosen` is the expert's text, `rejected` the LLM draft "
        "(`source`: `expert_edit` or `expert_reject`).",
        "",
        f"Filter: `{meta.filter}`",
        "",
        "## Splits",
        "",
        f"Assigned by **{split['rule']}** (all panels and all questions of one "
        f"{split['rule']} in one split, never by question), stratified by modality, "
        f"deterministic from seed {split['seed']} ({ratios}). Items that were in the parent "
        "release keep their split, so a test item stays a test item across versions.",
        "",
        *_duplicates_section(counts.get("duplicates")),
        "## Files",
        "",
        "- `manifest.json`: metadata and the sha256 and size of every file; verify before use.",
        "- `pairs.jsonl`, `vqa.jsonl`, `preferences.jsonl`: the canonical records.",
        "- `images/ab/<sha256>.png`: the images, named by their content.",
        "- `formats/mmskin/`: MM-Skin's CSVs: `caption.csv` (with `diagnosis` and `split`), and "
        "per split `VQA_<split>.csv` (`image,question,answer`) and `classification_<split>.csv` "
        "(`image,atributes,categories`, MM-Skin's spelling; categories like `['Melanoma']`; "
        "pairs without a diagnosis left out). A text cell that begins "
        "with `=`, `+`, `-`, `@`, a tab or a carriage return is written with one leading `'`, "
        "so that a spreadsheet shows it as text instead of running it as a formula (CSV "
        "injection); drop that `'` to get the text back. Numbers (`age`) are not changed. Rows "
        "end in CRLF (RFC 4180), so a line break inside a caption stays in its quoted cell. "
        "The JSON, JSONL and Parquet files hold every text exactly as reviewed.",
        "- `formats/llava/`: LLaVA conversation JSON per task and split, and `<split>.json` "
        "with both tasks (image folder: the release root; caption prompt: "
        f'"{CAPTION_PROMPT}").',
        "- `formats/sharegpt/`: ShareGPT JSON and a LLaMA-Factory `dataset_info.json` "
        "(set `dataset_dir` to this folder and `media_dir` to the release root; `mmskin_dpo_*` "
        "entries have `ranking: true`).",
        "- `formats/hf/`: Parquet with embedded images for Hugging Face `datasets` (3.x or "
        "newer): the `default` config (pairs with their VQA items) and `preferences` "
        "(`images`, `prompt`, `chosen`, `rejected` in TRL's conversational format); splits "
        "`train`, `validation`, `test`.",
        "",
        "## Licence and use",
        "",
        "Images and captions come from the textbooks listed above and remain under their "
        "publishers' terms; check each book's licence note before redistribution. The data "
        "are for research on dermatology vision-language models, not for clinical use.",
        "",
    ]
    return "\n".join(lines)


def write_card(root: Path, meta: ReleaseMeta, counts: dict[str, Any]) -> None:
    (root / "DATASET_CARD.md").write_text(render_card(meta, counts), encoding="utf-8")
