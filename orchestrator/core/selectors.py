"""Selectors (`--cluster`, `--svm`, `--tag`, `--targets @FILE`) as pure functions.

OR within one kind, AND across kinds. With `svms: all` the SVM names are only known after
discovery, so selection happens in two steps: `cluster_may_match` before discovery (which
clusters to contact at all) and `target_matches` after it (which configurations to rekey).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from orchestrator.core.inventory import ClusterSpec, Inventory
from orchestrator.core.targets import CLUSTER_SCOPE, TargetKey


@dataclass(frozen=True)
class Selection:
    clusters: tuple[str, ...] = ()  # globs on cluster names
    svms: tuple[str, ...] = ()  # globs on SVM names (`-` is the cluster scope)
    tags: tuple[str, ...] = ()  # exact tags (cluster tags and its groups' tags)
    targets: frozenset[TargetKey] | None = None  # from `--targets @FILE`

    @property
    def is_empty(self) -> bool:
        """True when nothing narrows the selection (the whole inventory)."""
        return not (self.clusters or self.svms or self.tags) and self.targets is None


def _any_glob(globs: tuple[str, ...], name: str) -> bool:
    return not globs or any(fnmatchcase(name, glob) for glob in globs)


def cluster_may_match(selection: Selection, spec: ClusterSpec) -> bool:
    """Whether any target of this cluster can be selected (decidable before discovery)."""
    if not _any_glob(selection.clusters, spec.name):
        return False
    if selection.tags and not set(selection.tags) & set(spec.tags):
        return False
    if selection.targets is not None:
        return any(key.cluster == spec.name for key in selection.targets)
    return True


def target_matches(selection: Selection, spec: ClusterSpec, svm: str) -> bool:
    """Whether the target `spec.name/svm` is selected (after discovery)."""
    if not cluster_may_match(selection, spec) or not _any_glob(selection.svms, svm):
        return False
    return selection.targets is None or TargetKey(spec.name, svm) in selection.targets


def parse_targets_file(text: str) -> frozenset[TargetKey]:
    """Parse a `--targets` file: one `cluster/svm` a line, `#` comments and blanks ignored.

    Raises ValueError naming the first bad line (1-based).
    """
    keys: set[TargetKey] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            keys.add(TargetKey.parse(line))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return frozenset(keys)


def known_targets(selection: Selection, inventory: Inventory) -> tuple[TargetKey, ...]:
    """The selected targets the inventory names itself, in inventory order.

    Explicit SVM entries and, with `include_cluster_scope`, the cluster scope (`cluster/-`);
    targets of `svms: all` clusters are known only after discovery (`clusters_to_discover`).
    """
    keys: list[TargetKey] = []
    for spec in inventory.clusters:
        names = [entry.name for entry in spec.svms]
        names += [CLUSTER_SCOPE] if spec.include_cluster_scope else []
        keys += [TargetKey(spec.name, n) for n in names if target_matches(selection, spec, n)]
    return tuple(keys)


def clusters_to_discover(selection: Selection, inventory: Inventory) -> tuple[ClusterSpec, ...]:
    """The `svms: all` clusters that may hold selected targets (settled after discovery)."""
    return tuple(
        spec for spec in inventory.clusters if spec.all_svms and cluster_may_match(selection, spec)
    )
