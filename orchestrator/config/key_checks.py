"""Key ids of the wrong shape for their provider, found offline (issue 15).

A key id's shape depends on the provider (an AWS key id, an Azure key URL, a GCP key
name), and a target's provider is known offline only when `providers:` pins it to one.
For each cluster (its own targets: `svms: all` and the cluster scope) and each SVM entry,
the values are resolved through the levels as `orchestrator.config.resolve` does (SVM
entry, cluster, its groups in order, defaults) while remembering where each was written,
and the effective key is checked for the pinned provider. The issue points at the key
where it was written, which may be a group or `defaults:`.

Like `checks`, this reads the raw YAML data so it runs even when the schema failed
elsewhere; a wrong type is the schema's to report. Targets whose provider is learnt only
at discovery are checked then, by `orchestrator.core.keyids.check_intended_key`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.config.issues import Issue
from orchestrator.config.yaml_marks import Loc
from orchestrator.core.inventory import KEY_ID_CURRENT
from orchestrator.core.inventory_model import GCP_KEY_FIELDS
from orchestrator.core.keyids import (
    SAMPLE_NAME,
    fill_template,
    gcp_field_problem,
    template_shape_problem,
)
from orchestrator.core.providers import Provider

_KEY_ID_USERS = frozenset({Provider.AWS, Provider.AZURE})


@dataclass(frozen=True)
class _Level:
    loc: Loc
    data: Mapping[Any, Any]


@dataclass(frozen=True)
class _Found:
    """A resolved value and where it was written; `own` when at the target's own level."""

    value: str
    loc: Loc
    own: bool


def key_shape_issues(data: Mapping[str, Any]) -> list[Issue]:
    """Every key field of the wrong shape for the one provider its targets are pinned to."""
    issues: list[Issue] = []
    for cluster_name, svm, levels in _targets(data):
        provider = _pinned(levels)
        if provider is not None:
            issues += _issues_for(provider, levels, cluster=cluster_name, svm=svm)
    return issues


def _issues_for(
    provider: Provider, levels: tuple[_Level, ...], *, cluster: str | None, svm: str | None
) -> list[Issue]:
    found = {field: _first(levels, field) for field in ("key_id", *GCP_KEY_FIELDS)}
    issues: list[Issue] = []
    key_id = found["key_id"]
    if provider in _KEY_ID_USERS and key_id is not None:
        problem = template_shape_problem(provider, key_id.value, cluster=cluster, svm=svm)
        if problem is not None:
            issues.append(Issue(key_id.loc, f"for {provider.value} targets: {problem}"))
    if provider is Provider.GCP:
        issues += _gcp_issues(found, cluster=cluster, svm=svm)
        if key_id is not None and key_id.own and key_id.value != KEY_ID_CURRENT:
            issues.append(
                Issue(
                    key_id.loc,
                    "key_id does not name a Google Cloud KMS key (these targets are pinned "
                    "to providers: [gcp]; write key_name: NAME instead)",
                )
            )
    else:
        issues += _misplaced_gcp_fields(provider, found)
    return issues


def _misplaced_gcp_fields(provider: Provider, found: Mapping[str, _Found | None]) -> list[Issue]:
    """GCP fields written at the target's own level while it is pinned to another provider."""
    return [
        Issue(
            item.loc,
            f"{field} applies to gcp targets only (these targets are pinned to "
            f"providers: [{provider.value}]; remove it or pin gcp)",
            at_key=True,
        )
        for field in GCP_KEY_FIELDS
        if (item := found[field]) is not None and item.own
    ]


def _gcp_issues(
    found: Mapping[str, _Found | None], *, cluster: str | None, svm: str | None
) -> Iterator[Issue]:
    """GCP fields that pass with sample names (the schema checked those) but fail with
    this target's real cluster or SVM name, e.g. `key_name: "{cluster}-kek"` on `east.01`."""
    for field in GCP_KEY_FIELDS:
        item = found[field]
        if item is None or (field == "key_name" and item.value == KEY_ID_CURRENT):
            continue
        sample = fill_template(item.value, cluster=SAMPLE_NAME, svm=SAMPLE_NAME)
        real = fill_template(item.value, cluster=cluster or SAMPLE_NAME, svm=svm or SAMPLE_NAME)
        if gcp_field_problem(field, sample) is None:
            problem = gcp_field_problem(field, real)
            if problem is not None:
                target = f"{cluster}/{svm}" if svm else f"cluster {cluster}"
                yield Issue(item.loc, f"for {target}: {problem}")


# -- the levels of each target -------------------------------------------------------


def _targets(
    data: Mapping[str, Any],
) -> Iterator[tuple[str | None, str | None, tuple[_Level, ...]]]:
    """(cluster name, SVM name or None, levels) for each cluster and each SVM entry."""
    defaults = _mapping(data.get("defaults"))
    groups = _mapping(data.get("groups"))
    for index, cluster in enumerate(_sequence(data.get("clusters"))):
        if not isinstance(cluster, dict):
            continue
        name = cluster.get("name") if isinstance(cluster.get("name"), str) else None
        chain = (_Level(("clusters", index), cluster), *_group_levels(cluster, groups))
        chain += (_Level(("defaults",), defaults),)
        yield name, None, chain
        for position, entry in enumerate(_sequence(cluster.get("svms"))):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                own = _Level(("clusters", index, "svms", position), entry)
                yield name, entry["name"], (own, *chain)


def _group_levels(cluster: Mapping[Any, Any], groups: Mapping[Any, Any]) -> Iterator[_Level]:
    for group in _sequence(cluster.get("groups")):
        if isinstance(group, str) and isinstance(groups.get(group), dict):
            yield _Level(("groups", group), groups[group])


def _pinned(levels: tuple[_Level, ...]) -> Provider | None:
    """The one provider `providers:` allows at the first level that sets it, else None."""
    for level in levels:
        if "providers" not in level.data:
            continue
        names = _sequence(level.data["providers"])
        known = {p.value for p in Provider}
        if len(set(names)) == 1 and names[0] in known:
            return Provider(names[0])
        return None
    return None


def _first(levels: tuple[_Level, ...], field: str) -> _Found | None:
    for position, level in enumerate(levels):
        value = level.data.get(field)
        if isinstance(value, str):
            return _Found(value, (*level.loc, field), own=position == 0)
    return None


def _mapping(value: object) -> Mapping[Any, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
