"""Safe-load YAML and remember where every key and value was written.

PyYAML's `SafeLoader` composes a node tree (with line/column marks) before it builds
Python objects. We keep both: the data for validation, and a map from each node's path
(`("clusters", 0, "auth", "password")`) to the 1-based line/column of its key and value, so
that every error can point at the exact spot. Duplicate mapping keys, which PyYAML
silently resolves to the last one, are collected here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

Loc = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_DEPTH = 16
MAX_NODES = 100_000  # aliases can multiply a small file into a huge tree ("billion laughs")


@dataclass(frozen=True, order=True)
class Mark:
    """A 1-based position in the file."""

    line: int
    column: int


@dataclass(frozen=True)
class NodeMarks:
    """Where a node was written: its key (for mapping values) and its value."""

    key: Mark | None
    value: Mark
    composite: bool = False  # a mapping or a list: its key is the clearer place to point


@dataclass(frozen=True)
class ParsedYaml:
    data: object
    marks: dict[Loc, NodeMarks]
    duplicate_keys: tuple[tuple[Loc, Mark, Mark], ...]  # (path, first key, repeated key)


class YamlSyntaxError(Exception):
    """The text is not (safe) YAML; `mark` is where the parser gave up."""

    def __init__(self, problem: str, mark: Mark) -> None:
        self.problem = problem
        self.mark = mark
        super().__init__(f"{mark.line}:{mark.column}: {problem}")


def parse_yaml(text: str) -> ParsedYaml:
    """Safe-load one YAML document with the marks of every node.

    Raises YamlSyntaxError for invalid YAML, several documents or unsafe tags.

    libyaml's parser (`CSafeLoader`, when PyYAML was built with it) composes the nodes
    ~8x faster than PyYAML's own (250 clusters: ~60 ms of a run's start-up; 2,500: ~0.6 s);
    the constructor and the resolver stay PyYAML's, so the data and the marks are the
    same (tests/test_yaml_marks.py holds both parsers equal). Anything it does not accept
    is parsed again by PyYAML's own parser, whose verdict and messages are the ones users
    have always seen. So is a text where the two parsers are known to part ways (libyaml
    takes tabs in plain scalars, `|#` and `>#`, an empty `!` tag, a byte order mark inside
    the text; it may mark an empty value, key or document elsewhere): any tab, `!`, `?`,
    `|`, `>` or U+FEFF, or a character PyYAML's reader refuses, goes to PyYAML's parser
    directly, and so does a document with an empty scalar (`key:` and nothing after it).
    """
    if _C_LOADER is not None and _NOT_FOR_LIBYAML.search(text) is None:
        try:
            return _parse_with(_C_LOADER, text)
        except (yaml.YAMLError, YamlSyntaxError, _MarkedElsewhere):
            pass  # worded below, by the parser the messages were written against
    return _parse_python(text)


_C_LOADER: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
_NOT_FOR_LIBYAML = re.compile(
    "[\t!?|>\ufeff]|" + yaml.reader.Reader.NON_PRINTABLE.pattern  # see parse_yaml
)


class _MarkedElsewhere(Exception):
    """The document holds an empty scalar: libyaml may mark it elsewhere than PyYAML."""


def _parse_with(loader_class: type[yaml.CSafeLoader], text: str) -> ParsedYaml:
    """libyaml's parse; raises what it raises, or `_MarkedElsewhere` (the caller then asks
    PyYAML's parser)."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is not None and _has_empty_scalar(node):
            raise _MarkedElsewhere
        return _from_node(loader, node)
    finally:
        loader.dispose()


def _has_empty_scalar(root: yaml.Node) -> bool:
    """Whether some scalar of the tree is empty in the text (an implicit null: `key:`)."""
    pending, seen = [root], set()
    while pending:
        node = pending.pop()
        if id(node) in seen:  # an alias: its node is walked once
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.start_mark.index == node.end_mark.index:
                return True
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            pending.extend(item for pair in node.value for item in pair)
    return False


def _document(loader: yaml.SafeLoader) -> ParsedYaml:
    return _from_node(loader, loader.get_single_node())


def _from_node(loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.Node | None) -> ParsedYaml:
    if node is None:
        return ParsedYaml(None, {}, ())
    duplicates = tuple(_duplicate_keys(node, (), set()))
    data = loader.construct_document(node)  # flattens `<<` merges into the nodes
    return ParsedYaml(data, _all_marks(node), duplicates)


def _parse_python(text: str) -> ParsedYaml:
    """PyYAML's own parser (pure Python): the reference, and every error's wording."""
    try:
        # The reader checks for unprintable characters (e.g. NUL) in its constructor.
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", 0)
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        raise YamlSyntaxError(" ".join(str(exc).split()), Mark(line, column)) from None
    try:
        return _document(loader)
    except yaml.MarkedYAMLError as exc:
        raise YamlSyntaxError(_problem(exc), _mark_of(exc)) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), Mark(1, 1)) from None
    finally:
        loader.dispose()


def _problem(exc: yaml.MarkedYAMLError) -> str:
    parts = [exc.context, exc.problem]
    return "; ".join(p for p in parts if p) or "invalid YAML"


def _mark_of(exc: yaml.MarkedYAMLError) -> Mark:
    mark = exc.problem_mark or exc.context_mark
    return _to_mark(mark) if mark is not None else Mark(1, 1)


def _to_mark(mark: yaml.Mark) -> Mark:
    return Mark(mark.line + 1, mark.column + 1)


def _key_text(key: yaml.Node) -> str | None:
    return key.value if isinstance(key, yaml.ScalarNode) else None


def _all_marks(node: yaml.Node) -> dict[Loc, NodeMarks]:
    marks: dict[Loc, NodeMarks] = {}
    for loc, found in _marks(node, (), None):
        marks[loc] = found
        if len(marks) > MAX_NODES:
            raise YamlSyntaxError(f"more than {MAX_NODES} nodes (too many aliases?)", Mark(1, 1))
    return marks


def _marks(node: yaml.Node, loc: Loc, key: Mark | None) -> Iterator[tuple[Loc, NodeMarks]]:
    composite = isinstance(node, yaml.MappingNode | yaml.SequenceNode)
    yield loc, NodeMarks(key, _to_mark(node.start_mark), composite)
    if len(loc) >= MAX_DEPTH:  # aliases can make a tree recursive; no inventory is this deep
        return
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _marks(item, (*loc, index), None)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            text = _key_text(key_node)
            if text is not None:
                yield from _marks(value, (*loc, text), _to_mark(key_node.start_mark))


def _duplicate_keys(
    node: yaml.Node, loc: Loc, visited: set[int]
) -> Iterator[tuple[Loc, Mark, Mark]]:
    # Each node once: an aliased mapping's duplicates are reported where it is defined.
    if id(node) in visited or len(loc) >= MAX_DEPTH:
        return
    visited.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index), visited)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, Mark] = {}
        for key_node, value in node.value:
            text = _key_text(key_node)
            if text is None or key_node.tag == _MERGE_TAG:
                continue
            mark = _to_mark(key_node.start_mark)
            if text in seen:
                yield (*loc, text), seen[text], mark
            seen.setdefault(text, mark)
            yield from _duplicate_keys(value, (*loc, text), visited)
