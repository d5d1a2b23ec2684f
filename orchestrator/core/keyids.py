"""Resolving an inventory key id (current, literal, or template) for one target, and
checking its shape for the target's provider (AWS key id, Azure key URL, GCP key name)."""

from __future__ import annotations

import re

from orchestrator.core.errors import ErrorClass
from orchestrator.core.inventory import KEY_ID_CURRENT, GcpKeyTemplates
from orchestrator.core.providers import IntendedKey, Provider
from orchestrator.core.targets import ErrorInfo

__all__ = [
    "SAMPLE_NAME",
    "GcpKeyTemplates",
    "check_intended_key",
    "fill_template",
    "gcp_field_problem",
    "intended_key",
    "key_shape_problem",
    "resolve_key_id",
    "template_shape_problem",
]


def resolve_key_id(template: str, *, cluster: str, svm: str, current: str) -> str:
    """The key id to send: the configured one for `current`, else the filled template.

    `{cluster}` and `{svm}` are the only placeholders (the loader refuses others); for the
    cluster-scoped configuration `{svm}` is `-`.
    """
    if template == KEY_ID_CURRENT:
        return current
    return fill_template(template, cluster=cluster, svm=svm)


# -- key ids per provider (issue 15) -----------------------------------------------------
#
# What each cloud accepts as the key of a rekey-external, checked before anything is sent:
# in the inventory when a level pins one provider (`providers: [gcp]`), else once
# discovery knows each target's provider (`check_intended_key`, called by the engine).

_AWS_ARN_PREFIX = re.compile(r"^arn:aws[a-z-]*:kms:")
_AZURE_KEY_URL = re.compile(
    r"^https://[A-Za-z0-9-]{3,24}\."
    r"(vault\.azure\.net|vault\.azure\.cn|vault\.usgovcloudapi\.net|vault\.microsoftazure\.de"
    r"|managedhsm\.azure\.net)"
    r"/keys/[A-Za-z0-9-]{1,127}(/[A-Za-z0-9]{1,64})?$"
)
_GCP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_GCP_LOCATION = re.compile(r"^[a-z0-9-]{1,64}$")
_GCP_PROJECT = re.compile(r"^[A-Za-z0-9.:_-]{1,100}$")  # legacy ids carry a domain: "x.com:p"
SAMPLE_NAME = "sample"
"""Stands for a {cluster} or {svm} not known offline when a template's shape is checked
(long enough for every shape: an Azure vault name has at least 3 characters)."""
_AWS_HINT = "an AWS key id, key ARN (arn:aws:kms:...), alias name (alias/...) or alias ARN"
_AZURE_HINT = "the vault key URL, https://<vault>.vault.azure.net/keys/<name>[/<version>]"
_GCP_NAME_HINT = (
    "the key's name alone, e.g. ontap-kek; put the ring in key_ring_name, its location in "
    "key_ring_location and the project in project_id"
)


def fill_template(template: str, *, cluster: str, svm: str) -> str:
    """`{cluster}` and `{svm}` replaced (the loader refuses any other placeholder)."""
    return template.replace("{cluster}", cluster).replace("{svm}", svm)


def intended_key(
    provider: Provider,
    *,
    key_id: str,
    gcp: GcpKeyTemplates,
    cluster: str,
    svm: str,
    current: str,
) -> IntendedKey:
    """The key a rekey-external of this target sends, templates filled.

    `key_id` (AWS, Azure, Barbican) or `gcp.key_name` (GCP) decides the key; `current` is
    the key the configuration holds now (its `key_id`, or `key_name` for GCP).
    """
    if provider is not Provider.GCP:
        return IntendedKey(resolve_key_id(key_id, cluster=cluster, svm=svm, current=current))

    def fill(value: str | None) -> str | None:
        return None if value is None else fill_template(value, cluster=cluster, svm=svm)

    return IntendedKey(
        resolve_key_id(gcp.key_name, cluster=cluster, svm=svm, current=current),
        project_id=fill(gcp.project_id),
        key_ring_location=fill(gcp.key_ring_location),
        key_ring_name=fill(gcp.key_ring_name),
    )


def key_shape_problem(provider: Provider, value: str) -> str | None:
    """Why `value` cannot be a rekey-external key of `provider`, or None when it can.

    The message reads `what is wrong (what to write)`. AWS accepts four forms whose names
    are free text, so only what can be none of them is refused (a URL, a GCP resource
    path, an ARN of another service, blanks); Azure and GCP keys have a fixed shape.
    """
    match provider:
        case Provider.AWS:
            return _aws_problem(value)
        case Provider.AZURE:
            return _azure_problem(value)
        case Provider.GCP:
            return gcp_field_problem("key_name", value)
        case _:
            return None  # Barbican has no rekey-external: nothing is ever sent


def gcp_field_problem(field: str, value: str) -> str | None:
    """Why `value` cannot be GCP's `field` (key_name, key_ring_name, ...), or None."""
    if not value:
        return f"empty {field} (give a value or remove the key)"
    if field in ("key_name", "key_ring_name") and "/" in value:
        return (
            f"a GCP {field} has no '/', got {value!r} ("
            + (_GCP_NAME_HINT if field == "key_name" else "the ring's name alone")
            + "; ONTAP refuses it with 65537753)"
        )
    pattern = {"key_ring_location": _GCP_LOCATION, "project_id": _GCP_PROJECT}.get(field, _GCP_NAME)
    if not pattern.match(value):
        return f"{value!r} is not a GCP {field} ({_GCP_FIELD_RULES[field]})"
    return None


_GCP_FIELD_RULES = {
    "key_name": "1-63 letters, digits, '_' or '-'",
    "key_ring_name": "1-63 letters, digits, '_' or '-'",
    "key_ring_location": "a location such as global or us-east1: lowercase letters, digits, '-'",
    "project_id": "a project id such as my-project-123",
}


def template_shape_problem(
    provider: Provider, template: str, *, cluster: str | None, svm: str | None
) -> str | None:
    """`key_shape_problem` of a template as far as it is known offline; None for current.

    A name not known offline (the SVMs of `svms: all`) stands as one plain word.
    """
    if template == KEY_ID_CURRENT:
        return None
    filled = fill_template(template, cluster=cluster or SAMPLE_NAME, svm=svm or SAMPLE_NAME)
    return key_shape_problem(provider, filled)


def check_intended_key(
    provider: Provider, key: IntendedKey, *, key_is_current: bool = False
) -> ErrorInfo | None:
    """The `failed` outcome's error for a target whose resolved key has the wrong shape.

    None when the key may be sent. Pure: the engine calls it after discovery, before the
    intent is recorded, for every target of a rekey-external. With `key_is_current` (the
    inventory said `current`) the key is the one ONTAP holds and is not judged; GCP's
    ring fields, which come from the inventory, still are.
    """
    problem = None if key_is_current else key_shape_problem(provider, key.key)
    if problem is None and provider is Provider.GCP:
        problem = next(
            (
                p
                for name, value in key.gcp_fields().items()
                if (p := gcp_field_problem(name, value)) is not None
            ),
            None,
        )
    if problem is None:
        return None
    field = "key_name" if provider is Provider.GCP else "key_id"
    return ErrorInfo(
        code=None,
        message=f"the inventory's {field} for this {provider.value} target: {problem}",
        error_class=ErrorClass.FATAL.value,
        hint=f"Fix {field} in the inventory for this target, then re-run it "
        "(`--targets @failed.txt`); nothing was sent.",
    )


def _aws_problem(value: str) -> str | None:
    if not value or any(ch.isspace() for ch in value):
        return f"{value!r} is not an AWS KMS key (write {_AWS_HINT}, without blanks)"
    if "://" in value:
        return f"a URL is not an AWS KMS key, got {value!r} (write {_AWS_HINT})"
    if value.startswith("projects/"):
        return f"a Google Cloud key path is not an AWS KMS key, got {value!r} (write {_AWS_HINT})"
    if value.startswith("arn:") and not _AWS_ARN_PREFIX.match(value):
        return f"not a KMS ARN: {value!r} (an AWS KMS ARN starts with arn:aws:kms:)"
    return None


def _azure_problem(value: str) -> str | None:
    if _AZURE_KEY_URL.match(value):
        return None
    return f"{value!r} is not an Azure Key Vault key URL (write {_AZURE_HINT})"
