"""Selectors: OR within one kind, AND across kinds, in two steps around discovery."""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.inventory import BasicAuth, ClusterSpec, Inventory, SvmEntry, TlsSettings
from orchestrator.core.selectors import (
    Selection,
    TargetsFile,
    cluster_may_match,
    clusters_to_discover,
    discovery_problems,
    inventory_targets,
    known_targets,
    parse_targets_file,
    read_targets_file,
    selection_problems,
    target_matches,
)
from orchestrator.core.targets import TargetKey


def _spec(
    name: str,
    *,
    tags: tuple[str, ...] = (),
    svms: tuple[str, ...] = (),
    all_svms: bool = False,
    scope: bool = False,
) -> ClusterSpec:
    return ClusterSpec(
        name=name,
        base_url=f"https://{name}",
        auth=BasicAuth("u", password_env="P"),
        tls=TlsSettings(),
        key_id="current",
        tags=tags,
        all_svms=all_svms,
        svms=tuple(SvmEntry(svm, "current") for svm in svms),
        include_cluster_scope=scope,
    )


EAST = _spec("east-01", tags=("prod", "us-east-1"), svms=("svm_fin", "svm_hr"), scope=True)
WEST = _spec("west-02", tags=("prod",), svms=("svm_fin",))
LAB = _spec("lab-01", tags=("lab",), all_svms=True)
DR = _spec("dr-01", tags=("dr",), all_svms=True, scope=True)
FLEET = Inventory(Path("/f.yaml"), "0" * 64, 1, (EAST, WEST, LAB, DR))


def _keys(*texts: str) -> frozenset[TargetKey]:
    return frozenset(TargetKey.parse(text) for text in texts)


# -- Selection -------------------------------------------------------------------------


def test_an_empty_selection_selects_everything() -> None:
    assert Selection().is_empty
    assert all(cluster_may_match(Selection(), spec) for spec in FLEET.clusters)
    assert target_matches(Selection(), EAST, "anything")


@pytest.mark.parametrize(
    "selection",
    [
        Selection(clusters=("x",)),
        Selection(svms=("x",)),
        Selection(tags=("x",)),
        Selection(targets=frozenset()),
    ],
)
def test_any_selector_makes_a_selection_non_empty(selection: Selection) -> None:
    assert not selection.is_empty


def test_cluster_globs_are_ored() -> None:
    selection = Selection(clusters=("east-*", "lab-0?"))
    assert [s.name for s in FLEET.clusters if cluster_may_match(selection, s)] == [
        "east-01",
        "lab-01",
    ]


def test_globs_are_case_sensitive() -> None:
    assert not cluster_may_match(Selection(clusters=("EAST-*",)), EAST)


def test_tags_are_ored_and_exact() -> None:
    selection = Selection(tags=("lab", "dr"))
    assert [s.name for s in FLEET.clusters if cluster_may_match(selection, s)] == [
        "lab-01",
        "dr-01",
    ]
    assert not cluster_may_match(Selection(tags=("pro",)), EAST)


def test_kinds_are_anded() -> None:
    """--cluster east-* --tag prod --svm svm_hr: all three must hold."""
    selection = Selection(clusters=("*-0?",), tags=("prod",), svms=("svm_hr",))
    assert target_matches(selection, EAST, "svm_hr")
    assert not target_matches(selection, EAST, "svm_fin")
    assert not target_matches(selection, LAB, "svm_hr")


def test_svm_glob_cannot_exclude_a_cluster_before_discovery() -> None:
    """With svms: all the names are unknown until discovery: the cluster stays in."""
    assert cluster_may_match(Selection(svms=("svm_nope",)), LAB)


def test_the_cluster_scope_is_selected_as_dash() -> None:
    assert target_matches(Selection(svms=("-",)), EAST, "-")
    assert not target_matches(Selection(svms=("svm_*",)), EAST, "-")


def test_targets_file_selects_exact_keys_only() -> None:
    selection = Selection(targets=_keys("east-01/svm_hr", "lab-01/vs9"))
    assert cluster_may_match(selection, EAST)
    assert not cluster_may_match(selection, WEST)
    assert target_matches(selection, EAST, "svm_hr")
    assert not target_matches(selection, EAST, "svm_fin")
    assert target_matches(selection, LAB, "vs9")


def test_targets_and_globs_are_anded() -> None:
    selection = Selection(clusters=("west-*",), targets=_keys("east-01/svm_hr"))
    assert not cluster_may_match(selection, EAST)


# -- before discovery: known targets and clusters to discover --------------------------


def test_known_targets_are_explicit_svms_and_cluster_scopes_in_order() -> None:
    assert [str(k) for k in known_targets(Selection(), FLEET)] == [
        "east-01/svm_fin",
        "east-01/svm_hr",
        "east-01/-",
        "west-02/svm_fin",
        "dr-01/-",
    ]


def test_known_targets_honour_the_selection() -> None:
    selection = Selection(svms=("svm_fin",), tags=("prod",))
    assert [str(k) for k in known_targets(selection, FLEET)] == [
        "east-01/svm_fin",
        "west-02/svm_fin",
    ]


def test_clusters_to_discover_are_the_matching_svms_all_clusters() -> None:
    assert [s.name for s in clusters_to_discover(Selection(), FLEET)] == ["lab-01", "dr-01"]
    assert clusters_to_discover(Selection(tags=("prod",)), FLEET) == ()
    assert [s.name for s in clusters_to_discover(Selection(tags=("dr",)), FLEET)] == ["dr-01"]


# -- --targets files -------------------------------------------------------------------


def test_parse_targets_file_ignores_comments_and_blanks() -> None:
    text = "# failed in run 42\n\neast-01/svm_hr   # code 65537919\n  dr-01/-  \n"
    assert parse_targets_file(text) == _keys("east-01/svm_hr", "dr-01/-")


def test_parse_targets_file_deduplicates() -> None:
    assert parse_targets_file("a/b\na/b\n") == _keys("a/b")


@pytest.mark.parametrize(
    ("text", "line"),
    [("a/b\nnot-a-target\n", 2), ("\n\n/svm\n", 3), ("a/b/c\n", 1), ("a/\n", 1)],
)
def test_parse_targets_file_names_the_first_bad_line(text: str, line: int) -> None:
    with pytest.raises(ValueError, match=rf"^line {line}: expected 'cluster/svm'"):
        parse_targets_file(text)


def test_an_empty_targets_file_selects_nothing() -> None:
    selection = Selection(targets=parse_targets_file("# nothing failed\n"))
    assert not any(cluster_may_match(selection, spec) for spec in FLEET.clusters)


# -- exclusions --------------------------------------------------------------------------


def test_exclude_cluster_wins_over_a_matching_cluster_glob() -> None:
    selection = Selection(clusters=("*-0?",), exclude_clusters=("west-*", "lab-*"))
    assert [s.name for s in FLEET.clusters if cluster_may_match(selection, s)] == [
        "east-01",
        "dr-01",
    ]


def test_exclude_svm_and_bang_lines_leave_single_targets_out() -> None:
    selection = Selection(exclude_svms=("svm_h*",), excluded_targets=_keys("west-02/svm_fin"))
    assert [str(k) for k in known_targets(selection, FLEET)] == [
        "east-01/svm_fin",
        "east-01/-",
        "dr-01/-",
    ]
    assert target_matches(selection, LAB, "svm_fin")


def test_a_whole_cluster_line_selects_or_excludes_the_cluster() -> None:
    assert target_matches(Selection(targets=_keys("lab-01/*")), LAB, "anything")
    assert not cluster_may_match(Selection(excluded_targets=_keys("lab-01/*")), LAB)


def test_a_targets_file_of_only_bang_lines_selects_everything_else() -> None:
    parsed = read_targets_file("# skip these\n!east-01/svm_hr\n!lab-01/*\n")
    assert parsed == TargetsFile(None, _keys("east-01/svm_hr", "lab-01/*"))


def test_a_targets_file_mixes_selecting_and_excluding_lines() -> None:
    parsed = read_targets_file("east-01/*\n!east-01/-\n")
    assert parsed == TargetsFile(_keys("east-01/*"), _keys("east-01/-"))
    assert parse_targets_file("east-01/*\n!east-01/-\n") == _keys("east-01/*")


def test_a_bad_bang_line_is_named() -> None:
    with pytest.raises(ValueError, match=r"^line 2: expected 'cluster/svm'"):
        read_targets_file("a/b\n!oops\n")


def test_exclusions_alone_do_not_make_a_selection() -> None:
    """`--emergency --exclude-cluster x` would still rekey nearly everything: --all needed."""
    assert Selection(exclude_clusters=("x",), excluded_targets=_keys("a/b")).is_empty


# -- no false green ----------------------------------------------------------------------


def test_a_valid_selection_has_no_problems() -> None:
    assert selection_problems(Selection(clusters=("east-*",), svms=("svm_hr",)), FLEET) == []


def test_every_selector_that_matches_nothing_gets_its_own_line() -> None:
    selection = Selection(clusters=("east-*", "nope*"), tags=("prod", "qa"))
    assert selection_problems(selection, FLEET) == [
        "--cluster 'nope*' matches no cluster of the inventory "
        "(clusters: dr-01, east-01, lab-01, west-02)",
        "--tag 'qa' matches no cluster of the inventory (tags: dr, lab, prod, us-east-1)",
    ]


def test_svm_globs_on_explicit_clusters_are_checked_offline() -> None:
    selection = Selection(tags=("prod",), svms=("svm_fni",))
    assert selection_problems(selection, FLEET) == [
        "--svm 'svm_fni' matches no SVM of the selected clusters (SVMs: -, svm_fin, svm_hr)"
    ]


def test_svm_globs_that_may_fall_on_svms_all_clusters_wait_for_discovery() -> None:
    assert selection_problems(Selection(svms=("svm_fni",)), FLEET) == []


def test_targets_lines_are_checked_against_the_inventory() -> None:
    selection = Selection(
        targets=_keys("east-01/svm_hr", "east-01/svm_x", "lab-01/vs1", "west-02/-"),
        excluded_targets=_keys("mars-01/svm"),
        targets_file="failed.txt",
    )
    assert selection_problems(selection, FLEET) == [
        "--targets @failed.txt: east-01/svm_x is not a target of the inventory "
        "(east-01 has -, svm_fin, svm_hr)",
        "--targets @failed.txt: west-02/- is not a target of the inventory (west-02 has svm_fin)",
        "--targets @failed.txt: !mars-01/svm names cluster 'mars-01', which the inventory "
        "lacks (clusters: dr-01, east-01, lab-01, west-02)",
    ]


def test_selectors_that_each_match_but_together_select_nothing() -> None:
    selection = Selection(clusters=("west-02",), svms=("svm_hr",))
    # svm_hr exists (on east-01), but not on west-02: the per-selector check names it.
    assert selection_problems(selection, FLEET) == [
        "--svm 'svm_hr' matches no SVM of the selected clusters (SVMs: svm_fin)"
    ]
    selection = Selection(clusters=("west-02",), tags=("lab",))
    assert selection_problems(selection, FLEET) == [
        "the selection matches no target of the inventory: --cluster west-02 --tag lab"
    ]


def test_after_discovery_no_target_is_a_problem() -> None:
    assert discovery_problems(Selection(svms=("x",)), {"lab-01": set()}, set()) == [
        "the selection matches no target on the clusters: --svm x"
    ]


def test_after_discovery_an_svm_glob_that_found_nothing_is_named() -> None:
    found = {"lab-01": {"svm_a"}, "dr-01": {"-"}}
    assert discovery_problems(Selection(svms=("svm_a", "-", "svm_b")), found, set()) == [
        "--svm 'svm_b' matches no SVM found on the selected clusters"
    ]


def test_after_discovery_an_undiscovered_cluster_gets_the_benefit_of_the_doubt() -> None:
    """Its SVM names are unknown (unreachable): its targets end skipped, not exit 2."""
    found = {"lab-01": {"svm_a"}, "dr-01": {"*"}}
    assert discovery_problems(Selection(svms=("svm_a", "svm_b")), found, {"dr-01"}) == []


def test_after_discovery_a_targets_line_not_found_is_named() -> None:
    selection = Selection(targets=_keys("lab-01/svm_a", "lab-01/svm_z", "dr-01/vs1"))
    found = {"lab-01": {"svm_a"}, "dr-01": {"*"}}
    assert discovery_problems(selection, found, {"dr-01"}) == [
        "--targets @FILE: lab-01/svm_z is not a target on cluster lab-01"
    ]


# -- properties --------------------------------------------------------------------------

_NAMES = st.sampled_from(["east-01", "west-02", "lab-01", "dr-01"])
_SVMS = st.sampled_from(["svm_fin", "svm_hr", "-", "vs1"])
_GLOBS = st.lists(st.sampled_from(["*", "east-*", "*-0?", "lab-01", "w*", "x"]), max_size=3)
_SVM_GLOBS = st.lists(st.sampled_from(["*", "svm_*", "-", "vs?", "none"]), max_size=3)


@st.composite
def _selections(draw: st.DrawFn) -> Selection:
    keys = st.builds(TargetKey, _NAMES, st.one_of(_SVMS, st.just("*")))
    targets = draw(st.one_of(st.none(), st.frozensets(keys, max_size=4)))
    return Selection(
        clusters=tuple(draw(_GLOBS)),
        svms=tuple(draw(_SVM_GLOBS)),
        tags=tuple(draw(st.lists(st.sampled_from(["prod", "lab", "dr"]), max_size=2))),
        targets=targets,
    )


@given(
    selection=_selections(),
    exclude_clusters=_GLOBS,
    exclude_svms=_SVM_GLOBS,
    excluded=st.frozensets(st.builds(TargetKey, _NAMES, _SVMS), max_size=3),
    cluster=st.sampled_from(FLEET.clusters),
    svm=_SVMS,
)
def test_an_exclusion_removes_exactly_what_it_names(
    selection: Selection,
    exclude_clusters: list[str],
    exclude_svms: list[str],
    excluded: frozenset[TargetKey],
    cluster: ClusterSpec,
    svm: str,
) -> None:
    """Selected with exclusions == selected without them and not named by any of them."""
    narrowed = replace(
        selection,
        exclude_clusters=tuple(exclude_clusters),
        exclude_svms=tuple(exclude_svms),
        excluded_targets=excluded,
    )
    named = (
        any(fnmatchcase(cluster.name, glob) for glob in exclude_clusters)
        or any(fnmatchcase(svm, glob) for glob in exclude_svms)
        or TargetKey(cluster.name, svm) in excluded
    )
    assert target_matches(narrowed, cluster, svm) == (
        target_matches(selection, cluster, svm) and not named
    )


@given(selection=_selections())
def test_no_problem_means_something_is_selected(selection: Selection) -> None:
    """The offline check never lets a selection of nothing through."""
    if not selection_problems(selection, FLEET):
        assert known_targets(selection, FLEET) or clusters_to_discover(selection, FLEET)


def test_inventory_targets_lists_entries_found_svms_and_the_cluster_scope() -> None:
    """The one rule of "which targets an inventory names" (validate, history; issue 14)."""
    mixed = _spec("m", svms=("b", "a"), all_svms=True, scope=True)
    assert inventory_targets(EAST) == ["svm_fin", "svm_hr", "-"]
    assert inventory_targets(mixed, ["c", "a", "-", "c"]) == ["b", "a", "c", "-"]
    assert inventory_targets(mixed, None) == ["b", "a", "*", "-"]  # could not be listed
    assert inventory_targets(LAB) == []  # `svms: all`, nothing found yet
    assert inventory_targets(WEST, ["other"]) == ["svm_fin"]  # found SVMs only with `all`
