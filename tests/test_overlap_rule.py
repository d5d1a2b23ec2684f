"""When a run overlaps discovery with the rotation, and what `resume` keeps of its selection."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from orchestrator.core.options import RunOptions, overlaps_discovery
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import TargetKey
from orchestrator.observe.progress import PlainProgress

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


def test_plain_progress_counts_the_targets_of_each_cluster_as_it_comes() -> None:
    """An overlapped run starts with no targets and no waves; each cluster adds its own,
    and the last line says all of them done."""
    out = io.StringIO()
    view = PlainProgress(Console(file=out, width=200), lambda: 0.0)
    view.start(0, 2, [])
    view.wave_started(0, 0)
    for _ in range(2):
        view.targets_added(3)
        for _ in range(3):
            view.target_finished("rekeyed")
    view.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "progress: 2 clusters, each rotated as it answers"
    assert lines[-1].startswith("progress: 6/6 (100%)")
    assert not any("wave" in line for line in lines)
