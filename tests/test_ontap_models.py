"""ONTAP records parsed by strict pydantic models (issue 14): a malformed answer raises
`MalformedRecord` (a ValueError) with one line naming the field, the messages the
hand-written parsers gave; ONTAP's extra fields are ignored."""

from __future__ import annotations

import re
from typing import Any

import pytest

from orchestrator.core.providers import Provider
from orchestrator.ontap.models import (
    ClusterInfo,
    Job,
    KeyManagerConfig,
    KeyStore,
    MalformedRecord,
    RekeySubmission,
)

CLUSTER = {"name": "c1", "uuid": "u1", "version": {"generation": 9, "major": 14, "minor": 1}}
JOB = {"uuid": "j1", "state": "running", "code": 0, "message": "Rekeying", "_links": {}}
STORE = {"uuid": "k1", "type": "aws", "svm": {"name": "s1"}, "state": "active"}
NODE = {"node": {"name": "n1"}, "reachable": True}
AWS = {
    "uuid": "c1",
    "scope": "svm",
    "svm": {"name": "s1"},
    "key_id": "k",
    "ekmip_reachability": [NODE],
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return base | changes


@pytest.mark.parametrize(
    ("parse", "data", "message"),
    [
        (ClusterInfo.from_json, ["a list"], "cluster: expected a JSON object, got list"),
        (
            ClusterInfo.from_json,
            _with(CLUSTER, version=None),
            "cluster.version: expected a JSON object, got NoneType",
        ),
        (
            ClusterInfo.from_json,
            {k: v for k, v in CLUSTER.items() if k != "version"},
            "cluster.version: expected a JSON object, got NoneType",
        ),
        (ClusterInfo.from_json, _with(CLUSTER, name=""), "missing or invalid string field 'name'"),
        (
            ClusterInfo.from_json,
            _with(CLUSTER, version={"generation": 9, "major": True, "minor": 1}),
            "missing or invalid integer field 'major'",
        ),
        (
            ClusterInfo.from_json,
            _with(CLUSTER, version={"generation": 9, "major": 14, "minor": 1, "full": 9}),
            "field 'full': expected a string, got int",
        ),
        (Job.from_json, _with(JOB, code=True), "not an ONTAP code: True"),
        (Job.from_json, _with(JOB, code="12x"), "not an ONTAP code: '12x'"),
        (Job.from_json, _with(JOB, state=None), "missing or invalid string field 'state'"),
        (Job.from_json, _with(JOB, error="boom"), "error: expected a JSON object, got str"),
        (Job.from_json, _with(JOB, start_time=5), "field 'start_time': expected a string, got int"),
        (
            Job.from_json,
            _with(JOB, start_time="yesterday"),
            "Invalid isoformat string: 'yesterday'",
        ),
        (
            Job.from_json,
            _with(JOB, svm={"name": ["s"]}),
            "field 'name': expected a string, got list",
        ),
        (
            Job.from_json,
            _with(JOB, message="", error={"message": 3}),
            "field 'message': expected a string, got int",
        ),
        (
            KeyStore.from_json,
            _with(STORE, enabled="yes"),
            "field 'enabled': expected a boolean, got str",
        ),
        (KeyStore.from_json, _with(STORE, svm="s1"), "svm: expected a JSON object, got str"),
        (
            lambda d: KeyManagerConfig.from_json(Provider.AWS, d),
            "x",
            "aws-kms: expected a JSON object, got str",
        ),
        (
            lambda d: KeyManagerConfig.from_json(Provider.AWS, d),
            _with(AWS, key_id=None),
            "missing or invalid string field 'key_id'",
        ),
        (
            lambda d: KeyManagerConfig.from_json(Provider.GCP, d),
            AWS,
            "missing or invalid string field 'key_name'",
        ),
        (
            lambda d: KeyManagerConfig.from_json(Provider.AWS, d),
            _with(AWS, ekmip_reachability={}),
            "ekmip_reachability: expected a list",
        ),
        (
            lambda d: KeyManagerConfig.from_json(Provider.AWS, d),
            _with(AWS, ekmip_reachability=["n1"]),
            "ekmip_reachability: expected a JSON object, got str",
        ),
        (
            lambda d: KeyManagerConfig.from_json(Provider.AWS, d),
            _with(AWS, ekmip_reachability=[{"node": {"name": "n1"}}]),
            "ekmip_reachability: missing 'reachable'",
        ),
        (
            lambda d: KeyManagerConfig.from_json(Provider.AWS, d),
            _with(AWS, ekmip_reachability=[{"node": "n1", "reachable": True}]),
            "ekmip_reachability.node: expected a JSON object, got str",
        ),
        (
            lambda d: KeyManagerConfig.from_json(Provider.AZURE, d),
            _with(AWS, azure_reachability={"reachable": "no"}),
            "field 'reachable': expected a boolean, got str",
        ),
        (
            lambda d: KeyManagerConfig.from_json(Provider.AWS, d),
            _with(AWS, state={"code": 1.5}),
            "not an ONTAP code: 1.5",
        ),
        (lambda d: RekeySubmission.from_json(202, d), {}, "202 Accepted without a job to follow"),
        (
            lambda d: RekeySubmission.from_json(202, d),
            {"job": "j1"},
            "job: expected a JSON object, got str",
        ),
        (
            lambda d: RekeySubmission.from_json(201, d),
            {"job": {"state": "success"}},
            "missing or invalid string field 'uuid'",
        ),
    ],
)
def test_a_malformed_record_names_its_field(parse: Any, data: object, message: str) -> None:
    """One line naming the wrong field (or object), as a ValueError the client maps."""
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse(data)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_records_parse_with_ontap_s_extra_fields_ignored() -> None:
    """Fields the parsers do not read (`_links`, `node`, ...) are ignored; codes are one
    decimal string, 0 none; a job's message falls back to its error's."""
    job = Job.from_json(JOB | {"node": {"name": "n"}, "code": 0})
    assert (job.uuid, job.state, job.code, job.message) == ("j1", "running", None, "Rekeying")
    failed = Job.from_json(
        _with(JOB, state="failure", message="", error={"code": "65537551", "message": "boom"})
    )
    assert (failed.code, failed.message, failed.is_terminal) == ("65537551", "boom", True)
    config = KeyManagerConfig.from_json(
        Provider.AWS, AWS | {"amazon_reachability": {"reachable": False, "message": "down"}}
    )
    assert (config.scope, config.target_svm, config.kms_reachable, config.kms_message) == (
        "svm",
        "s1",
        False,
        "down",
    )
    assert config.unreachable_nodes == () and config.ekmip[0].message == ""
    no_scope = KeyManagerConfig.from_json(Provider.AWS, {"uuid": "c2", "key_id": "k"})
    assert (no_scope.scope, no_scope.target_svm, no_scope.ekmip) == ("cluster", "-", ())
    assert ClusterInfo.from_json(CLUSTER).version_full == "9.14.1"
    store = KeyStore.from_json(STORE | {"svm": {"name": "s1", "uuid": 7}})  # svm.uuid unread
    assert (store.svm_name, store.state) == ("s1", "active")


def test_an_answer_names_its_job_with_or_without_its_state() -> None:
    """202: the uuid only; 201 with the job's state: the job too; 201 empty: finished."""
    link = RekeySubmission.from_json(202, {"job": {"uuid": "j1", "_links": {}}})
    assert (link.job_uuid, link.job, link.finished) == ("j1", None, False)
    full = RekeySubmission.from_json(201, {"job": _with(JOB, state="success")})
    assert full.job is not None and (full.job_uuid, full.finished) == ("j1", True)
    assert RekeySubmission.from_json(201, None).finished


def test_malformed_record_is_a_value_error() -> None:
    """The client catches ValueError: MalformedRecord must stay one."""
    assert issubclass(MalformedRecord, ValueError)
