"""Near-duplicate pictures: a perceptual descriptor per crop and chain-free clustering.

No Django import: the ingest service, the ``dedupe`` command and the benchmark
(``tests/benchmarks/bench_dedupe.py``) all call these plain functions.
"""

from curation.dedupe.cluster import (
    Clustering,
    Thresholds,
    cluster,
    cluster_components,
    hamming,
    update,
)
from curation.dedupe.describe import Descriptor, describe, describe_image

__all__ = [
    "Clustering", "Descriptor", "Thresholds", "cluster", "cluster_components", "describe",
    "describe_image", "hamming", "update",
]  # fmt: skip
