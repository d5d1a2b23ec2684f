"""When a run overlaps discovery with the rotation, and what `resume` keeps of its selection."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.options import RunOptions, overlaps_discovery
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import TargetKey

ONE_WAVE = RunOptions(waves="100%")


@pytest.mark.parametrize(
    ("options", "selection", "confirmed", "overlaps"),
    [
        (ONE_WAVE, Selection(), True, True),
        (replace(ONE_WAVE, waves="50"), Selection(), True, True),  # one step: one wave
        (ONE_WAVE, Selection(clusters=("c*",), tags=("prod",)), True, True),
        (ONE_WAVE, Selection(exclude_clusters=("c9",), exclude_svms=("tmp*",)), True, True),
        (ONE_WAVE, Selection(), False, False),  # the prompt shows the whole plan first
        (RunOptions(), Selection(), True, False),  # a canary and waves: every verdict first
        (replace(ONE_WAVE, waves="1,100%"), Selection(), True, False),
        (replace(ONE_WAVE, emergency=True), Selection(), True, False),  # priority order
        (ONE_WAVE, Selection(svms=("svm1",)), True, False),  # may match nothing: exit 2 first
        (ONE_WAVE, Selection(targets=frozenset({TargetKey("c1", "s1")})), True, False),
        (ONE_WAVE, Selection(excluded_targets=frozenset({TargetKey("c1", "s1")})), True, False),
    ],
)
def test_overlaps_only_where_nothing_fleet_wide_comes_first(
    options: RunOptions, selection: Selection, confirmed: bool, overlaps: bool
) -> None:
    assert overlaps_discovery(options, selection, confirmed=confirmed) is overlaps


globs = st.lists(st.text("abc*?-", min_size=1, max_size=4), max_size=3).map(tuple)


@given(clusters=globs, tags=globs, exclude_clusters=globs, exclude_svms=globs)
def test_a_selection_by_clusters_comes_back_from_its_record(
    clusters: tuple[str, ...],
    tags: tuple[str, ...],
    exclude_clusters: tuple[str, ...],
    exclude_svms: tuple[str, ...],
) -> None:
    selection = Selection(
        clusters=clusters, tags=tags, exclude_clusters=exclude_clusters, exclude_svms=exclude_svms
    )
    assert Selection.of_clusters(selection.as_record()) == selection


@pytest.mark.parametrize(
    "selection",
    [
        Selection(svms=("svm1",)),
        Selection(targets=frozenset({TargetKey("c1", "s1")})),
        Selection(excluded_targets=frozenset({TargetKey("c1", "s1")})),
    ],
)
def test_a_selection_of_svms_or_targets_is_not_taken_for_one_by_clusters(
    selection: Selection,
) -> None:
    with pytest.raises(ValueError, match="selected SVMs or targets"):
        Selection.of_clusters(selection.as_record())
