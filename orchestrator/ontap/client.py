"""The typed ONTAP REST client: one per cluster, over an injected `httpx.AsyncClient`.

This module is the one place where HTTP statuses, ONTAP error bodies, transport
exceptions and malformed answers become `OntapError` (see `orchestrator.core.errors`
for the tree). Every public method either returns parsed, frozen records
(`orchestrator.ontap.models`) or raises exactly one `OntapError`, chained with
`raise ... from exc` to the low-level cause.

The `httpx.AsyncClient` arrives ready (base URL, auth, TLS, timeouts: see
`orchestrator.ontap.connect`), so tests swap the network for `httpx.MockTransport` or the
simulator. No message built here contains a request header, a password or a token:
only the cluster name, the operation, the status and what ONTAP said.
"""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from orchestrator.core import providers
from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.core.providers import Operation, Provider
from orchestrator.ontap.models import (
    ClusterInfo,
    ConfigRef,
    Job,
    KeyManagerConfig,
    KeyStore,
    MalformedRecord,
    RekeySubmission,
    as_mapping,
    normalise_code,
)

T = TypeVar("T")

MAX_PAGES = 10_000
"""Upper bound on pages followed in one collection GET: a server that keeps inventing
new `next` links must not hold a worker forever."""

MAX_RETURN_TIMEOUT = 120
"""ONTAP accepts `return_timeout` in 0..120 seconds."""

AWS_KMS_FIELDS = ("uuid", "scope", "svm", "key_id", "region")
# Health fields are "advanced": ONTAP returns them only when named. The planner needs
# the per-node key server view (ekmip_reachability) as much as the cluster-wide state.
AWS_KMS_HEALTH_FIELDS = ("state", "amazon_reachability", "ekmip_reachability")
# Newest first: `state` exists from 9.16.1, `scope` and `enabled` from 9.14; a cluster
# asked for a field its version lacks answers 400, and the next set is tried.
KEY_STORE_FIELD_SETS = (
    ("uuid", "svm", "scope", "type", "enabled", "state"),
    ("uuid", "svm", "scope", "type", "enabled"),
    ("uuid", "svm", "type"),
)
KEY_STORE_FIELDS_SINCE = ((9, 16, 1), (9, 14, 0))  # KEY_STORE_FIELD_SETS[0], [1]


def key_store_field_set(version: Sequence[int]) -> int:
    """The index into KEY_STORE_FIELD_SETS of the richest set this ONTAP version serves
    (`state` from 9.16.1; `scope` and `enabled` from 9.14)."""
    for index, since in enumerate(KEY_STORE_FIELDS_SINCE):
        if tuple(version) >= since:
            return index
    return len(KEY_STORE_FIELDS_SINCE)


# Issue 15: the fields each provider's collection is asked for (the key field, and for
# GCP its key ring), and its advanced health fields (named, or ONTAP leaves them out).
KEY_MANAGER_FIELDS: Mapping[Provider, tuple[str, ...]] = {
    Provider.AWS: AWS_KMS_FIELDS,
    Provider.AZURE: ("uuid", "scope", "svm", "key_id"),
    Provider.GCP: ("uuid", "scope", "svm", "key_name", *providers.GCP_OPTIONAL_FIELDS),
    Provider.BARBICAN: ("uuid", "scope", "svm", "key_id"),
}
KEY_MANAGER_HEALTH_FIELDS: Mapping[Provider, tuple[str, ...]] = {
    p: ("state", s.reachability_field, *(("ekmip_reachability",) if s.has_ekmip else ()))
    for p, s in providers.PROVIDERS.items()
}
JOB_FIELDS = (
    "uuid",
    "state",
    "code",
    "message",
    "error",
    "description",
    "start_time",
    "end_time",
    "svm",
)
INVALID_FIELD_CODES = frozenset({"2", "262197"})
NOT_FOUND_CODE = "4"

_NOT_SENT_EXCEPTIONS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_CA_HINT = "set `tls: {ca_bundle: path/to/ca.pem}` for this cluster in the inventory"


def rekey_job_description(
    config_uuid: str,
    provider: Provider = Provider.AWS,
    operation: Operation = Operation.EXTERNAL,
) -> str:
    """The `description` ONTAP gives the job of a REST rekey of this configuration."""
    return providers.rekey_job_description(provider, config_uuid, operation)


def job_error(cluster: str, job: Job) -> OntapError:
    """A job that ended in `failure`, as the error the policy classifies (kind JOB)."""
    return OntapError(
        cluster=cluster,
        operation="job",
        kind=ErrorKind.JOB,
        code=job.code,
        message=job.message or f"job {job.uuid} failed",
        maybe_sent=True,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


class OntapClient:
    """Typed calls to one cluster's REST API; every failure is an `OntapError`."""

    def __init__(self, cluster: str, http: httpx.AsyncClient) -> None:
        self.cluster = cluster
        self._http = http
        self._key_store_fields = 0  # index into KEY_STORE_FIELD_SETS this cluster accepts

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._http.aclose()

    # -- public calls ------------------------------------------------------------------

    async def cluster_info(self) -> ClusterInfo:
        """Name, uuid and (lowest node) version of the cluster."""
        op = "cluster_info"
        response = await self._send(op, "GET", "/api/cluster", {"fields": "name,uuid,version"})
        info = self._parse(op, "GET", response, ClusterInfo.from_json)
        # Ask the key stores for the fields this version serves from the start, instead of
        # learning them from refusals (two failed GETs per cluster before 9.14); a set
        # refused anyway still falls back, and the choice never moves to a richer set.
        self._key_store_fields = max(self._key_store_fields, key_store_field_set(info.version))
        return info

    async def list_aws_kms(
        self,
        *,
        health: bool = True,
        svm_names: Sequence[str] | None = None,
        uuids: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> list[KeyManagerConfig]:
        """Every AWS KMS configuration (optionally only these SVMs or these uuids), all
        pages followed."""
        params = {"fields": ",".join(_kms_fields(health))}
        if svm_names:
            params["svm.name"] = "|".join(svm_names)  # ONTAP's OR syntax
        if uuids:
            params["uuid"] = "|".join(uuids)
        if page_size is not None:
            params["max_records"] = str(page_size)
        records = await self._collect("list_aws_kms", "/api/security/aws-kms", params)
        return self._parse_all(
            "list_aws_kms", records, partial(KeyManagerConfig.from_json, Provider.AWS)
        )

    async def get_aws_kms(self, uuid: str, *, health: bool = True) -> KeyManagerConfig:
        """One AWS KMS configuration by uuid (the read-back after a rekey)."""
        op = "get_aws_kms"
        path = f"/api/security/aws-kms/{_segment(uuid)}"
        response = await self._send(op, "GET", path, {"fields": ",".join(_kms_fields(health))})
        return self._parse(op, "GET", response, partial(KeyManagerConfig.from_json, Provider.AWS))

    async def list_key_stores(self, *, svm: str | None = None) -> list[KeyStore]:
        """Every key store with its state (only the SVM `svm`'s, when given; the cluster
        scope `-` lists all: `scope` is unknown before 9.14). Falls back to the fields of
        older versions on a 400, and remembers the set this cluster accepted."""
        op = "list_key_stores"
        only = {} if svm in (None, "-") else {"svm.name": svm}
        while True:
            used = self._key_store_fields  # concurrent calls may move it meanwhile
            params = {**_fields(KEY_STORE_FIELD_SETS[used]), **only}
            try:
                records = await self._collect(op, "/api/security/key-stores", params)
            except OntapError as err:
                last = used == len(KEY_STORE_FIELD_SETS) - 1
                if last or err.status != 400 or err.code not in INVALID_FIELD_CODES:
                    raise
                self._key_store_fields = max(self._key_store_fields, used + 1)
                continue
            return self._parse_all(op, records, KeyStore.from_json)

    async def rekey_external(
        self, uuid: str, key_id: str, *, return_timeout: int
    ) -> RekeySubmission:
        """POST the AWS rekey-external; returns the submission (200/201/202) without
        polling its job.

        `return_timeout` is always sent (the documented default is ambiguous). A job in
        the answer, finished or not, is returned for the engine to follow and record.
        """
        path = providers.rekey_path(Provider.AWS, _segment(uuid), Operation.EXTERNAL)
        return await self._post_rekey("rekey_external", path, {"key_id": key_id}, return_timeout)

    # -- issue 15: every key manager -----------------------------------------------------

    async def list_key_managers(
        self,
        wanted: Iterable[Provider],
        *,
        version: Sequence[int],
        health: bool = True,
        svm_names: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> list[KeyManagerConfig]:
        """Every configuration of the `wanted` providers, all pages of each collection.

        `version` is the cluster's (`ClusterInfo.version`): a collection the version does
        not serve (Barbican before 9.17) is skipped without a request, not an error.
        Collections are read in the table's order (aws, azure, gcp, barbican).
        """
        chosen = set(wanted)
        found: list[KeyManagerConfig] = []
        for provider in providers.PROVIDERS:
            if provider in chosen and providers.serves_collection(provider, version):
                found += await self._list_one(provider, health, svm_names, page_size)
        return found

    async def get_key_manager(
        self, provider: Provider, uuid: str, *, health: bool = True
    ) -> KeyManagerConfig:
        """One configuration by provider and uuid (the read-back after a rekey)."""
        op = f"get_{provider.value}_kms"
        path = providers.config_path(provider, _segment(uuid))
        params = _fields(_key_manager_fields(provider, health))
        response = await self._send(op, "GET", path, params)
        return self._parse(op, "GET", response, partial(KeyManagerConfig.from_json, provider))

    async def rekey(
        self,
        config: KeyManagerConfig | ConfigRef,
        operation: Operation,
        body: Mapping[str, str] | None,
        *,
        return_timeout: int,
    ) -> RekeySubmission:
        """POST `config`'s rekey-external or rekey-internal; the submission (200/201/202)
        without polling its job, exactly as `rekey_external` does.

        `body` comes from `orchestrator.core.providers.rekey_body`: None for internal (no
        body is sent at all), the key fields for external. A pair ONTAP lacks (Barbican
        external), a body for internal or none for external is a ValueError: a bug, never
        a request. The operation in errors is `rekey_external` / `rekey_internal`.
        """
        if (operation is Operation.INTERNAL) != (body is None):
            raise ValueError(f"rekey-{operation} takes {'no' if body is not None else 'a'} body")
        path = providers.rekey_path(config.provider, _segment(config.uuid), operation)
        return await self._post_rekey(f"rekey_{operation.value}", path, body, return_timeout)

    async def _list_one(
        self,
        provider: Provider,
        health: bool,
        svm_names: Sequence[str] | None,
        page_size: int | None,
    ) -> list[KeyManagerConfig]:
        op = f"list_{provider.value}_kms"
        params = _fields(_key_manager_fields(provider, health))
        if svm_names:
            params["svm.name"] = "|".join(svm_names)  # ONTAP's OR syntax
        if page_size is not None:
            params["max_records"] = str(page_size)
        records = await self._collect(op, providers.collection_path(provider), params)
        return self._parse_all(op, records, partial(KeyManagerConfig.from_json, provider))

    async def _post_rekey(
        self, op: str, path: str, body: Mapping[str, str] | None, return_timeout: int
    ) -> RekeySubmission:
        """The one rekey POST: `return_timeout` always sent, 200/201/202 parsed."""
        if not 0 <= return_timeout <= MAX_RETURN_TIMEOUT:
            raise ValueError(f"return_timeout must be in 0..{MAX_RETURN_TIMEOUT}")
        params = {"return_timeout": str(return_timeout)}
        response = await self._send(op, "POST", path, params, body=body)
        if response.status_code not in (200, 201, 202):
            raise self._error(
                op,
                ErrorKind.PROTOCOL,
                f"unexpected {response.status_code} to a rekey",
                True,
                status=response.status_code,
            )
        parser = partial(RekeySubmission.from_json, response.status_code)
        return self._parse(op, "POST", response, parser)

    async def get_job(self, uuid: str) -> Job:
        """One job; an expired job raises OntapError with status 404 and code "4"."""
        op = "get_job"
        path = f"/api/cluster/jobs/{_segment(uuid)}"
        try:
            response = await self._send(op, "GET", path, _fields(JOB_FIELDS))
        except OntapError as err:
            if err.status != 404 or err.code is not None:
                raise
            # A bare 404 (no ONTAP body) means the same as code 4: the record is gone.
            message = f"job {uuid} not found"
            raise self._error(
                op, ErrorKind.HTTP, message, False, status=404, code=NOT_FOUND_CODE
            ) from err
        return self._parse(op, "GET", response, Job.from_json)

    async def find_jobs(
        self, *, description: str | None = None, since: datetime | None = None
    ) -> list[Job]:
        """Jobs whose description matches (every job without one), started at or after
        `since` (if given).

        A job not started yet (no `start_time`) is always kept: it can only be recent.
        A naive `since` is taken as UTC.
        """
        params = _fields(JOB_FIELDS)
        if description is not None:
            params["description"] = description
        records = await self._collect("find_jobs", "/api/cluster/jobs", params)
        jobs = self._parse_all("find_jobs", records, Job.from_json)
        if since is None:
            return jobs
        floor = since if since.tzinfo else since.replace(tzinfo=UTC)
        return [job for job in jobs if job.start_time is None or job.start_time >= floor]

    # -- the boundary ------------------------------------------------------------------

    async def _send(
        self,
        op: str,
        method: str,
        url: str,
        params: Mapping[str, str] | None = None,
        *,
        body: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """One request; a 2xx response or an OntapError."""
        try:
            response = await self._http.request(method, url, params=params, json=body)
        except (httpx.HTTPError, ssl.SSLError) as exc:
            raise self._transport_error(op, method, exc) from exc
        if not response.is_success:
            raise self._status_error(op, method, response)
        return response

    async def _collect(
        self, op: str, path: str, params: Mapping[str, str]
    ) -> list[Mapping[str, Any]]:
        """The records of a collection GET, following `_links.next.href` to the end."""
        records: list[Mapping[str, Any]] = []
        url: str = path
        query: Mapping[str, str] | None = params
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            response = await self._send(op, "GET", url, query)
            page, next_href = self._page(op, response)
            records.extend(page)
            if next_href is None:
                return records
            if next_href in seen:
                raise self._error(op, ErrorKind.PROTOCOL, "paging loop: next link repeats", False)
            seen.add(next_href)
            url, query = self._same_origin(op, next_href), None
        raise self._error(op, ErrorKind.PROTOCOL, f"more than {MAX_PAGES} pages", False)

    def _page(
        self, op: str, response: httpx.Response
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        def parse(data: object) -> tuple[list[Mapping[str, Any]], str | None]:
            body = as_mapping(data, "collection")
            records = body.get("records", [])
            if not isinstance(records, list):
                raise MalformedRecord("records: expected a list")
            page = [as_mapping(record, "record") for record in records]
            links = as_mapping(body.get("_links") or {}, "_links")
            nxt = as_mapping(links.get("next") or {}, "_links.next").get("href")
            if nxt is not None and not isinstance(nxt, str):
                raise MalformedRecord("_links.next.href: expected a string")
            return page, nxt or None

        return self._parse(op, "GET", response, parse)

    def _same_origin(self, op: str, href: str) -> str:
        """Refuse a next link to another host: the client would send it our credentials."""
        target = httpx.URL(href)
        if target.is_relative_url and href.startswith("/") and not href.startswith("//"):
            return href
        base = self._http.base_url
        if (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port):
            return href
        raise self._error(op, ErrorKind.PROTOCOL, "next link points to another host", False)

    def _json(self, op: str, method: str, response: httpx.Response) -> object:
        content = response.content
        if not content or content.isspace():  # `isspace`: the bytes `strip` removes, no copy
            return None
        try:
            return _decode_json(content)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise self._error(
                op,
                ErrorKind.PROTOCOL,
                "invalid JSON in the response",
                method == "POST",
                status=response.status_code,
            ) from exc

    def _parse(
        self, op: str, method: str, response: httpx.Response, parser: Callable[[object], T]
    ) -> T:
        data = self._json(op, method, response)
        try:
            return parser(data)
        except ValueError as exc:
            raise self._error(
                op,
                ErrorKind.PROTOCOL,
                f"unexpected response: {exc}",
                method == "POST",
                status=response.status_code,
            ) from exc

    def _parse_all(
        self, op: str, records: list[Mapping[str, Any]], parser: Callable[[object], T]
    ) -> list[T]:
        try:
            return [parser(record) for record in records]
        except ValueError as exc:
            raise self._error(op, ErrorKind.PROTOCOL, f"unexpected record: {exc}", False) from exc

    def _status_error(self, op: str, method: str, response: httpx.Response) -> OntapError:
        """An HTTP error status as an OntapError: ONTAP's code and message when present."""
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        ontap = _ontap_error_body(response)
        if ontap is not None:
            code, message = ontap
            return self._error(
                op,
                ErrorKind.HTTP,
                message,
                False,
                status=status,
                code=code,
                retry_after=retry_after,
            )
        # Not ONTAP's own error body: a gateway or something that is not ONTAP. A gateway's
        # 502/504 to a POST says nothing about whether ONTAP received the request.
        maybe_sent = method == "POST" and status in (502, 504)
        kind_of_body = response.headers.get("Content-Type", "no content type").split(";")[0]
        message = f"HTTP {status} without an ONTAP error body ({kind_of_body}, " + (
            f"{len(response.content)} bytes)"
        )
        return self._error(
            op, ErrorKind.PROTOCOL, message, maybe_sent, status=status, retry_after=retry_after
        )

    def _transport_error(self, op: str, method: str, exc: Exception) -> OntapError:
        """A transport exception as an OntapError; only a POST can have taken effect."""
        mutating = method != "GET"
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, ssl.SSLError) or (
            isinstance(exc, httpx.ConnectError) and _ssl_cause(exc) is not None
        ):
            cause = exc if isinstance(exc, ssl.SSLError) else _ssl_cause(exc)
            message = f"TLS handshake with cluster {self.cluster} failed ({cause}); {_CA_HINT}"
            return self._error(op, ErrorKind.TLS, message, False)
        if isinstance(exc, _NOT_SENT_EXCEPTIONS):
            return self._error(op, ErrorKind.CONNECT, detail, False)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            return self._error(op, ErrorKind.PROTOCOL, detail, False)
        # Read/write timeouts, resets and drops after the request went out, and anything
        # unforeseen: for a POST we cannot prove it did not reach ONTAP.
        return self._error(op, ErrorKind.SENT, detail, mutating)

    def _error(
        self,
        op: str,
        kind: ErrorKind,
        message: str,
        maybe_sent: bool,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> OntapError:
        return OntapError(
            cluster=self.cluster,
            operation=op,
            kind=kind,
            message=message,
            status=status,
            code=code,
            maybe_sent=maybe_sent,
            retry_after=retry_after,
        )


_JSON_DECODER = json.JSONDecoder()


def _decode_json(content: bytes) -> object:
    """`json.loads(content)` (what `httpx.Response.json` is), with its encoding guess
    skipped for the usual answer: an object or array, so no BOM, and no NUL second byte,
    so UTF-8 by that guess (RFC 8259's detection, as `json.detect_encoding` does it)."""
    if content[:1] in (b"{", b"[") and content[1:2] != b"\x00":
        return _JSON_DECODER.decode(content.decode("utf-8", "surrogatepass"))
    return json.loads(content)


def _key_manager_fields(provider: Provider, health: bool) -> tuple[str, ...]:
    health_fields = KEY_MANAGER_HEALTH_FIELDS[provider] if health else ()
    return KEY_MANAGER_FIELDS[provider] + health_fields


def _kms_fields(health: bool) -> tuple[str, ...]:
    return AWS_KMS_FIELDS + (AWS_KMS_HEALTH_FIELDS if health else ())


def _fields(names: Sequence[str]) -> dict[str, str]:
    return {"fields": ",".join(names)}


def _segment(value: str) -> str:
    """A uuid as one path segment, whatever it contains."""
    return quote(value, safe="")


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ssl error under an httpx exception (httpcore chains it with `from`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _ontap_error_body(response: httpx.Response) -> tuple[str | None, str] | None:
    """`(code, message)` from `{"error": {"code", "message", "target"}}`, else None."""
    try:
        body = response.json()
        error = as_mapping(as_mapping(body, "body").get("error"), "error")
        code = normalise_code(error.get("code"))
    except ValueError:
        return None
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"HTTP {response.status_code} (no message)"
    target = error.get("target")
    if isinstance(target, str) and target:
        message = f"{message} (target: {target})"
    return code, message
