"""Authentication as ONTAP does it: basic, client certificate CN, bearer token (9.14+).

Failed logins are counted per cluster and per account; an account with `lockout_after`
consecutive failures is locked, and then even the right password gets 401.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

from orchestrator.simulator.cluster import ClusterState
from orchestrator.simulator.errors import ApiError

NOT_AUTHORIZED_CODE = 6691623
CHALLENGE = [("www-authenticate", 'Basic realm="ONTAP"')]


def authenticate(cluster: ClusterState, scope: MutableMapping[str, Any], authorization: str) -> str:
    """The authenticated principal, or ApiError 401 (counted as a failed login)."""
    lockout = cluster.policy.options.lockout_after
    cn = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_cn")
    if cn and cn in cluster.users and not _locked(cluster, cn, lockout):
        return str(cn)
    scheme, _, credentials = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and cluster.accepts_tokens and credentials in cluster.tokens:
        return "bearer"
    user = None
    if scheme == "basic":
        user, password = _basic(credentials)
        if not _locked(cluster, user, lockout) and cluster.users.get(user) == password:
            cluster.user_failures.pop(user, None)
            return user
    raise _refuse(cluster, user, lockout)


def _locked(cluster: ClusterState, user: str, lockout: int) -> bool:
    return lockout > 0 and cluster.user_failures[user] >= lockout


def _refuse(cluster: ClusterState, user: str | None, lockout: int) -> ApiError:
    cluster.failed_logins += 1
    message = "User is not authorized."
    if user is not None and user in cluster.users:
        cluster.user_failures[user] += 1
        if _locked(cluster, user, lockout):
            message = "User is not authorized: the account is locked."
    return ApiError(401, NOT_AUTHORIZED_CODE, message, headers=CHALLENGE)


@lru_cache(maxsize=256)
def _basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password
