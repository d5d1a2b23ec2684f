"""`junit.xml`: a run as test results, so CI dashboards can show a rotation.

Cluster = testsuite, target (SVM) = testcase. `failed`, `exhausted`, `unverified` and
plan's `not_ready` are failures; `skipped`, `aborted` and targets without an outcome are
skipped; `rekeyed` and `ready` pass.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

from orchestrator.core.outcomes import is_failure, is_success


def render_junit(report: dict[str, Any]) -> str:
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


def _sum_into(parent: ET.Element, suites: list[ET.Element]) -> None:
    for attribute in ("tests", "failures", "skipped", "errors"):
        parent.set(attribute, str(sum(int(s.get(attribute, "0")) for s in suites)))
    parent.set("time", _time(sum(float(s.get("time", "0")) for s in suites)))


def _time(seconds: float) -> str:
    return f"{seconds:.3f}"
