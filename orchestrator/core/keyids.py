"""Resolving an inventory `key_id` (current, literal, or template) for one target."""

from __future__ import annotations

from orchestrator.core.inventory import KEY_ID_CURRENT


def resolve_key_id(template: str, *, cluster: str, svm: str, current: str) -> str:
    """The key id to send: the configured one for `current`, else the filled template.

    `{cluster}` and `{svm}` are the only placeholders (the loader refuses others); for the
    cluster-scoped configuration `{svm}` is `-`.
    """
    if template == KEY_ID_CURRENT:
        return current
    return template.replace("{cluster}", cluster).replace("{svm}", svm)
