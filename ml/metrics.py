"""Offline text and classification metrics, computed per modality.

BLEU implementations disagree on short answers (smoothing, brevity penalty, corpus vs
sentence level), so the one used here is spelled out: sentence-level BLEU-n with uniform
cumulative weights over 1..n-grams, clipped counts, the standard brevity penalty, and
Chen & Cherry (2014) smoothing method 1 (a zero n-gram match count is replaced by
epsilon=0.1), averaged over items; the same definition as NLTK's `sentence_bleu` with
`SmoothingFunction().method1`. Text is lower-cased and split into word/punctuation tokens.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

BLEU_NAME = "sentence-BLEU, uniform cumulative weights, Chen-Cherry smoothing method1 (eps=0.1)"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _TOKEN.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(reference: str, hypothesis: str, max_n: int = 4, eps: float = 0.1) -> float:
    """BLEU-`max_n` of one hypothesis against one reference (see module docstring)."""
    ref, hyp = tokenize(reference), tokenize(hypothesis)
    if not hyp or not ref:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        hyp_counts = _ngrams(hyp, n)
        denom = max(1, sum(hyp_counts.values()))
        ref_counts = _ngrams(ref, n)
        match = sum(min(c, ref_counts[g]) for g, c in hyp_counts.items())
        precision = (match if match > 0 else eps) / denom
        log_sum += math.log(precision) / max_n
    bp = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return bp * math.exp(log_sum)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(reference: str, hypothesis: str) -> float:
    """ROUGE-L F1 (longest common subsequence; beta=1, as Google's rouge-score)."""
    ref, hyp = tokenize(reference), tokenize(hypothesis)
    if not ref or not hyp:
        return 0.0
    lcs = _lcs(ref, hyp)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(hyp), lcs / len(ref)
    return 2 * p * r / (p + r)


def token_recall(reference: str, hypothesis: str) -> float:
    """Share of distinct reference tokens that appear in the hypothesis (LLaVA-Med's recall)."""
    ref = set(tokenize(reference))
    if not ref:
        return 0.0
    return len(ref & set(tokenize(hypothesis))) / len(ref)


def yes_no(text: str) -> str | None:
    """'yes' or 'no' from the first such word of an answer, else None."""
    for tok in tokenize(text):
        if tok in ("yes", "no"):
            return tok
    return None


def normalize_label(text: str) -> str:
    """Case-folded, with every run of whitespace collapsed to one space and the ends stripped.

    Both the label set and the generated answers go through this before matching, so
    "Basal  cell\nCarcinoma" in a release or an answer is the label "basal cell carcinoma".
    """
    return " ".join(str(text).casefold().split())


MATCHING_NAME = (
    "substring: the normalised label (case-folded, whitespace collapsed) found earliest in the "
    "normalised answer, the longest on ties; no label found counts as wrong"
)


def match_label(text: str, labels: Iterable[str]) -> str | None:
    """Zero-shot classification by substring: the label found earliest (longest on ties).

    Why substring matching: a generative model answers in free text ("This dermoscopic image
    shows a melanoma with ..."), not with a class index. Looking for the label's words in the
    answer needs no second model (it runs offline and is deterministic) and is what SkinVL /
    MM-Skin reported, so our numbers stay comparable with theirs.

    Its weaknesses, to keep in mind when reading the scores:

    - negation and hedging count as a hit: "not melanoma" and "melanoma vs nevus" both
      classify as melanoma (the earliest label mentioned wins a differential);
    - synonyms, abbreviations and spelling variants miss: "BCC", "naevus" or "psoriatic
      plaque" are no match for "basal cell carcinoma", "nevus" or "psoriasis" (counted wrong);
    - labels nested in other labels or words: "carcinoma" is inside "basal cell carcinoma"
      (hence longest-on-ties), and "acne" is inside "acneiform" (no word boundaries, as SkinVL);
    - a model that lists every class it knows scores well on accuracy; macro-F1 (a class
      predicted wrongly counts against that class's precision) exposes that better.
    """
    low = normalize_label(text)
    best: tuple[int, int, str] | None = None
    for label in labels:
        norm = normalize_label(label)
        if not norm:
            continue
        pos = low.find(norm)
        if pos >= 0:
            key = (pos, -len(norm), label)
            if best is None or key < best:
                best = key
    return best[2] if best else None


def classification_scores(gold: Sequence[str], pred: Sequence[str | None]) -> dict[str, float]:
    """Accuracy, macro-F1 and balanced accuracy, the way scikit-learn defines them.

    - accuracy: share of items whose predicted label equals the gold one;
    - macro-F1: the unweighted mean of per-class F1 over every class that is gold or predicted
      for some item (scikit-learn's `f1_score(average="macro")`): predicting a class that has
      no gold items here adds a class with F1 = 0;
    - balanced accuracy: the mean recall over the gold classes (`balanced_accuracy_score`).

    An answer that matched no label (None) is wrong for its gold class but is not a class of
    its own; `unmatched` counts those answers.
    """
    classes = sorted(set(gold) | {p for p in pred if p is not None})
    gold_classes = set(gold)
    n = len(gold)
    pairs = list(zip(gold, pred, strict=True))
    acc = sum(g == p for g, p in pairs) / n if n else 0.0
    f1s, recalls = [], []
    for c in classes:
        tp = sum(g == c and p == c for g, p in pairs)
        fp = sum(g != c and p == c for g, p in pairs)
        fn = sum(g == c and p != c for g, p in pairs)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        if c in gold_classes:
            recalls.append(recall)
    return {
        "accuracy": acc,
        "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
        "balanced_accuracy": sum(recalls) / len(recalls) if recalls else 0.0,
        "n": n,
        "unmatched": sum(p is None for p in pred),
    }


@dataclass
class Prediction:
    """One generated answer with what it is scored against."""

    reference: str
    prediction: str
    modality: str | None = None
    question_type: str | None = None
    label: str | None = None  # gold class for zero-shot classification items


def text_scores(preds: Sequence[Prediction]) -> dict[str, float]:
    """Mean BLEU-1..4, ROUGE-L and token recall, plus yes/no accuracy on closed items."""
    out: dict[str, float] = {"n": len(preds)}
    if not preds:
        return out
    for n in range(1, 5):
        out[f"bleu{n}"] = sum(sentence_bleu(p.reference, p.prediction, n) for p in preds) / len(
            preds
        )
    out["rouge_l"] = sum(rouge_l(p.reference, p.prediction) for p in preds) / len(preds)
    out["token_recall"] = sum(token_recall(p.reference, p.prediction) for p in preds) / len(preds)
    closed = [p for p in preds if yes_no(p.reference) and len(tokenize(p.reference)) <= 3]
    if closed:
        out["yes_no_accuracy"] = sum(yes_no(p.prediction) == yes_no(p.reference) for p in closed)
        out["yes_no_accuracy"] /= len(closed)
        out["yes_no_n"] = len(closed)
    return out


def evaluate(
    preds: Sequence[Prediction],
    labels: Sequence[str] = (),
    matcher: Callable[[str, Sequence[str]], str | None] | None = None,
) -> dict[str, Any]:
    """All metrics, overall and per modality; classification where items carry a label.

    With `labels` (the candidates the answers are matched against), an item whose gold label
    is not a candidate is left out of the classification scores and counted as `excluded`:
    no answer can ever be matched to it, so scoring it would only lower every figure by a
    share that says nothing about the model (a modality the question offers no answer
    for). Without `labels`, the gold labels are the candidates. `matcher` maps an answer to
    a candidate (default `match_label`; the modality task passes `match_modality`).
    """
    candidates = list(labels)
    known = {normalize_label(c) for c in candidates}
    match = matcher or match_label
    groups: dict[str, list[Prediction]] = defaultdict(list)
    for p in preds:
        groups["all"].append(p)
        groups[p.modality or "unknown"].append(p)
    result: dict[str, Any] = {"bleu_implementation": BLEU_NAME}
    for name, items in sorted(groups.items()):
        scores: dict[str, Any] = text_scores(items)
        labelled = [p for p in items if p.label is not None]
        if labelled:
            scored = [p for p in labelled if not known or normalize_label(p.label) in known]
            if scored:
                cls = classification_scores(
                    [p.label for p in scored],
                    [
                        match(p.prediction, candidates or sorted({q.label for q in scored}))
                        for p in scored
                    ],
                )
            else:
                cls = {"n": 0, "unmatched": 0}
            cls["excluded"] = len(labelled) - len(scored)
            scores["classification"] = cls
        result[name] = scores
    return result
