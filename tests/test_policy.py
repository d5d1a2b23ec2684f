"""The error policy: every row of the spec's table, overrides, and totality."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.errors import ErrorClass, ErrorKind, OntapError
from orchestrator.core.inventory import RetryOverride
from orchestrator.core.policy import ENDPOINT_CODES as POLICY_ENDPOINT_CODES
from orchestrator.core.policy import (
    ERROR_TABLE,
    HINTS,
    classify,
    describe_code,
    errors_markdown,
    hint_for,
)
from orchestrator.core.providers import Operation, Provider

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
ENDPOINT_CODES = (
    "65537538", "65537543", "65537547", "65537610",
    "65537919", "65537926", "65539436", "65539437",
)  # fmt: skip
GENERIC_CODES = ("1", "2", "4", "6", "7", "8", "262160", "262197", "262291", "6691623")


def http(status: int, code: str | None = None, *, post: bool = True) -> OntapError:
    return OntapError(
        cluster="c",
        operation="rekey_external" if post else "get_job",
        kind=ErrorKind.HTTP,
        message="m",
        status=status,
        code=code,
    )


def job(code: str | None) -> OntapError:
    return OntapError(
        cluster="c", operation="job", kind=ErrorKind.JOB, message="m", code=code, maybe_sent=True
    )


def kind(kind: ErrorKind, *, maybe_sent: bool = False, status: int | None = None) -> OntapError:
    return OntapError(
        cluster="c", operation="op", kind=kind, message="m", maybe_sent=maybe_sent, status=status
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (http(409, "65539436"), ErrorClass.RETRYABLE),
        (http(409, "65537610"), ErrorClass.BOUNDED),
        (http(500, "65537919"), ErrorClass.BOUNDED),
        (http(429), ErrorClass.RETRYABLE),
        (http(503), ErrorClass.RETRYABLE),
        (http(502), ErrorClass.RETRYABLE),
        (http(504), ErrorClass.RETRYABLE),
        (http(503, "7"), ErrorClass.RETRYABLE),
        (http(409, "8"), ErrorClass.RETRYABLE),
        (http(429, "262160"), ErrorClass.RETRYABLE),
        (http(500, "262291"), ErrorClass.RETRYABLE),
        (kind(ErrorKind.CONNECT), ErrorClass.RETRYABLE),
        (kind(ErrorKind.SENT, maybe_sent=True), ErrorClass.UNCERTAIN),
        (http(401), ErrorClass.AUTH),
        (http(404, "65537926"), ErrorClass.SKIP),
        (http(400, "65537547"), ErrorClass.FATAL),
        (http(500, "65537538"), ErrorClass.FATAL),
        (http(500, "65537543"), ErrorClass.FATAL),
        (http(409, "65539437"), ErrorClass.FATAL),
        (http(403), ErrorClass.FATAL),
        (http(403, "6"), ErrorClass.FATAL),
        (http(400, "262197"), ErrorClass.FATAL),
        (http(418), ErrorClass.FATAL),
        (http(400, "99999999"), ErrorClass.FATAL),
    ],
    ids=lambda v: v.summary() if isinstance(v, OntapError) else None,
)
def test_spec_error_policy_rows(error: OntapError, expected: ErrorClass) -> None:
    """Each row of the spec's "Error policy" table classifies as specified."""
    assert classify(error).error_class is expected


@pytest.mark.parametrize("code", ENDPOINT_CODES + GENERIC_CODES)
def test_every_documented_code_has_a_row_a_hint_and_a_meaning(code: str) -> None:
    """Every endpoint and generic code is in the table, with a hint and a meaning."""
    assert code in HINTS
    assert hint_for(code)
    assert "not in this tool's table" not in describe_code(code)


@pytest.mark.parametrize("code", ENDPOINT_CODES + GENERIC_CODES)
def test_a_failed_job_classifies_like_the_error_body(code: str) -> None:
    """A code arriving as a failed job's code or as an HTTP error body: same class."""
    assert classify(job(code)).error_class is classify(http(400, code)).error_class


def test_bounded_codes_have_three_attempts_and_the_switch_hint() -> None:
    """65537610 and 65537919 stop after 3 attempts; 65537610 names the PATCH."""
    switching = classify(http(409, "65537610"))
    assert switching.max_attempts == 3
    assert "PATCH /api/security/key-stores/{uuid}" in switching.hint
    assert classify(http(500, "65537919")).max_attempts == 3


def test_keystore_initializing_waits_longer() -> None:
    """Key store initializing has a larger base delay than ordinary transients."""
    initializing = classify(http(409, "65539436"))
    assert initializing.base_delay_s > classify(http(503)).base_delay_s
    assert initializing.max_delay_s >= initializing.base_delay_s


def test_migrate_hint_for_65537547() -> None:
    """The remedy names the migrate call."""
    assert "/migrate" in classify(http(400, "65537547")).hint


def test_tls_is_fatal_with_ca_bundle_hint() -> None:
    """TLS failures are fatal and say how to pass a CA bundle."""
    rule = classify(kind(ErrorKind.TLS))
    assert rule.error_class is ErrorClass.FATAL
    assert "ca_bundle" in rule.hint


def test_protocol_depends_on_status_and_maybe_sent() -> None:
    """PROTOCOL is fatal, unless the status is transient or the POST may have taken effect."""
    assert classify(kind(ErrorKind.PROTOCOL)).error_class is ErrorClass.FATAL
    assert classify(kind(ErrorKind.PROTOCOL, status=503)).error_class is ErrorClass.RETRYABLE
    gateway = kind(ErrorKind.PROTOCOL, status=504, maybe_sent=True)
    assert classify(gateway).error_class is ErrorClass.UNCERTAIN


def test_dropped_get_is_retryable() -> None:
    """A read timeout on a GET changed nothing: retry."""
    assert classify(kind(ErrorKind.SENT)).error_class is ErrorClass.RETRYABLE


def test_unknown_job_code_and_codeless_job_are_fatal() -> None:
    """A failed job with an unknown code, or none, is fatal."""
    assert classify(job("424242")).error_class is ErrorClass.FATAL
    assert classify(job(None)).error_class is ErrorClass.FATAL
    assert "424242" in classify(job("424242")).hint


def test_override_replaces_fields() -> None:
    """An inventory override replaces only the fields it sets."""
    overrides = {"65537610": RetryOverride(max_attempts=6, base_delay_s=1.0)}
    rule = classify(http(409, "65537610"), overrides)
    assert (rule.error_class, rule.max_attempts, rule.base_delay_s) == (
        ErrorClass.BOUNDED,
        6,
        1.0,
    )
    assert rule.max_delay_s == classify(http(409, "65537610")).max_delay_s


def test_override_can_make_an_unknown_code_retryable() -> None:
    """A new class starts from that class's limits, keeping the hint."""
    overrides = {"424242": RetryOverride(error_class=ErrorClass.RETRYABLE)}
    rule = classify(http(500, "424242"), overrides)
    assert rule.error_class is ErrorClass.RETRYABLE
    assert rule.max_attempts is None
    assert rule.base_delay_s > 0


def test_a_401_is_never_overridden() -> None:
    """Even an override on the code of a 401 cannot make it retry (account lockout)."""
    overrides = {"6691623": RetryOverride(error_class=ErrorClass.RETRYABLE, max_attempts=9)}
    rule = classify(http(401, "6691623"), overrides)
    assert (rule.error_class, rule.max_attempts) == (ErrorClass.AUTH, 1)


def test_hint_for_status_and_unknown() -> None:
    """Hints fall back to the status, then to a generic unknown-code hint."""
    assert "lockout" in hint_for(None, 401) or "locked" in hint_for(None, 401)
    assert "424242" in hint_for("424242", 500)
    assert hint_for(None, None)


def test_docs_errors_md_is_generated_from_the_table() -> None:
    """docs/errors.md equals errors_markdown(): regenerate it when the table changes."""
    assert DOCS.read_text(encoding="utf-8") == errors_markdown()
    for entry in ERROR_TABLE:
        assert f"`{entry.code}`" in DOCS.read_text(encoding="utf-8")


codes = st.one_of(
    st.none(),
    st.sampled_from(ENDPOINT_CODES + GENERIC_CODES),
    st.sampled_from(sorted({c for cs in POLICY_ENDPOINT_CODES.values() for c in cs})),
    st.integers(min_value=1, max_value=10**10).map(str),
)
errors = st.builds(
    OntapError,
    cluster=st.text(max_size=5),
    operation=st.sampled_from(["rekey_external", "get_job", "list_aws_kms"]),
    kind=st.sampled_from(ErrorKind),
    message=st.text(max_size=20),
    status=st.one_of(st.none(), st.integers(min_value=100, max_value=599)),
    code=codes,
    maybe_sent=st.booleans(),
    retry_after=st.one_of(st.none(), st.floats(allow_nan=True)),
)
overrides = st.dictionaries(
    codes.filter(lambda c: c is not None).map(str),
    st.builds(
        RetryOverride,
        error_class=st.one_of(st.none(), st.sampled_from(ErrorClass)),
        max_attempts=st.one_of(st.none(), st.integers(min_value=1, max_value=10)),
        base_delay_s=st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
        max_delay_s=st.one_of(st.none(), st.floats(min_value=0, max_value=1000)),
    ),
    max_size=3,
)


@given(errors, overrides, st.sampled_from(Provider), st.sampled_from(Operation))
def test_classify_is_total(
    error: OntapError, table: dict[str, RetryOverride], provider: Provider, operation: Operation
) -> None:
    """Every OntapError, for every provider and operation, gets a rule with a hint whose
    placeholders are all filled; classify never raises."""
    rule = classify(error, table, provider=provider, operation=operation)
    assert rule.error_class in ErrorClass
    assert rule.hint
    assert "$" not in rule.hint
    if error.status == 401 and error.kind is not ErrorKind.TLS:  # TLS is decided first
        assert rule.error_class is ErrorClass.AUTH
    if error.kind is ErrorKind.TLS and error.code not in table:
        assert rule.error_class is ErrorClass.FATAL
