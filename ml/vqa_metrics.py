"""Benchmark scores: VQA by the reference libraries, classification with its confusion matrix.

VQA text scores come from `sacrebleu` and Google's `rouge-score`, the implementations papers
cite, rather than from our own code, so a figure here means what it means elsewhere:

- `bleu1`..`bleu4`: corpus BLEU-n (sacrebleu, uniform cumulative weights up to n, its `13a`
  tokenizer, lower-cased, no smoothing at corpus level), on a 0-1 scale. MM-Skin's
  VQA_test.py reports NLTK's corpus BLEU on whitespace tokens, which counts "cyst." and
  "cyst" as different words, so its figures run lower than these on punctuated answers;
- `rouge_l`: mean ROUGE-L F1 per item (rouge-score, no stemming);
- `recall`: mean share of the reference's distinct tokens found in the answer (MM-Skin's and
  LLaVA-Med's "recall"), on `ml.metrics.tokenize` tokens;
- `closed_accuracy`: over items whose reference answer opens with "yes" or "no" (MM-Skin's
  closed questions read "No, the lesion is flat ..."), the share whose answer's first yes/no
  word agrees.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ml.metrics import classification_scores, token_recall, tokenize, yes_no

VQA_IMPLEMENTATION = (
    "sacrebleu corpus BLEU-n (13a, lowercase) and rouge-score ROUGE-L F1 (no stemmer); "
    "recall = share of distinct reference tokens in the answer; closed = reference opens "
    "with yes/no"
)
UNMATCHED = "(no label)"


def closed_answer(reference: str) -> str | None:
    """'yes'/'no' when the reference answer opens with it, else None (an open question)."""
    tokens = tokenize(reference)
    return tokens[0] if tokens and tokens[0] in ("yes", "no") else None


def vqa_scores(references: Sequence[str], predictions: Sequence[str]) -> dict[str, Any]:
    """BLEU-1..4, ROUGE-L, recall and closed-question accuracy (see the module docstring)."""
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    refs, hyps = list(references), list(predictions)
    if len(refs) != len(hyps):
        raise ValueError("one prediction per reference")
    out: dict[str, Any] = {"n": len(refs)}
    if not refs:
        return out
    for n in range(1, 5):
        bleu = BLEU(max_ngram_order=n, lowercase=True, tokenize="13a")
        out[f"bleu{n}"] = bleu.corpus_score(hyps, [refs]).score / 100.0
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pairs = list(zip(refs, hyps, strict=True))
    out["rouge_l"] = sum(scorer.score(r, h)["rougeL"].fmeasure for r, h in pairs) / len(pairs)
    out["recall"] = sum(token_recall(r, h) for r, h in pairs) / len(pairs)
    closed = [(closed_answer(r), h) for r, h in pairs if closed_answer(r)]
    out["closed_n"] = len(closed)
    if closed:
        out["closed_accuracy"] = sum(yes_no(h) == gold for gold, h in closed) / len(closed)
    return out


def vqa_report(
    references: Sequence[str], predictions: Sequence[str], groups: Sequence[str | None]
) -> dict[str, Any]:
    """`vqa_scores` overall (`all`) and per group (modality) where groups are known."""
    report = {"all": vqa_scores(references, predictions), "implementation": VQA_IMPLEMENTATION}
    by: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        if g:
            by[g].append(i)
    for g, idx in sorted(by.items()):
        report[g] = vqa_scores([references[i] for i in idx], [predictions[i] for i in idx])
    return report


def classification_report(
    gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, balanced accuracy, per-class accuracy and the confusion matrix.

    The confusion matrix has one row per label (gold) and one column per label plus a last
    column, `(no label)`, for answers that named none; per-class accuracy is the share of a
    class's items answered with that class (its recall). Classes without gold items get a
    row of zeros and `null` accuracy rather than being left out, so matrices of two runs on
    one benchmark always line up.
    """
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        matrix[index[g]][index[p] if p is not None else len(labels)] += 1
    per_class = {}
    for label, row in zip(labels, matrix, strict=True):
        total = sum(row)
        per_class[label] = {
            "n": total,
            "accuracy": row[index[label]] / total if total else None,
        }
    return {
        **classification_scores(list(gold), list(predicted)),
        "per_class": per_class,
        "confusion": {"labels": labels, "columns": [*labels, UNMATCHED], "matrix": matrix},
    }
