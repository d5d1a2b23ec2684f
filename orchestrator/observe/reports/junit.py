"""`junit.xml`: a run as test results, so CI dashboards can show a rotation.

Cluster = testsuite, target (SVM) = testcase. `failed`, `exhausted`, `unverified` and
plan's `not_ready` are failures; `skipped`, `aborted` and targets without an outcome are
skipped; `rekeyed` and `ready` pass.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any, NamedTuple

from orchestrator.core.outcomes import is_failure, is_success

# The text is what ElementTree made of the same tree (`ET.indent`, then `ET.tostring` with
# the declaration), byte for byte, written directly: the tree of 100,000 cases and its
# serializer were ~1 s at 100,000 targets. The escaping is ElementTree's own (its two
# private helpers, as its serializer calls them), and `tests/test_report_junit.py` holds
# the text to ElementTree's on random reports, should either change.
_escape_attrib = ET._escape_attrib  # type: ignore[attr-defined]
_escape_cdata = ET._escape_cdata  # type: ignore[attr-defined]
_DECLARATION = ET.tostring(ET.Element("x"), encoding="unicode", xml_declaration=True).split("\n")[0]


def render_junit(report: dict[str, Any]) -> str:
    """The JUnit XML text of a `build_report` dict."""
    run = report["run"]
    by_cluster: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for target in report["targets"]:
        by_cluster[target["cluster"]].append(target)
    name = _escape_attrib(f"ontap-rekey {run['mode']} {run['run_id']}")
    timestamp = _escape_attrib(run["started_at"].removesuffix("Z"))
    suites = [_suite(cluster, by_cluster[cluster], timestamp) for cluster in sorted(by_cluster)]
    tests = sum(suite.tests for suite in suites)
    failures = sum(suite.failures for suite in suites)
    skipped = sum(suite.skipped for suite in suites)
    seconds = sum(float(suite.time) for suite in suites)  # as summed from the attributes
    totals = _counts(tests, failures, skipped, _time(seconds))
    if not suites:
        return f'{_DECLARATION}\n<testsuites name="{name}"{totals} />\n'
    body = "".join(suite.text for suite in suites)
    return f'{_DECLARATION}\n<testsuites name="{name}"{totals}>\n{body}</testsuites>\n'


class _Suite(NamedTuple):
    """A testsuite's counts, its time attribute and its text (its tail included)."""

    tests: int
    failures: int
    skipped: int
    time: str
    text: str


def _suite(cluster: str, targets: list[dict[str, Any]], timestamp: str) -> _Suite:
    failures = skipped = 0
    seconds = 0.0
    cases: list[str] = []
    for target in targets:
        time = _time(target["duration_s"] or 0.0)
        seconds += float(time)  # as ElementTree's attribute was read back and summed
        failed, passed = is_failure(target["outcome"]), is_success(target["outcome"])
        failures += failed
        skipped += not failed and not passed
        cases.append(_case(target, time, failed, passed))
    time = _time(seconds)
    attributes = _counts(len(targets), failures, skipped, time)
    text = (
        f'  <testsuite name="{_escape_attrib(cluster)}" timestamp="{timestamp}"{attributes}>\n'
        + "".join(cases)
        + "  </testsuite>\n"
    )
    return _Suite(len(targets), failures, skipped, time, text)


def _counts(tests: int, failures: int, skipped: int, time: str) -> str:
    return f' tests="{tests}" failures="{failures}" skipped="{skipped}" errors="0" time="{time}"'


def _case(target: dict[str, Any], time: str, failed: bool, passed: bool) -> str:
    opening = (
        f'    <testcase classname="{_escape_attrib(target["cluster"])}" '
        f'name="{_escape_attrib(target["svm"])}" time="{time}"'
    )
    if passed and not failed:
        return opening + " />\n"
    message = _escape_attrib(_message(target))
    if failed:
        inner = (
            f'<failure type="{_escape_attrib(target["outcome"])}" message="{message}">'
            f"{_escape_cdata(_details(target))}</failure>"
        )
    else:
        inner = f'<skipped message="{message}" />'
    return f"{opening}>\n      {inner}\n    </testcase>\n"


def _message(target: dict[str, Any]) -> str:
    error = target["error"] or {}
    parts = [
        target["outcome"] or "pending",
        target["reason"],
        error.get("code"),
        error.get("message"),
    ]
    return ": ".join(str(part) for part in parts if part)


def _details(target: dict[str, Any]) -> str:
    error = target["error"] or {}
    lines = [
        f"provider: {target['provider']} (rekey-{target['operation']})",
        f"attempts: {target['attempts']}",
        f"key id before: {target['key_id_before']}",
        f"key id after: {target['key_id_after']}",
        f"job: {target['job_uuid']}",
    ]
    if error.get("hint"):
        lines.append(f"hint: {error['hint']}")
    if target["facts"]:
        lines.append(f"facts: {target['facts']}")
    return "\n".join(lines)


def _time(seconds: float) -> str:
    return f"{seconds:.3f}"
