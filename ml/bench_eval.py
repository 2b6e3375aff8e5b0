"""`python -m ml eval --benchmark CSV --images DIR` (or `--suite FILE`): score a model on
external benchmarks in MM-Skin's formats.

The model is loaded once (`ml.evaluate.load_for_eval`: the base model plus the adapter and
projector of `train.init_from`) and answers every benchmark with the same decoding
(`cfg.eval`) and the same chat template as training. Classification answers are matched to
the benchmark's fixed label set (`ml.benchmarks.match_normalised`); VQA answers are scored
by `ml.vqa_metrics`. Each benchmark writes `scores.json` and `predictions.jsonl` under
`OUTPUT/benchmarks/NAME/`, and the whole run `OUTPUT/benchmarks.json`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ml.benchmarks import (
    CLASSIFICATION,
    DEFAULT_PROMPT_STYLE,
    NORMALISED_MATCH,
    PROMPT_PRESETS,
    Benchmark,
    BenchmarkError,
    load_benchmark,
    load_suite,
    match_normalised,
)
from ml.config import Config
from ml.loop import save_json
from ml.vqa_metrics import classification_report, vqa_report

# The figures of a benchmark that go back to the platform with the run (the rest stays in
# the run folder): small enough for the run's metrics, enough for a table and a comparison.
SUMMARY_KEYS = (
    "accuracy",
    "macro_f1",
    "balanced_accuracy",
    "unmatched",
    "bleu1",
    "bleu4",
    "rouge_l",
    "recall",
    "closed_accuracy",
    "n",
)


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "benchmark"


def score_benchmark(bench: Benchmark, answers: list[str]) -> tuple[dict[str, Any], list[dict]]:
    """Scores and per-item predictions of one benchmark from the model's answers."""
    rows = []
    if bench.kind == CLASSIFICATION:
        gold, predicted = [], []
        for item, answer in zip(bench.items, answers, strict=True):
            matched = match_normalised(answer, bench.labels)
            # The row's categories as labels of the set (load_benchmark checked they are).
            in_row = [match_normalised(c, bench.labels) for c in item.categories]
            # A row listing several categories is right when the answer names any of them.
            gold.append(matched if matched is not None and matched in in_row else in_row[0])
            predicted.append(matched)
            rows.append(
                {
                    "row": item.row,
                    "image": item.image,
                    "categories": item.categories,
                    "answer": answer,
                    "matched": matched,
                    "correct": matched is not None and matched == gold[-1],
                }
            )
        scores = {"classification": classification_report(gold, predicted, bench.labels)}
        scores["matching"] = NORMALISED_MATCH
    else:
        refs = [it.answer or "" for it in bench.items]
        groups = [bench.modalities.get(it.image) for it in bench.items]
        scores = {"vqa": vqa_report(refs, answers, groups)}
        for item, answer, group in zip(bench.items, answers, groups, strict=True):
            rows.append(
                {
                    "row": item.row,
                    "image": item.image,
                    "question": item.question,
                    "reference": item.answer,
                    "answer": answer,
                    "modality": group,
                }
            )
    return scores, rows


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one benchmark's result (what the platform's table shows)."""
    block = result.get("classification") or (result.get("vqa") or {}).get("all") or {}
    out = {k: block[k] for k in SUMMARY_KEYS if k in block and block[k] is not None}
    out["kind"] = result["benchmark"]["kind"]
    return out


def evaluate_benchmarks(
    cfg: Config, benches: list[Benchmark], *, model: Any = None, processor: Any = None
) -> dict[str, Any]:
    """Answer and score every benchmark; writes the files described in the module docstring."""
    from ml.evaluate import generate, load_for_eval
    from ml.loop import setup_distributed

    dist = setup_distributed()
    if model is None:
        model, processor = load_for_eval(cfg, dist.device)
    out = Path(cfg.train.output_dir)
    results: dict[str, Any] = {}
    for bench in benches:
        if bench.kind == CLASSIFICATION:
            items = [
                {"image": bench.image_path(it), "question": bench.prompt} for it in bench.items
            ]
        else:
            items = [{"image": bench.image_path(it), "question": it.question} for it in bench.items]
        answers = generate(model, processor, items, cfg, dist.device)
        scores, rows = score_benchmark(bench, answers)
        result = {
            "benchmark": bench.describe(),
            "model": cfg.model.path,
            "trained": cfg.train.init_from,
            "decoding": asdict(cfg.eval),
            **scores,
        }
        folder = out / "benchmarks" / _folder_name(bench.name)
        folder.mkdir(parents=True, exist_ok=True)
        save_json(folder / "scores.json", result)
        with open(folder / "predictions.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
        results[bench.name] = result
    brief = {name: summary(r) for name, r in results.items()}
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / "benchmarks.json", {"benchmarks": brief, "decoding": asdict(cfg.eval)})
    return {"results": results, "summary": brief}


def add_benchmark_args(parser: Any) -> None:
    """The benchmark options of `python -m ml eval`."""
    parser.add_argument(
        "--benchmark",
        action="append",
        default=[],
        metavar="CSV",
        help="an MM-Skin classification (image,atributes,categories) or VQA "
        "(image,question,answer) CSV; repeat for several",
    )
    parser.add_argument("--images", help="the folder the CSV's image paths are relative to")
    parser.add_argument(
        "--labels",
        help="the fixed label set: comma-separated or @FILE (one a line); default: the CSV's "
        "categories",
    )
    parser.add_argument(
        "--prompt-style",
        default=DEFAULT_PROMPT_STYLE,
        help=f"zero-shot question: a preset ({', '.join(sorted(PROMPT_PRESETS))}) or a "
        "template with {labels}",
    )
    parser.add_argument("--captions", help="caption.csv (image,modality): VQA scores per modality")
    parser.add_argument("--suite", help="a YAML file listing several benchmarks")
    parser.add_argument("--limit", type=int, default=0, help="first N rows of each benchmark")


def run_from_args(cfg: Config, args: Any) -> dict[str, Any]:
    """`eval --benchmark/--suite`: load, check, evaluate; returns the per-benchmark summary."""
    benches: list[Benchmark] = []
    if args.suite:
        benches.extend(load_suite(args.suite, images=args.images))
    if args.benchmark and not args.images:
        raise BenchmarkError("--benchmark needs --images (the folder its image paths start in)")
    for path in args.benchmark:
        benches.append(
            load_benchmark(
                path,
                args.images,
                labels=args.labels,
                prompt_style=args.prompt_style,
                captions=args.captions,
                limit=args.limit,
            )
        )
    names = [b.name for b in benches]
    if len(set(names)) != len(names):
        raise BenchmarkError(f"two benchmarks share a name: {names}")
    return evaluate_benchmarks(cfg, benches)["summary"]
