"""Selectors: OR within one kind, AND across kinds, in two steps around discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.inventory import BasicAuth, ClusterSpec, Inventory, SvmEntry, TlsSettings
from orchestrator.core.selectors import (
    Selection,
    cluster_may_match,
    clusters_to_discover,
    known_targets,
    parse_targets_file,
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
