"""The fast path of `orchestrator/ontap/models.py` (issue 16) parses exactly as the
pydantic wire models do: for every record, usual or not, `from_json` gives the record or
the error `_validated` (the wire model's parse, the code before the fast path) gives.

Records are drawn well formed (optional fields present or absent, fields no parser
reads), then up to two places anywhere in them (the record itself, a field, a nested
field, a list item) replaced by another JSON value or removed (`_near`). Outcomes are
compared by type and repr, so `1` for `True` or a tuple for a list would show."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main
from orchestrator.core.providers import PROVIDERS, Provider
from orchestrator.ontap import models, wire
from orchestrator.ontap.models import ClusterInfo, Job, KeyManagerConfig, KeyStore, RekeySubmission
from orchestrator.simulator.fleet import FleetSpec, KeyManager
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import running_simulator

PROVIDER_NAMES: tuple[KeyManager, ...] = ("aws", "azure", "gcp", "barbican")

ODD_VALUES: list[object] = [None, "", "x", "0", "12", "-3", " 7", "1e3", 0, 1, -5, True, False]
ODD_VALUES += [0.0, 1.5, [], {}, [1], "2026-12-01T10:00:00+00:00", "2026-12-01T10:00:00Z", "noon"]
ODD = st.sampled_from(ODD_VALUES)
"""Values of every JSON type, including the edges of the fields' rules."""

TEXT = st.text(min_size=1, max_size=4)
CODE = st.one_of(st.sampled_from(["0", 0, "65537551", 346758, "", None]), st.integers())
TIME = st.sampled_from(["2026-12-01T10:00:00-04:00", "2026-12-01T10:00:00Z", "", None])
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DELETE = object()


def _record(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """A well-formed JSON object (optional fields present or absent), with a field ONTAP
    may add that no parser reads."""
    extra = {"_links": st.just({"self": {"href": "/x"}}), "num_records": st.integers()}
    return st.fixed_dictionaries(required, optional=optional | extra)


def _paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: itself, each field, each list item, nested."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _mutated(value: Any, path: tuple[Any, ...], new: object) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if not rest and new is DELETE:
        del copy[head]
    else:
        copy[head] = _mutated(copy[head], rest, new)
    return copy


def _near(usual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A well-formed record with up to two places changed: to any other JSON value (the
    types pydantic's strict mode refuses, "" for a required string, a bool for an int, a
    float for a code, a bad time ...) or removed. Each place is drawn from the record's
    own places (a change below one the first change replaced is left out)."""

    def changed(record: Any) -> st.SearchStrategy[Any]:
        change = st.tuples(st.sampled_from(_paths(record)), st.one_of(ODD, st.just(DELETE)))
        return st.lists(change, max_size=2).map(lambda changes: _apply(record, changes))

    return usual.flatmap(changed)


def _apply(record: Any, changes: list[tuple[tuple[Any, ...], object]]) -> Any:
    for path, new in changes:
        if path in _paths(record):
            record = _mutated(record, path, None if new is DELETE and not path else new)
    return record


SVM = _record({}, {"name": TEXT, "uuid": TEXT})
NODE = _record(
    {"node": _record({"name": TEXT}, {"uuid": TEXT}), "reachable": st.booleans()},
    {"code": CODE, "message": st.text(max_size=3)},
)


def _config(provider: Provider) -> st.SearchStrategy[Any]:
    spec = PROVIDERS[provider]
    optional: dict[str, st.SearchStrategy[Any]] = {
        "scope": st.sampled_from(["svm", "cluster", ""]),
        "svm": SVM,
        "state": _record({}, {"cluster_state": st.booleans(), "code": CODE, "message": TEXT}),
        spec.reachability_field: _record(
            {}, {"reachable": st.booleans(), "message": TEXT, "code": CODE}
        ),
        "ekmip_reachability": st.lists(NODE, max_size=3),
        "region": TEXT,
        "project_id": TEXT,
        "key_ring_location": TEXT,
        "key_ring_name": TEXT,
    }
    return _near(_record({"uuid": TEXT, spec.key_field: TEXT}, optional))


VERSION = _record(
    {"generation": st.integers(), "major": st.integers(), "minor": st.integers()},
    {"full": TEXT},
)
CLUSTER = _near(_record({"name": TEXT, "uuid": TEXT, "version": VERSION}, {}))
STORE = _near(
    _record(
        {"uuid": TEXT, "type": st.sampled_from(["aws", "akv", "gcp", "okm"])},
        {
            "svm": SVM,
            "scope": TEXT,
            "enabled": st.booleans(),
            "state": st.sampled_from(["active", "switching"]),
        },
    )
)
JOB_RECORD = _record(
    {"uuid": TEXT, "state": st.sampled_from(["queued", "running", "success", "failure"])},
    {
        "code": CODE,
        "message": st.text(max_size=3),
        "error": _record({}, {"code": CODE, "message": st.text(max_size=3)}),
        "description": TEXT,
        "start_time": TIME,
        "end_time": TIME,
        "svm": SVM,
    },
)
JOB = _near(JOB_RECORD)
ANSWER = st.one_of(
    _near(_record({"job": _record({"uuid": TEXT}, {"_links": st.just({})})}, {})),
    _near(_record({"job": JOB_RECORD}, {})),
    _near(_record({}, {})),
    st.none(),
)


def _outcome(parse: Any, data: object) -> tuple[str, str, str]:
    try:
        result = parse(data)
    except ValueError as exc:
        return ("error", type(exc).__name__, str(exc))
    return ("record", type(result).__name__, repr(result))


@pytest.mark.parametrize("provider", list(Provider))
@SETTINGS
@given(data=st.data())
def test_a_configuration_parses_as_the_wire_model_parses_it(
    provider: Provider, data: st.DataObject
) -> None:
    record = data.draw(_config(provider))
    fast = _outcome(lambda d: KeyManagerConfig.from_json(provider, d), record)
    assert fast == _outcome(lambda d: KeyManagerConfig._validated(provider, d), record)


@SETTINGS
@given(record=CLUSTER)
def test_the_cluster_parses_as_the_wire_model_parses_it(record: object) -> None:
    assert _outcome(ClusterInfo.from_json, record) == _outcome(ClusterInfo._validated, record)


@SETTINGS
@given(record=STORE)
def test_a_key_store_parses_as_the_wire_model_parses_it(record: object) -> None:
    assert _outcome(KeyStore.from_json, record) == _outcome(KeyStore._validated, record)


@SETTINGS
@given(record=JOB)
def test_a_job_parses_as_the_wire_model_parses_it(record: object) -> None:
    assert _outcome(Job.from_json, record) == _outcome(Job._validated, record)


def _answer_as_before(status: int, data: object) -> RekeySubmission:
    """`RekeySubmission.from_json` before the fast path (its job by the wire model too)."""
    record = models.as_mapping({} if data is None else data, "rekey response")
    job_data = record.get("job")
    if isinstance(job_data, Mapping) and "state" in job_data:
        job = Job._validated(job_data)
        return RekeySubmission(status, job, job.uuid)
    answer = wire.parse(wire.AnswerWire, record, "rekey response")
    if answer.job is None:
        if status == 202:
            raise models.MalformedRecord("202 Accepted without a job to follow")
        return RekeySubmission(status, None, None)
    return RekeySubmission(status, None, answer.job.uuid)


@SETTINGS
@given(status=st.sampled_from([200, 201, 202]), record=ANSWER)
def test_a_rekey_answer_parses_as_the_wire_model_parses_it(status: int, record: object) -> None:
    fast = _outcome(lambda d: RekeySubmission.from_json(status, d), record)
    assert fast == _outcome(lambda d: _answer_as_before(status, d), record)


USUAL_NODE = {"node": {"name": "n1", "uuid": "nu1"}, "reachable": True, "code": "0", "message": ""}


@pytest.mark.parametrize(
    ("read", "record"),
    [
        (
            lambda d: KeyManagerConfig._read(Provider.AWS, d),
            {
                "uuid": "c1",
                "scope": "svm",
                "svm": {"name": "s1", "uuid": "su1"},
                "key_id": "arn:aws:kms:us-east-1:1:key/1",
                "region": "us-east-1",
                "state": {"cluster_state": True, "code": "0", "message": ""},
                "amazon_reachability": {"reachable": True, "code": "0", "message": ""},
                "ekmip_reachability": [USUAL_NODE, USUAL_NODE | {"reachable": False}],
            },
        ),
        (
            lambda d: KeyManagerConfig._read(Provider.GCP, d),
            {"uuid": "g1", "key_name": "k", "project_id": "p", "svm": {"name": "s1"}},
        ),
        (
            ClusterInfo._read,
            {"name": "c", "uuid": "u", "version": {"generation": 9, "major": 16, "minor": 1}},
        ),
        (KeyStore._read, {"uuid": "k1", "type": "aws", "svm": {"name": "s1"}, "enabled": True}),
        (
            Job._read,
            {"uuid": "j", "state": "success", "code": 0, "start_time": "2026-12-01T10:00:00Z"},
        ),
        (models._job_link, {"job": {"uuid": "j", "_links": {"self": {"href": "/j"}}}}),
    ],
)
def test_the_usual_answers_take_the_fast_path(read: Any, record: object) -> None:
    """Not vacuous: ONTAP's usual records are read without the wire model (which raises
    `_Unusual` to the caller otherwise)."""
    assert read(record) is not None


def test_a_job_error_keyed_otherwise_than_by_strings_goes_to_the_wire_model() -> None:
    """JSON keys are strings, but the fast path does not rely on it (`dict[str, Any]`)."""
    record = {"uuid": "j", "state": "failure", "error": {1: "x"}}
    assert _outcome(Job.from_json, record) == _outcome(Job._validated, record)
    assert _outcome(Job.from_json, record)[0] == "error"


def _full_config(provider: Provider) -> dict[str, Any]:
    spec = PROVIDERS[provider]
    node = {"node": {"name": "n1", "uuid": "nu1"}, "reachable": True, "code": "0", "message": ""}
    return {
        "uuid": "c1",
        "scope": "svm",
        "svm": {"name": "s1", "uuid": "su1"},
        spec.key_field: "k1",
        "region": "us-east-1",
        "project_id": "p",
        "key_ring_location": "l",
        "key_ring_name": "r",
        "state": {"cluster_state": True, "code": "0", "message": ""},
        spec.reachability_field: {"reachable": False, "code": "346758", "message": "down"},
        "ekmip_reachability": [node, node | {"reachable": False, "code": 65537915}],
    }


FULL_JOB = {
    "uuid": "j1",
    "state": "failure",
    "code": 65537551,
    "message": "",
    "error": {"code": "65537551", "message": "boom"},
    "description": "POST /api/security/aws-kms/c1/rekey-external",
    "start_time": "2026-12-01T10:00:00-04:00",
    "end_time": "2026-12-01T10:00:03Z",
    "svm": {"name": "s1", "uuid": "su1"},
}
EVERY_RECORD: list[tuple[str, Any, Any, dict[str, Any]]] = [
    *(
        (
            f"config-{p.value}",
            lambda d, p=p: KeyManagerConfig.from_json(p, d),
            lambda d, p=p: KeyManagerConfig._validated(p, d),
            _full_config(p),
        )
        for p in Provider
    ),
    (
        "cluster",
        ClusterInfo.from_json,
        ClusterInfo._validated,
        {"name": "c", "uuid": "u", "version": {"generation": 9, "major": 16, "minor": 1}}
        | {"_links": {}, "version": {"generation": 9, "major": 16, "minor": 1, "full": "9.16.1"}},
    ),
    (
        "key-store",
        KeyStore.from_json,
        KeyStore._validated,
        {"uuid": "k1", "type": "aws", "svm": {"name": "s1"}, "scope": "svm", "enabled": True}
        | {"state": "active"},
    ),
    ("job", Job.from_json, Job._validated, FULL_JOB),
    (
        "answer-202",
        lambda d: RekeySubmission.from_json(202, d),
        lambda d: _answer_as_before(202, d),
        {"job": {"uuid": "j1", "_links": {"self": {"href": "/api/cluster/jobs/j1"}}}},
    ),
    (
        "answer-201",
        lambda d: RekeySubmission.from_json(201, d),
        lambda d: _answer_as_before(201, d),
        {"job": FULL_JOB | {"state": "success", "code": 0, "error": None}},
    ),
]


@pytest.mark.parametrize(
    ("parse", "before", "record"),
    [(parse, before, record) for _, parse, before, record in EVERY_RECORD],
    ids=[name for name, *_ in EVERY_RECORD],
)
def test_every_single_change_of_a_full_record_parses_as_before(
    parse: Any, before: Any, record: dict[str, Any]
) -> None:
    """Each place of a record with every field (`_paths`), changed to each odd value or
    removed, one at a time: the same record or the same error as the wire model."""
    for path in _paths(record):
        for new in [*ODD_VALUES, DELETE]:
            changed = _mutated(record, path, None if new is DELETE and not path else new)
            assert _outcome(parse, changed) == _outcome(before, changed), (path, new)


@pytest.mark.slow
def test_a_whole_run_against_the_simulator_never_needs_the_wire_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer of a run (the cluster, each provider's configurations, the key
    stores, the POST answers, the jobs, the read-back) is read by the fast path: with the
    wire-model parses made to fail, the run still rekeys every target once."""
    used: list[str] = []

    def refuse(name: str) -> Any:
        def validated(cls: type, *args: object) -> Any:
            used.append(name)
            raise AssertionError(f"{name}: the wire model was needed")

        return classmethod(validated)

    for record in (ClusterInfo, KeyManagerConfig, KeyStore, Job):
        monkeypatch.setattr(record, "_validated", refuse(record.__name__))

    def no_parse(*args: object, **kwargs: object) -> Any:
        used.append("parse")
        raise AssertionError("parse: the wire model was needed")

    monkeypatch.setattr(wire, "parse", no_parse)
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)
    spec = FleetSpec.generate(2, 4, versions=("9.17.1",), key_managers=PROVIDER_NAMES)
    scenario = Scenario.model_validate({"options": {"job_duration": {"min_s": 0, "max_s": 0}}})
    with running_simulator(spec, scenario) as sim:
        inventory = write_inventory(tmp_path / "inv.yaml", spec, sim.urls, ca_bundle=None)
        args = ["run", str(inventory), "--yes", "--state", "s.db", "--report-dir", "reports"]
        code = main([*args, "--rekey", "internal"])
        rekeys = [len(svm["rekeys"]) for svm in sim.fleet.stats()["svms"].values()]
    assert (code, used) == (0, [])
    assert rekeys == [1] * 8  # every provider's SVM, once


@pytest.mark.parametrize(
    ("read", "record"),
    [
        (lambda d: KeyManagerConfig.from_json(Provider.AWS, d), _full_config(Provider.AWS)),
        (lambda d: KeyManagerConfig.from_json(Provider.GCP, d), _full_config(Provider.GCP)),
        (KeyStore.from_json, {"uuid": "k", "svm": {"name": "s"}, "type": "aws", "state": "x"}),
        (Job.from_json, {"uuid": "j", "state": "failure", "code": 5, "message": "m"}),
    ],
)
def test_a_record_read_directly_is_the_one_its_constructor_builds(
    read: Any, record: object
) -> None:
    """The fast readers build their frozen records without `__init__` (`models._frozen`):
    every field set, nothing else, equal and hashed as the constructor's record."""
    fast = read(record)
    built = type(fast)(**{f.name: getattr(fast, f.name) for f in dataclasses.fields(fast)})
    assert set(vars(fast)) == {f.name for f in dataclasses.fields(fast)}
    assert fast == built and hash(fast) == hash(built) and repr(fast) == repr(built)
    for node in getattr(fast, "ekmip", ()):
        assert set(vars(node)) == {f.name for f in dataclasses.fields(node)}
