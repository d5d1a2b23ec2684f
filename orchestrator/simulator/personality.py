"""What an ONTAP version has: the gates of `ontap-rest-notes.md` sections 1, 2 and 4.

One `Personality` per cluster, computed from its version once. Routes and record builders
ask it instead of comparing versions themselves, so every version gate lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

Version = tuple[int, int, int]

AWS_KMS_API = (9, 12)  # /api/security/aws-kms and its rekey (absent before: 404)
KEY_STORE_CONFIGURATION = (9, 14)  # key-stores: scope, enabled, configuration, GET/PATCH {uuid}
REKEY_201 = (9, 14)  # 9.12/9.13 document only 202 for the rekey, and accept svm/scope in it
TOKENS = (9, 14)  # OAuth 2.0 bearer tokens
KEY_STORE_STATE = (9, 16, 1)  # key-stores: state (and is_svm_kek, shown with it)
BARBICAN_API = (9, 17)  # /api/security/barbican-kms


@dataclass(frozen=True)
class Personality:
    """The version-gated behaviour of one cluster."""

    version: Version

    def at_least(self, gate: tuple[int, ...]) -> bool:
        """True if this version is `gate` or later."""
        return self.version[: len(gate)] >= gate

    @property
    def has_aws_kms_api(self) -> bool:
        """ONTAP 9.12 added the aws-kms endpoints."""
        return self.at_least(AWS_KMS_API)

    @property
    def key_store_configuration(self) -> bool:
        """9.14 added `scope`, `enabled`, `configuration` and the key-store instance API."""
        return self.at_least(KEY_STORE_CONFIGURATION)

    @property
    def key_store_state(self) -> bool:
        """9.16.1 added the key store's `state`."""
        return self.at_least(KEY_STORE_STATE)

    @property
    def rekey_answers_201(self) -> bool:
        """From 9.14 a rekey that finished in time answers 201 (before: always 202)."""
        return self.at_least(REKEY_201)

    @property
    def accepts_tokens(self) -> bool:
        """OAuth 2.0 bearer tokens work from 9.14."""
        return self.at_least(TOKENS)
