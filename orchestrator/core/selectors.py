"""Selectors (`--cluster`, `--svm`, `--tag`, `--targets @FILE`, the exclusions) as pure
functions.

OR within one kind, AND across kinds; an exclusion (`--exclude-cluster`, `--exclude-svm`,
a `!cluster/svm` line) always wins over a selector. With `svms: all` the SVM names are only
known after discovery, so selection happens in two steps: `cluster_may_match` before
discovery (which clusters to contact at all) and `target_matches` after it (which
configurations to rekey).

No false green: `selection_problems` (offline, against the inventory) and
`discovery_problems` (after discovery, against what the clusters hold) name every selector
that matches nothing, so a typo is a usage error instead of a green run of nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property

from orchestrator.core.inventory import ClusterSpec, Inventory
from orchestrator.core.targets import CLUSTER_SCOPE, TargetKey

WHOLE_CLUSTER = "*"
"""The SVM part of a `--targets` line meaning every target of the cluster (`c1/*`, or
`!c1/*` to leave the cluster out). `failed.txt` writes it for a `svms: all` cluster whose
SVMs could not be discovered; ONTAP SVM names never contain `*`."""

_SHOWN_NAMES = 8  # names quoted in a "matches nothing" hint


@dataclass(frozen=True)
class Selection:
    clusters: tuple[str, ...] = ()  # globs on cluster names
    svms: tuple[str, ...] = ()  # globs on SVM names (`-` is the cluster scope)
    tags: tuple[str, ...] = ()  # exact tags (cluster tags and its groups' tags)
    targets: frozenset[TargetKey] | None = None  # the `cluster/svm` lines of `--targets @FILE`
    exclude_clusters: tuple[str, ...] = ()  # `--exclude-cluster GLOB`
    exclude_svms: tuple[str, ...] = ()  # `--exclude-svm GLOB`
    excluded_targets: frozenset[TargetKey] = field(default_factory=frozenset)  # `!c/svm` lines
    targets_file: str | None = None  # the `--targets` file's name, for messages

    @property
    def is_empty(self) -> bool:
        """True when no selector picks targets (exclusions alone still mean "everything")."""
        return not (self.clusters or self.svms or self.tags) and self.targets is None

    def as_record(self) -> dict[str, list[str]]:
        """The selectors as the ledger and the report keep them (exclusions when given)."""
        record = {
            "cluster": list(self.clusters),
            "svm": list(self.svms),
            "tag": list(self.tags),
            "targets": sorted(str(k) for k in self.targets or ()),
        }
        exclusions = {
            "exclude_cluster": list(self.exclude_clusters),
            "exclude_svm": list(self.exclude_svms),
            "exclude_targets": sorted(str(k) for k in self.excluded_targets),
        }
        return record | {key: value for key, value in exclusions.items() if value}

    @classmethod
    def of_clusters(cls, record: Mapping[str, Sequence[str]]) -> Selection:
        """The selection `as_record` kept, when it selects by clusters and tags alone (with
        `--exclude-svm`): what `resume` needs to discover the clusters an overlapped run
        (`core.options.overlaps_discovery`) left without rows. ValueError otherwise."""
        by_target = ("svm", "targets", "exclude_targets")
        if any(record.get(key) for key in by_target):
            raise ValueError("the run selected SVMs or targets: its rows are its targets")
        return cls(
            clusters=tuple(record.get("cluster", ())),
            tags=tuple(record.get("tag", ())),
            exclude_clusters=tuple(record.get("exclude_cluster", ())),
            exclude_svms=tuple(record.get("exclude_svm", ())),
        )

    @property
    def by_clusters(self) -> bool:
        """True when no selector names SVMs or targets (`--exclude-svm` aside): which
        targets it selects is known from each cluster's own discovery."""
        return not self.svms and self.targets is None and not self.excluded_targets

    @cached_property
    def _target_clusters(self) -> frozenset[str]:
        return frozenset(key.cluster for key in self.targets or ())


@dataclass(frozen=True)
class TargetsFile:
    """A parsed `--targets` file."""

    selected: frozenset[TargetKey] | None  # None: only `!` lines (everything but those)
    excluded: frozenset[TargetKey]


def glob_match(name: str, glob: str) -> bool:
    """The one glob rule of selectors, exclusions, history and their checks: shell-style
    (`*`, `?`, `[...]`), case-sensitive (ONTAP names are)."""
    return fnmatchcase(name, glob)


def matches_any(globs: Iterable[str], name: str) -> bool:
    """Whether some glob matches `name` (none given: no)."""
    return any(glob_match(name, glob) for glob in globs)


def passes(globs: tuple[str, ...], name: str) -> bool:
    """Whether a selector's globs let `name` through (none given: everything passes)."""
    return not globs or matches_any(globs, name)


def inventory_targets(spec: ClusterSpec, found: Iterable[str] | None = ()) -> list[str]:
    """The SVM part of the targets the inventory names on one cluster, in inventory order.

    The one rule for validate, history and discovery: the explicit SVM entries; for a
    `svms: all` cluster also the `found` SVMs it does not list (None: they could not be
    listed, then `*`, `WHOLE_CLUSTER`); `-` with `include_cluster_scope`.
    """
    names = [entry.name for entry in spec.svms]
    if spec.all_svms:
        explicit = set(names)
        if found is None:
            names.append(WHOLE_CLUSTER)
        else:
            names += [n for n in dict.fromkeys(found) if n not in explicit and n != CLUSTER_SCOPE]
    if spec.include_cluster_scope:
        names.append(CLUSTER_SCOPE)
    return names


def listed(keys: Collection[TargetKey], cluster: str, svm: str) -> bool:
    """Whether `cluster/svm` is one of `keys`, or `cluster/*` is."""
    return TargetKey(cluster, svm) in keys or TargetKey(cluster, WHOLE_CLUSTER) in keys


def cluster_excluded(selection: Selection, name: str) -> bool:
    """Whether an exclusion leaves the whole cluster out."""
    excluded_whole = TargetKey(name, WHOLE_CLUSTER) in selection.excluded_targets
    return excluded_whole or matches_any(selection.exclude_clusters, name)


def cluster_may_match(selection: Selection, spec: ClusterSpec) -> bool:
    """Whether any target of this cluster can be selected (decidable before discovery)."""
    if not passes(selection.clusters, spec.name) or cluster_excluded(selection, spec.name):
        return False
    if selection.tags and not set(selection.tags) & set(spec.tags):
        return False
    return selection.targets is None or spec.name in selection._target_clusters


def svm_excluded(selection: Selection, cluster: str, svm: str) -> bool:
    """Whether `--exclude-svm` or a `!` line leaves `cluster/svm` out."""
    return matches_any(selection.exclude_svms, svm) or listed(
        selection.excluded_targets, cluster, svm
    )


def target_matches(selection: Selection, spec: ClusterSpec, svm: str) -> bool:
    """Whether the target `spec.name/svm` is selected (after discovery)."""
    return cluster_may_match(selection, spec) and _svm_matches(selection, spec.name, svm)


def _svm_matches(selection: Selection, cluster: str, svm: str) -> bool:
    """The SVM part of `target_matches`, for a cluster already known to match."""
    if not passes(selection.svms, svm) or svm_excluded(selection, cluster, svm):
        return False
    return selection.targets is None or listed(selection.targets, cluster, svm)


def read_targets_file(text: str) -> TargetsFile:
    """Parse a `--targets` file: `cluster/svm` lines select, `!cluster/svm` lines exclude,
    `#` comments and blanks are ignored; `cluster/*` is every target of the cluster.

    Raises ValueError naming the first bad line (1-based).
    """
    selected: set[TargetKey] = set()
    excluded: set[TargetKey] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        negated = line.startswith("!")
        try:
            key = TargetKey.parse(line.removeprefix("!"))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        (excluded if negated else selected).add(key)
    only_exclusions = bool(excluded) and not selected
    return TargetsFile(None if only_exclusions else frozenset(selected), frozenset(excluded))


def parse_targets_file(text: str) -> frozenset[TargetKey]:
    """The selecting (`cluster/svm`, not `!`) lines of a `--targets` file."""
    return read_targets_file(text).selected or frozenset()


def known_targets(selection: Selection, inventory: Inventory) -> tuple[TargetKey, ...]:
    """The selected targets the inventory names itself, in inventory order.

    Explicit SVM entries and, with `include_cluster_scope`, the cluster scope (`cluster/-`);
    targets of `svms: all` clusters are known only after discovery (`clusters_to_discover`).
    """
    keys: list[TargetKey] = []
    for spec in inventory.clusters:
        if cluster_may_match(selection, spec):
            keys += [
                TargetKey(spec.name, svm)
                for svm in inventory_targets(spec)
                if _svm_matches(selection, spec.name, svm)
            ]
    return tuple(keys)


def _selects_something(selection: Selection, inventory: Inventory) -> bool:
    """Whether any target is selected (stops at the first), before discovery."""
    for spec in inventory.clusters:
        if cluster_may_match(selection, spec) and (
            spec.all_svms
            or any(_svm_matches(selection, spec.name, n) for n in inventory_targets(spec))
        ):
            return True
    return False


def clusters_to_discover(selection: Selection, inventory: Inventory) -> tuple[ClusterSpec, ...]:
    """The `svms: all` clusters that may hold selected targets (settled after discovery)."""
    return tuple(
        spec for spec in inventory.clusters if spec.all_svms and cluster_may_match(selection, spec)
    )


# -- no false green ----------------------------------------------------------------------


def describe(selection: Selection) -> str:
    """The selectors as the user typed them: `--cluster 'c01*' --svm smv01`."""
    parts = [f"--cluster {g}" for g in selection.clusters]
    parts += [f"--svm {g}" for g in selection.svms]
    parts += [f"--tag {t}" for t in selection.tags]
    parts += [f"--exclude-cluster {g}" for g in selection.exclude_clusters]
    parts += [f"--exclude-svm {g}" for g in selection.exclude_svms]
    if selection.targets is not None or selection.excluded_targets:
        parts.append(f"--targets @{selection.targets_file or 'FILE'}")
    return " ".join(parts) or "(no selector: the whole inventory)"


def selection_problems(selection: Selection, inventory: Inventory) -> list[str]:
    """One line per selector that matches nothing in the inventory; offline.

    `--svm`/`--exclude-svm` globs and `--targets` lines that fall on `svms: all` clusters
    cannot be checked before discovery: `discovery_problems` checks them after it. When
    every selector matches something but together they select no target, one line says so.
    """
    problems = [
        *_cluster_glob_problems("--cluster", selection.clusters, inventory),
        *_cluster_glob_problems("--exclude-cluster", selection.exclude_clusters, inventory),
        *_tag_problems(selection.tags, inventory),
        *_targets_line_problems(selection, inventory),
        *_svm_glob_problems(selection, inventory),
    ]
    if not problems and not _selects_something(selection, inventory):
        problems.append(f"the selection matches no target of the inventory: {describe(selection)}")
    return problems


def _names(names: Iterable[str]) -> str:
    shown = sorted(set(names))
    more = f", ... ({len(shown)} in all)" if len(shown) > _SHOWN_NAMES else ""
    return ", ".join(shown[:_SHOWN_NAMES]) + more if shown else "none"


def _cluster_glob_problems(option: str, globs: tuple[str, ...], inventory: Inventory) -> list[str]:
    names = [spec.name for spec in inventory.clusters]
    return [
        f"{option} {glob!r} matches no cluster of the inventory (clusters: {_names(names)})"
        for glob in globs
        if not any(glob_match(name, glob) for name in names)
    ]


def _tag_problems(tags: tuple[str, ...], inventory: Inventory) -> list[str]:
    known = {tag for spec in inventory.clusters for tag in spec.tags}
    return [
        f"--tag {tag!r} matches no cluster of the inventory (tags: {_names(known)})"
        for tag in tags
        if tag not in known
    ]


def _targets_line_problems(selection: Selection, inventory: Inventory) -> list[str]:
    named = {spec.name: (spec, frozenset(inventory_targets(spec))) for spec in inventory.clusters}
    where = f"--targets @{selection.targets_file or 'FILE'}"
    problems: list[tuple[str, TargetKey, str]] = []
    for bang, keys in (("", selection.targets or ()), ("!", selection.excluded_targets)):
        for key in keys:
            problem = _line_problem(key, named)
            if problem is not None:
                problems.append((bang, key, f"{where}: {bang}{key} {problem}"))
    return [line for *_, line in sorted(problems)]  # sorted once: files can be 100k lines


def _line_problem(
    key: TargetKey, named: Mapping[str, tuple[ClusterSpec, frozenset[str]]]
) -> str | None:
    if key.cluster not in named:
        return (
            f"names cluster {key.cluster!r}, which the inventory lacks (clusters: {_names(named)})"
        )
    spec, svms = named[key.cluster]
    if _may_hold(spec, svms, key.svm):
        return None
    return f"is not a target of the inventory ({spec.name} has {_names(svms)})"


def _may_hold(spec: ClusterSpec, named: frozenset[str], svm: str) -> bool:
    """Whether `spec` can have the target `svm` (any SVM name with `svms: all`)."""
    if svm == WHOLE_CLUSTER or svm in named:
        return True
    return spec.all_svms and svm != CLUSTER_SCOPE


def _svm_glob_problems(selection: Selection, inventory: Inventory) -> list[str]:
    candidates = [spec for spec in inventory.clusters if cluster_may_match(selection, spec)]
    if any(spec.all_svms for spec in candidates):
        return []  # names known after discovery: `discovery_problems` checks them
    names = {svm for spec in candidates for svm in inventory_targets(spec)}
    return [
        f"{option} {glob!r} matches no SVM of the selected clusters (SVMs: {_names(names)})"
        for option, globs in (("--svm", selection.svms), ("--exclude-svm", selection.exclude_svms))
        for glob in globs
        if not any(glob_match(name, glob) for name in names)
    ]


def discovery_problems(
    selection: Selection, found: Mapping[str, Collection[str]], undiscovered: Collection[str]
) -> list[str]:
    """After discovery: one line per selector that matched nothing the clusters hold.

    `found` maps each contacted cluster to the SVM names of its selected targets;
    `undiscovered` names the `svms: all` clusters whose SVMs could not be listed (their
    names are unknown, so a selector that may fall on them is given the benefit of the
    doubt). No target at all is always a problem.
    """
    if not any(found.values()):
        return [f"the selection matches no target on the clusters: {describe(selection)}"]
    names = {svm for svms in found.values() for svm in svms}
    problems = [
        f"--svm {glob!r} matches no SVM found on the selected clusters"
        for glob in selection.svms
        if not undiscovered and not any(glob_match(name, glob) for name in names)
    ]
    missing = []
    for key in selection.targets or ():
        svms = found.get(key.cluster)
        if svms is None or key.cluster in undiscovered or key.svm == WHOLE_CLUSTER:
            continue  # left out by a cluster selector, or unknown yet
        if key.svm not in svms and _svm_matches(selection, key.cluster, key.svm):
            missing.append(key)
    where = f"--targets @{selection.targets_file or 'FILE'}"
    problems += [
        f"{where}: {key} is not a target on cluster {key.cluster}" for key in sorted(missing)
    ]
    return problems
