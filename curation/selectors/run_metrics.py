"""What a training run's page draws from the metrics its worker reported.

A worker (`python -m ml worker`) reports into `TrainingRun.metrics`:

- `curve`: [[step, loss], ...], appended report by report (`services.training.merge_curve`);
- `benchmarks`: {name: {kind, accuracy, macro_f1, ..., n}} from an eval run's suite;
- `eval`: the release test split's scores (VQA, modality and diagnosis classification);
- an `sft_cls` run's summary: `benchmark`, `accuracy`, `macro_f1`, `auc`, ... at top level.

Everything here is plain data for the templates: the loss chart as SVG coordinates (drawn
server-side, so the page needs no script and no inline style under the CSP) and the
benchmark table as rows. A metric a run does not have is None, shown as a dash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

CHART_W, CHART_H = 640, 240
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 12, 28
SERIES_CLASSES = 6  # series-0 .. series-5 in training.css, reused past six runs

# Columns of the benchmark table, in order, with their headings.
COLUMNS = [
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro-F1"),
    ("balanced_accuracy", "Balanced acc."),
    ("auc", "AUC"),
    ("bleu1", "BLEU-1"),
    ("bleu4", "BLEU-4"),
    ("rouge_l", "ROUGE-L"),
    ("recall", "Recall"),
    ("closed_accuracy", "Closed acc."),
]
# Of each row, the figure a comparison ranks runs by (higher is better for all of them).
HEADLINE = {"classification": "accuracy", "vqa": "rouge_l"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def curve_points(metrics: dict) -> list[tuple[float, float]]:
    """The run's [step, loss] points that are finite numbers, in step order."""
    raw = metrics.get("curve") if isinstance(metrics, dict) else None
    out = []
    for p in raw if isinstance(raw, list) else []:
        if isinstance(p, list | tuple) and len(p) == 2:
            step, loss = _num(p[0]), _num(p[1])
            if step is not None and loss is not None:
                out.append((step, loss))
    return sorted(out)


def _nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.4g}"


@dataclass
class Series:
    run_id: int
    label: str
    css: str
    points: str  # SVG polyline points
    last: tuple[float, float] | None
    count: int


@dataclass
class LossChart:
    width: int = CHART_W
    height: int = CHART_H
    series: list[Series] = field(default_factory=list)
    x_ticks: list[dict] = field(default_factory=list)
    y_ticks: list[dict] = field(default_factory=list)
    plot: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.series


def loss_chart(runs: list[tuple[int, str, dict]]) -> LossChart:
    """One chart for one or more runs ((id, label, metrics) each), on shared axes."""
    curves = [(rid, label, curve_points(m)) for rid, label, m in runs]
    curves = [c for c in curves if c[2]]
    chart = LossChart()
    x0, x1 = PAD_L, CHART_W - PAD_R
    y0, y1 = PAD_T, CHART_H - PAD_B
    chart.plot = {"x0": x0, "x1": x1, "y0": y0, "y1": y1}
    if not curves:
        return chart
    steps = [s for _, _, pts in curves for s, _ in pts]
    losses = [v for _, _, pts in curves for _, v in pts]
    smin, smax = min(steps), max(steps)
    lmin, lmax = min(losses), max(losses)
    if lmax == lmin:
        lmin, lmax = lmin - 0.5, lmax + 0.5
    if smax == smin:
        smin, smax = smin - 1, smax + 1

    def sx(s: float) -> float:
        return round(x0 + (s - smin) * (x1 - x0) / (smax - smin), 2)

    def sy(v: float) -> float:
        return round(y1 - (v - lmin) * (y1 - y0) / (lmax - lmin), 2)

    for i, (rid, label, pts) in enumerate(curves):
        chart.series.append(
            Series(
                run_id=rid,
                label=label,
                css=f"series-{i % SERIES_CLASSES}",
                points=" ".join(f"{sx(s)},{sy(v)}" for s, v in pts),
                last=pts[-1],
                count=len(pts),
            )
        )
    chart.x_ticks = [{"x": sx(t), "label": _fmt(t)} for t in _nice_ticks(smin, smax)]
    chart.y_ticks = [{"y": sy(t), "label": _fmt(t)} for t in _nice_ticks(lmin, lmax)]
    return chart


@dataclass
class BenchRow:
    name: str
    kind: str
    n: int | None
    values: dict[str, float | None]

    @property
    def headline(self) -> float | None:
        return self.values.get(HEADLINE.get(self.kind, "accuracy"))


def _row(name: str, kind: str, block: dict, renames: dict[str, str] | None = None) -> BenchRow:
    renames = renames or {}
    values = {key: _num(block.get(renames.get(key, key))) for key, _ in COLUMNS}
    n = block.get("n")
    return BenchRow(name=name, kind=kind, n=n if isinstance(n, int) else None, values=values)


def benchmark_rows(metrics: dict) -> list[BenchRow]:
    """The run's eval figures as table rows: its suite's benchmarks, its release test split,
    and an sft_cls run's test benchmark."""
    if not isinstance(metrics, dict):
        return []
    rows: list[BenchRow] = []
    suite = metrics.get("benchmarks")
    if isinstance(suite, dict):
        for name, block in suite.items():
            if isinstance(block, dict):
                kind = block.get("kind") if block.get("kind") in HEADLINE else "classification"
                rows.append(_row(str(name), kind, block))
    ev = metrics.get("eval")
    if isinstance(ev, dict):
        vqa = (ev.get("vqa") or {}).get("all")
        if isinstance(vqa, dict):
            rows.append(
                _row(
                    "release test: VQA",
                    "vqa",
                    vqa,
                    {"recall": "token_recall", "closed_accuracy": "yes_no_accuracy"},
                )
            )
        for task, title in (
            ("modality_classification", "release test: modality"),
            ("diagnosis_classification", "release test: diagnosis"),
        ):
            block = ((ev.get(task) or {}).get("all") or {}).get("classification")
            if isinstance(block, dict):
                rows.append(_row(title, "classification", block))
    if metrics.get("stage") == "sft_cls" and metrics.get("benchmark"):
        name = f"{metrics['benchmark']} (sft_cls)"
        rows.append(_row(name, "classification", {**metrics, "n": metrics.get("test_rows")}))
    return rows


def present_columns(rows: list[BenchRow]) -> list[tuple[str, str]]:
    """The table's columns that some row has a figure for."""
    return [(k, h) for k, h in COLUMNS if any(r.values.get(k) is not None for r in rows)]


@dataclass
class CompareRow:
    name: str
    metric: str
    heading: str
    cells: list[dict]  # one per run: value (or None) and whether it is the best


def compare(runs: list[tuple[int, str, dict]]) -> list[CompareRow]:
    """Every benchmark any of the runs has, every figure, one cell per run; best marked."""
    per_run = [{r.name: r for r in benchmark_rows(m)} for _, _, m in runs]
    names: list[str] = []
    for rows in per_run:
        names.extend(n for n in rows if n not in names)
    out = []
    for name in names:
        for key, heading in COLUMNS:
            values = [rows[name].values.get(key) if name in rows else None for rows in per_run]
            present = [v for v in values if v is not None]
            if not present:
                continue
            best = max(present) if len(present) > 1 else None
            out.append(
                CompareRow(
                    name=name,
                    metric=key,
                    heading=heading,
                    cells=[{"value": v, "best": v is not None and v == best} for v in values],
                )
            )
    return out
