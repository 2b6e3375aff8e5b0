"""Release building as a pipeline of plain steps, with no Django import.

selector output (``records``) -> ``split`` -> ``writer`` (canonical jsonl + images) ->
``formats`` -> ``card`` -> ``manifest`` -> ``archive``; ``build.build`` runs them in order.
The layout is the contract in shared/DESIGN.md ("Release layout").
"""

from curation.release.build import ARCHIVE, RELEASE_DIR, BuildResult, build
from curation.release.diff import ReleaseDiff, diff_members
from curation.release.leaks import LeakError, check_leaks
from curation.release.manifest import SCHEMA_VERSION
from curation.release.records import SPLITS, BookInfo, GroupInfo, PairRecord, ReleaseMeta, VQARecord
from curation.release.split import SplitConfig, SplitError, assign_splits
from curation.release.writer import ReleaseBuildError, preference_of

__all__ = [
    "ARCHIVE",
    "RELEASE_DIR",
    "SCHEMA_VERSION",
    "SPLITS",
    "BookInfo",
    "BuildResult",
    "GroupInfo",
    "LeakError",
    "PairRecord",
    "ReleaseBuildError",
    "ReleaseDiff",
    "ReleaseMeta",
    "SplitConfig",
    "SplitError",
    "VQARecord",
    "assign_splits",
    "build",
    "check_leaks",
    "diff_members",
    "preference_of",
]
