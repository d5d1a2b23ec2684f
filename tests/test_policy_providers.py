"""The error policy per key manager and rotation (issue 15): every documented code of
every rekey endpoint, the hints in each provider's words, overrides, and the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.errors import ErrorClass, ErrorKind, OntapError
from orchestrator.core.inventory import RetryOverride
from orchestrator.core.policy import (
    ENDPOINT_CODES,
    ERROR_TABLE,
    NOT_CONFIGURED_CODES,
    classify,
    describe_code,
    errors_markdown,
    hint_for,
)
from orchestrator.core.providers import REKEY_SINCE, Operation, Provider

DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
AWS, AZURE, GCP, BARBICAN = Provider.AWS, Provider.AZURE, Provider.GCP, Provider.BARBICAN
EXT, INT = Operation.EXTERNAL, Operation.INTERNAL
R, B, F, S = ErrorClass.RETRYABLE, ErrorClass.BOUNDED, ErrorClass.FATAL, ErrorClass.SKIP

# The expected class of every code, written out here (not read from the policy table) so
# that a changed row fails a test. Reference notes, section 2; brief of issue 15.
SHARED = {
    "65537538": F, "65537543": F, "65537547": F, "65537610": B,
    "65537919": B, "65539436": R, "65539437": F,
}  # fmt: skip
DOCUMENTED: dict[tuple[Provider, Operation], dict[str, ErrorClass]] = {
    (AWS, EXT): SHARED | {"65537926": S},
    (AWS, INT): SHARED | {"65537926": S, "65537556": F, "65537559": F, "65537566": B},
    (AZURE, EXT): SHARED | {"65537120": S, "65539855": F},
    (AZURE, INT): SHARED | {"65537120": S, "65537559": F},
    (GCP, EXT): SHARED
    | {"65537721": S, "65537729": R, "65537753": F, "65537755": F, "65537556": F},
    (GCP, INT): SHARED | {"65537721": S, "65537556": F, "65537559": F},
    (BARBICAN, INT): SHARED | {"65539817": S, "65539834": F, "65539844": F},
}
CASES = [(p, o, code, cls) for (p, o), codes in DOCUMENTED.items() for code, cls in codes.items()]


def http(status: int, code: str | None) -> OntapError:
    return OntapError(
        cluster="c", operation="rekey", kind=ErrorKind.HTTP, message="m", status=status, code=code
    )


def job(code: str) -> OntapError:
    return OntapError(
        cluster="c", operation="job", kind=ErrorKind.JOB, message="m", code=code, maybe_sent=True
    )


@pytest.mark.parametrize(
    ("provider", "operation", "code", "expected"),
    CASES,
    ids=[f"{p}-{o}-{c}" for p, o, c, _ in CASES],
)
def test_every_documented_code_of_every_endpoint(
    provider: Provider, operation: Operation, code: str, expected: ErrorClass
) -> None:
    """Each documented code classifies as specified, the same from an error body and from
    a failed job, with a meaning and a hint in the key manager's words."""
    by_body = classify(http(409, code), provider=provider, operation=operation)
    by_job = classify(job(code), provider=provider, operation=operation)
    assert (by_body.error_class, by_job.error_class) == (expected, expected)
    assert by_body.hint
    assert "$" not in by_body.hint
    assert "not in this tool's table" not in describe_code(code, provider, operation)


def test_the_endpoint_table_lists_exactly_the_documented_codes() -> None:
    """ENDPOINT_CODES has one entry per rekey endpoint, with the documented codes."""
    assert set(ENDPOINT_CODES) == set(REKEY_SINCE) == set(DOCUMENTED)
    for pair, codes in DOCUMENTED.items():
        assert sorted(ENDPOINT_CODES[pair]) == sorted(codes)


@pytest.mark.parametrize(
    ("provider", "code"),
    [(AWS, "65537926"), (AZURE, "65537120"), (GCP, "65537721"), (BARBICAN, "65539817")],
)
def test_not_configured_is_a_skip_for_each_provider(provider: Provider, code: str) -> None:
    """Each provider's "not configured" code ends the target `skipped: not_configured`."""
    assert NOT_CONFIGURED_CODES[provider] == code
    operation = EXT if provider is not BARBICAN else INT
    rule = classify(http(404, code), provider=provider, operation=operation)
    assert (rule.error_class, rule.max_attempts) == (ErrorClass.SKIP, 1)


def test_gcp_node_failure_is_retried_as_ontap_asks() -> None:
    """65537729 ("try the rekey operation again") is retryable without a bound of its own."""
    rule = classify(http(500, "65537729"), provider=GCP, operation=EXT)
    assert (rule.error_class, rule.max_attempts) == (ErrorClass.RETRYABLE, None)


def test_slash_in_gcp_key_name_is_fatal_and_says_where_the_ring_goes() -> None:
    """65537753: fatal; the hint says to give the bare name and where ring and project go."""
    rule = classify(http(400, "65537753"), provider=GCP, operation=EXT)
    assert rule.error_class is ErrorClass.FATAL
    assert "key_ring_name" in rule.hint
    assert "project_id" in rule.hint


def test_blocked_key_manager_is_fatal_with_the_restore_call_of_its_provider() -> None:
    """65537556: fatal (an operator must clear the state); the hint names the provider's
    restore endpoint and CLI."""
    rule = classify(http(409, "65537556"), provider=GCP, operation=INT)
    assert rule.error_class is ErrorClass.FATAL
    assert "POST /api/security/gcp-kms/{uuid}/restore" in rule.hint
    assert "external gcp show-status" in rule.hint
    aws = classify(http(409, "65537556"), provider=AWS, operation=INT)
    assert "/api/security/aws-kms/{uuid}/restore" in aws.hint


def test_nodes_offline_is_bounded_with_a_long_backoff() -> None:
    """65537566: a few attempts, paced for a takeover or reboot (minutes)."""
    rule = classify(http(500, "65537566"), provider=AWS, operation=INT)
    assert rule.error_class is ErrorClass.BOUNDED
    assert rule.max_attempts == 3
    assert rule.base_delay_s >= 30.0
    assert "cluster show" in rule.hint


def test_no_internal_keys_is_fatal_and_says_there_is_nothing_to_rotate() -> None:
    """65537559: fatal with a hint about creating an encrypted volume first."""
    rule = classify(http(400, "65537559"), provider=AZURE, operation=INT)
    assert rule.error_class is ErrorClass.FATAL
    assert "encrypted volume" in rule.hint


def test_defaults_are_aws_external_exactly() -> None:
    """Without provider/operation, classify is AWS rekey-external: same rule, same text."""
    for entry in ERROR_TABLE:
        error = http(400, entry.code)
        assert classify(error) == classify(error, provider=AWS, operation=EXT)


@pytest.mark.parametrize(
    ("provider", "words"),
    [
        (AWS, ("AWS KMS", "external aws show")),
        (AZURE, ("Azure Key Vault", "external azure show")),
        (GCP, ("Google Cloud KMS", "external gcp show")),
    ],
)
def test_hints_speak_of_the_targets_key_manager(provider: Provider, words: tuple[str, ...]) -> None:
    """A shared code's hint names the target's key manager and its CLI, not AWS's."""
    hint = classify(http(500, "65537538"), provider=provider, operation=EXT).hint
    for word in words:
        assert word in hint
    if provider is not AWS:
        assert "AWS" not in hint


def test_key_hint_names_the_providers_key_field() -> None:
    """262197 (invalid value) points at key_id, key_name, or return_timeout for internal."""
    assert "`key_id`" in hint_for("262197", None, AZURE, EXT)
    assert "vault.azure.net" in hint_for("262197", None, AZURE, EXT)
    assert "`key_name`" in hint_for("262197", None, GCP, EXT)
    assert "return_timeout" in hint_for("262197", None, GCP, INT)


def test_an_override_of_a_new_code_applies_to_every_provider() -> None:
    """`retry:` may make 65537556 bounded; the hint stays in the provider's words."""
    overrides = {"65537556": RetryOverride(error_class=ErrorClass.BOUNDED, max_attempts=4)}
    for provider, operation in ((GCP, EXT), (AWS, INT), (GCP, INT)):
        rule = classify(http(409, "65537556"), overrides, provider=provider, operation=operation)
        assert (rule.error_class, rule.max_attempts) == (ErrorClass.BOUNDED, 4)
        assert provider.value in rule.hint


def test_docs_have_a_table_per_endpoint_with_every_code() -> None:
    """docs/errors.md has a section per (provider, operation) listing its codes."""
    text = DOCS.read_text(encoding="utf-8")
    assert text == errors_markdown()
    sections = text.split("\n### ")[1:]
    assert len(sections) == len(DOCUMENTED)
    for (provider, operation), codes in DOCUMENTED.items():
        path = f"/{{uuid}}/rekey-{operation.value}`"
        (section,) = [s for s in sections if path in s and f"/{_collection(provider)}/" in s]
        for code in codes:
            assert f"| `{code}` |" in section
        assert "$" not in section


def _collection(provider: Provider) -> str:
    return {
        AWS: "aws-kms",
        AZURE: "azure-key-vaults",
        GCP: "gcp-kms",
        BARBICAN: "barbican-kms",
    }[provider]
