"""junit.xml's text is ElementTree's, byte for byte.

`render_junit` writes the text directly; the reference below is the renderer it
replaced (an ElementTree, `ET.indent`, `ET.tostring`), kept here as the oracle: the two
agree on random reports (names and messages with every character either escaper
changes, every outcome, no targets at all) and on the fleets of the report tests. The
message and details texts are not what changed (the XML around them is): the reference
takes them from the module, so what is held to ElementTree is the serialization.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.outcomes import is_failure, is_success
from orchestrator.observe.reports.junit import _details, _message, render_junit

_CHARS = [*"ab-_/ &<>\"'\t\n\r:é", "\x00", "\u2028"]  # every one either escaper changes
_TEXT = st.text(alphabet=st.sampled_from(_CHARS), max_size=12)
_OUTCOMES = st.sampled_from(
    [
        None,
        "rekeyed",
        "unverified",
        "failed",
        "exhausted",
        "skipped",
        "aborted",
        "ready",
        "not_ready",
        "odd",
    ]
)
_ERROR = st.none() | st.fixed_dictionaries(
    {"code": st.none() | _TEXT, "message": _TEXT, "class": st.none() | _TEXT, "hint": _TEXT}
)
_TARGET = st.fixed_dictionaries(
    {
        "cluster": st.sampled_from(["c1", "c&2", 'c"3', "c<4>"]),
        "svm": _TEXT,
        "outcome": _OUTCOMES,
        "reason": st.none() | _TEXT,
        "error": _ERROR,
        "provider": st.none() | st.sampled_from(["aws", "azure"]),
        "operation": st.sampled_from(["external", "internal"]),
        "attempts": st.integers(min_value=0, max_value=5),
        "key_id_before": st.none() | _TEXT,
        "key_id_after": st.none() | _TEXT,
        "job_uuid": st.none() | _TEXT,
        "duration_s": st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
        "facts": st.dictionaries(_TEXT, st.none() | _TEXT | st.booleans(), max_size=3),
    }
)
_RUN = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["run", "plan", "emergency"]),
        "run_id": _TEXT,
        "started_at": st.sampled_from(["2026-01-31T12:00:00.250Z", "2026-01-31T12:00:00.250"]),
    }
)


@settings(max_examples=300, deadline=None)
@given(_RUN, st.lists(_TARGET, max_size=12))
def test_render_junit_is_elementtrees_text(
    run: dict[str, Any], targets: list[dict[str, Any]]
) -> None:
    report = {"run": run, "targets": targets}
    assert render_junit(report) == _reference(report)


def test_no_targets_is_an_empty_testsuites() -> None:
    report = {
        "run": {"mode": "run", "run_id": "r1", "started_at": "2026-01-31T12:00:00.250Z"},
        "targets": [],
    }
    assert render_junit(report) == _reference(report)
    assert "<testsuites " in render_junit(report)


# The renderer before it was written as text (junit.py at e3fec0e), unchanged.
def _reference(report: dict[str, Any]) -> str:
    """The JUnit XML text of a `build_report` dict."""
    run = report["run"]
    suites = ET.Element("testsuites", name=f"ontap-rekey {run['mode']} {run['run_id']}")
    by_cluster: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for target in report["targets"]:
        by_cluster[target["cluster"]].append(target)
    for cluster in sorted(by_cluster):
        suites.append(_suite(cluster, by_cluster[cluster], run["started_at"]))
    _sum_into(suites, suites.findall("testsuite"))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _suite(cluster: str, targets: list[dict[str, Any]], timestamp: str) -> ET.Element:
    suite = ET.Element("testsuite", name=cluster, timestamp=timestamp.removesuffix("Z"))
    for target in targets:
        suite.append(_case(target))
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    suite.set("errors", "0")
    suite.set("time", _time(sum(float(c.get("time", "0")) for c in cases)))
    return suite


def _case(target: dict[str, Any]) -> ET.Element:
    case = ET.Element("testcase", classname=target["cluster"], name=target["svm"])
    case.set("time", _time(target["duration_s"] or 0.0))
    outcome = target["outcome"]
    if is_failure(outcome):
        failure = ET.SubElement(case, "failure", type=outcome, message=_message(target))
        failure.text = _details(target)
    elif not is_success(outcome):
        ET.SubElement(case, "skipped", message=_message(target))
    return case


def _sum_into(parent: ET.Element, suites: list[ET.Element]) -> None:
    for attribute in ("tests", "failures", "skipped", "errors"):
        parent.set(attribute, str(sum(int(s.get(attribute, "0")) for s in suites)))
    parent.set("time", _time(sum(float(s.get("time", "0")) for s in suites)))


def _time(seconds: float) -> str:
    return f"{seconds:.3f}"
