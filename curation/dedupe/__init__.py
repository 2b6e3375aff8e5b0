"""Near-duplicate pictures: a perceptual descriptor per crop and chain-free clustering.

No Django import: the ingest service, the ``dedupe`` command and the benchmark
(``tests/benchmarks/bench_dedupe.py``) all call these plain functions.
"""

from curation.dedupe.cluster import Thresholds, cluster, hamming
from curation.dedupe.describe import Descriptor, describe, describe_image

__all__ = ["Descriptor", "Thresholds", "cluster", "describe", "describe_image", "hamming"]
