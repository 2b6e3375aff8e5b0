"""The release writes sex as the platform stores it ("female" | "male" | null) and ``ml``
reads back the same values: no "F"/"M", no "" for unknown."""

import csv

from curation.models import Pair
from curation.services import releases as release_service


def test_sex_reaches_the_ml_reader_as_stored(world, cut):
    from ml.release import Release as MLRelease

    shipped = [p for p in world.pairs if p.status in ("accepted", "edited")]
    wanted = {}
    for i, pair in enumerate(shipped):
        sex = ("female", "male", None)[i % 3]
        Pair.objects.filter(pk=pair.pk).update(sex=sex)
        wanted[f"p{pair.pk}"] = sex
    release = cut()
    assert release.status == "ready", release.error
    root = release_service.ready_root(release) / "release"
    read = {p.id: p.sex for p in MLRelease(root).pairs()}
    assert read == wanted
    with open(root / "formats" / "mmskin" / "caption.csv", encoding="utf-8") as fh:
        column = {row["sex"] for row in csv.DictReader(fh)}
    assert column == {"female", "male", ""}
