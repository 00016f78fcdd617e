"""Job ids sort in creation order (manifests are found "newest first" by name)."""

from __future__ import annotations

import re

from bridge.job.layout import new_job_id


def test_job_ids_are_strictly_increasing_and_keep_their_shape() -> None:
    ids = [new_job_id() for _ in range(2000)]  # many share a second and a millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)
