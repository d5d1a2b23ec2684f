"""The ONTAP client over `httpx.MockTransport`: parsing, paging and error translation."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.core.providers import Provider
from orchestrator.ontap.client import OntapClient, job_error, parse_retry_after
from orchestrator.ontap.models import ClusterInfo, Job, KeyManagerConfig, RekeySubmission

pytestmark = pytest.mark.anyio

BASE = "https://east-01.example.com"
PASSWORD = "s3cr3t-Pa55w0rd!"
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler) -> OntapClient:
    http = httpx.AsyncClient(
        base_url=BASE,
        transport=httpx.MockTransport(handler),
        auth=httpx.BasicAuth("admin", PASSWORD),
    )
    return OntapClient("east-01", http)


def ontap_error(status: int, code: str | int, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message}}
    return httpx.Response(status, json=body, headers=headers)


def kms_record(uuid: str, svm: str | None = None, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"uuid": uuid, "key_id": f"key-{uuid}", "region": "us-east-1"}
    if svm is None:
        record["scope"] = "cluster"
    else:
        record |= {"scope": "svm", "svm": {"name": svm, "uuid": f"svm-{svm}"}}
    return record | extra


class PagedKms:
    """A fake aws-kms collection that pages by `max_records` and records each request."""

    def __init__(self, records: list[dict[str, Any]], *, trailing_empty: bool = False) -> None:
        self.records = records
        self.trailing_empty = trailing_empty
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        size = int(request.url.params.get("max_records", "2"))
        start = int(request.url.params.get("start", "0"))
        page = self.records[start : start + size]
        body: dict[str, Any] = {"records": page, "num_records": len(page), "_links": {}}
        more = start + size < len(self.records) or (self.trailing_empty and page)
        if more:
            query = request.url.params.set("start", str(start + size))
            body["_links"]["next"] = {"href": f"/api/security/aws-kms?{query}"}
        return httpx.Response(200, json=body)


# -- parsing ------------------------------------------------------------------------------


async def test_cluster_info_parses_version_and_gate() -> None:
    """Cluster info asks for name,uuid,version and knows the 9.12 gate."""
    seen: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        version = {"full": "NetApp Release 9.11.1", "generation": 9, "major": 11, "minor": 1}
        return httpx.Response(200, json={"name": "east-01", "uuid": "c1", "version": version})

    info = await make_client(app).cluster_info()
    assert info == ClusterInfo("east-01", "c1", (9, 11, 1), "NetApp Release 9.11.1")
    assert not info.supports_aws_kms_rekey
    assert seen[0].url.path == "/api/cluster"
    assert seen[0].url.params["fields"] == "name,uuid,version"


def test_kms_config_parses_health_and_scope() -> None:
    """Health fields, per-node reachability and the `-` target of the cluster scope."""
    record = kms_record(
        "u1",
        "vs1",
        state={"cluster_state": True, "code": "0", "message": ""},
        amazon_reachability={"reachable": False, "code": "65537", "message": "down"},
        ekmip_reachability=[{"node": {"name": "n1"}, "reachable": True, "code": 0}],
    )
    config = KeyManagerConfig.from_json(Provider.AWS, record)
    assert config.target_svm == "vs1"
    assert config.cluster_state is True
    assert config.state_code is None
    assert config.kms_reachable is False  # `amazon_reachability`
    assert (config.provider, config.region) == (Provider.AWS, "us-east-1")
    assert config.ekmip[0].node == "n1"
    assert config.ekmip[0].code is None
    assert KeyManagerConfig.from_json(Provider.AWS, kms_record("u2")).target_svm == "-"


@pytest.mark.parametrize(
    ("record", "code", "message"),
    [
        ({"uuid": "j", "state": "failure", "code": 65537919, "message": "m"}, "65537919", "m"),
        (
            {"uuid": "j", "state": "failure", "error": {"code": "65537610", "message": "e"}},
            "65537610",
            "e",
        ),
        ({"uuid": "j", "state": "success", "code": 0, "message": "Complete"}, None, "Complete"),
    ],
    ids=["int-code", "string-error-code", "zero-is-none"],
)
def test_job_code_normalised(record: dict[str, Any], code: str | None, message: str) -> None:
    """A job's integer `code` and `error.code` string become one decimal string."""
    job = Job.from_json(record)
    assert (job.code, job.message) == (code, message)


def test_job_times_and_terminal_states() -> None:
    """Times parse as aware datetimes; only success/failure are terminal."""
    job = Job.from_json(
        {"uuid": "j", "state": "running", "start_time": "2024-05-01T10:00:00-04:00"}
    )
    assert job.start_time == datetime(2024, 5, 1, 14, tzinfo=UTC)
    assert not job.is_terminal
    assert Job.from_json({"uuid": "j", "state": "success"}).succeeded


@pytest.mark.parametrize(
    "garbage",
    [[], "x", {"uuid": "j"}, {"uuid": "j", "state": "running", "code": "abc"}],
)
def test_job_from_json_rejects_garbage(garbage: object) -> None:
    """A body without the documented shape is a ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011
        Job.from_json(garbage)


# -- paging -------------------------------------------------------------------------------


async def test_list_aws_kms_follows_every_page_and_asks_for_health() -> None:
    """All pages are followed, a trailing empty page with a next link is tolerated."""
    app = PagedKms([kms_record(f"u{i}", f"vs{i}") for i in range(5)], trailing_empty=True)
    configs = await make_client(app).list_aws_kms(page_size=2, svm_names=["vs*", "x"])
    assert [c.uuid for c in configs] == [f"u{i}" for i in range(5)]
    first = app.requests[0].url.params
    assert first["fields"].split(",") == [
        "uuid", "scope", "svm", "key_id", "region",
        "state", "amazon_reachability", "ekmip_reachability",
    ]  # fmt: skip
    assert first["svm.name"] == "vs*|x"
    assert len(app.requests) == 4  # 2 + 2 + 1, then the trailing empty page


async def test_list_aws_kms_without_health_asks_for_basic_fields() -> None:
    """health=False leaves out the advanced fields."""
    app = PagedKms([kms_record("u0")])
    await make_client(app).list_aws_kms(health=False)
    assert app.requests[0].url.params["fields"] == "uuid,scope,svm,key_id,region"


async def test_paging_loop_is_an_error() -> None:
    """A next link that repeats would loop for ever: PROTOCOL error."""

    def app(request: httpx.Request) -> httpx.Response:
        body = {"records": [], "_links": {"next": {"href": "/api/security/aws-kms?start=1"}}}
        return httpx.Response(200, json=body)

    with pytest.raises(OntapError) as info:
        await make_client(app).list_aws_kms()
    assert info.value.kind is ErrorKind.PROTOCOL
    assert "loop" in info.value.message


@pytest.mark.parametrize("href", ["https://evil.example/api/x", "//evil.example/api/x"])
async def test_next_link_to_another_host_is_refused(href: str) -> None:
    """Credentials are never sent to a host a next link names."""
    hosts: list[str] = []

    def app(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        body = {"records": [], "_links": {"next": {"href": href}}}
        return httpx.Response(200, json=body)

    with pytest.raises(OntapError) as info:
        await make_client(app).list_aws_kms()
    assert info.value.kind is ErrorKind.PROTOCOL
    assert hosts == ["east-01.example.com"]


async def test_key_stores_fall_back_to_legacy_fields() -> None:
    """A 9.12/9.13 cluster rejecting scope/enabled is asked again without them (and
    without `state`, which only 9.16.1 has); the next lookup asks with those at once."""
    fields: list[str] = []

    def app(request: httpx.Request) -> httpx.Response:
        fields.append(request.url.params["fields"])
        if "enabled" in request.url.params["fields"]:
            return ontap_error(400, "262197", 'Unexpected argument "enabled".')
        record = {"uuid": "k1", "svm": {"name": "vs1"}, "type": "aws", "state": "active"}
        return httpx.Response(200, json={"records": [record], "num_records": 1})

    client = make_client(app)
    stores = await client.list_key_stores()
    assert [(s.uuid, s.state, s.enabled) for s in stores] == [("k1", "active", None)]
    assert fields == [
        "uuid,svm,scope,type,enabled,state",
        "uuid,svm,scope,type,enabled",
        "uuid,svm,type",
    ]
    await client.list_key_stores()
    assert fields[3:] == ["uuid,svm,type"]


async def test_find_jobs_filters_by_description_and_since() -> None:
    """Jobs started before `since` are dropped; unstarted ones kept."""
    since = datetime(2024, 5, 1, 12, tzinfo=UTC)
    records = [
        {"uuid": "old", "state": "success", "start_time": "2024-05-01T11:59:00Z"},
        {"uuid": "new", "state": "running", "start_time": "2024-05-01T12:00:01Z"},
        {"uuid": "queued", "state": "queued"},
    ]
    seen: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"records": records, "num_records": 3})

    desc = "POST /api/security/aws-kms/u1/rekey-external"
    jobs = await make_client(app).find_jobs(description=desc, since=since)
    assert [job.uuid for job in jobs] == ["new", "queued"]
    assert seen[0].url.params["description"] == desc


# -- the rekey POST -----------------------------------------------------------------------


def rekey_app(status: int, body: object | None) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if body is None:
            return httpx.Response(status)
        return httpx.Response(status, json=body)

    return app, seen


async def test_rekey_202_returns_job_uuid_and_sends_return_timeout() -> None:
    """202: the job uuid to follow; return_timeout and the key id are always sent."""
    job = {"uuid": "j1", "_links": {"self": {"href": "/api/cluster/jobs/j1"}}}
    app, seen = rekey_app(202, {"job": job})
    sub = await make_client(app).rekey_external("u1", "key-1", return_timeout=0)
    assert sub == RekeySubmission(202, None, "j1")
    assert not sub.finished
    assert seen[0].method == "POST"
    assert seen[0].url.path == "/api/security/aws-kms/u1/rekey-external"
    assert seen[0].url.params["return_timeout"] == "0"
    assert json.loads(seen[0].content) == {"key_id": "key-1"}


@pytest.mark.parametrize(
    ("status", "body", "finished", "job_uuid"),
    [
        (201, None, True, None),
        (201, {}, True, None),
        (200, {"job": {"uuid": "j", "state": "success", "code": 0}}, True, "j"),
        (200, {"job": {"uuid": "j", "state": "running"}}, False, "j"),
        (201, {"job": {"uuid": "j"}}, False, "j"),  # no state: follow the job
    ],
)
async def test_rekey_200_201(status: int, body: object, finished: bool, job_uuid: str) -> None:
    """200/201 finish unless they name a job that has not ended (or whose state is unknown)."""
    app, _ = rekey_app(status, body)
    sub = await make_client(app).rekey_external("u1", "k", return_timeout=30)
    assert (sub.status, sub.finished, sub.job_uuid) == (status, finished, job_uuid)


async def test_rekey_202_without_job_is_uncertain_protocol() -> None:
    """A 202 that names no job cannot be followed: PROTOCOL, and it may have taken effect."""
    app, _ = rekey_app(202, {})
    with pytest.raises(OntapError) as info:
        await make_client(app).rekey_external("u1", "k", return_timeout=0)
    assert (info.value.kind, info.value.maybe_sent) == (ErrorKind.PROTOCOL, True)


async def test_rekey_return_timeout_is_validated() -> None:
    """ONTAP accepts 0..120: anything else is a programming error."""
    app, seen = rekey_app(201, None)
    with pytest.raises(ValueError, match="return_timeout"):
        await make_client(app).rekey_external("u1", "k", return_timeout=121)
    assert seen == []


def test_job_error_carries_the_job_code() -> None:
    """A failed job becomes a JOB OntapError with its code and message."""
    job = Job.from_json({"uuid": "j", "state": "failure", "code": 65537919, "message": "m"})
    err = job_error("east-01", job)
    assert (err.kind, err.code, err.message, err.maybe_sent) == (
        ErrorKind.JOB,
        "65537919",
        "m",
        True,
    )


# -- error translation ---------------------------------------------------------------------


async def test_error_body_code_and_message() -> None:
    """An ONTAP error body gives status, code (normalised), message; nothing was taken."""

    def app(request: httpx.Request) -> httpx.Response:
        return ontap_error(409, 65537610, "keystore is being switched")

    with pytest.raises(OntapError) as info:
        await make_client(app).rekey_external("u1", "k", return_timeout=0)
    err = info.value
    assert (err.kind, err.status, err.code, err.maybe_sent) == (
        ErrorKind.HTTP,
        409,
        "65537610",
        False,
    )
    assert err.message == "keystore is being switched"
    assert (err.cluster, err.operation) == ("east-01", "rekey_external")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None)],
)
async def test_retry_after_seconds(header: str, expected: float | None) -> None:
    """Retry-After in seconds is parsed; garbage gives None."""

    def app(request: httpx.Request) -> httpx.Response:
        return ontap_error(429, "262160", "too many requests", **{"Retry-After": header})

    with pytest.raises(OntapError) as info:
        await make_client(app).list_key_stores()
    assert info.value.retry_after == expected


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP date is seconds from now."""
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    later = now + timedelta(seconds=5)
    assert parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), now=now) == 5.0


@pytest.mark.parametrize(
    ("response", "status", "says"),
    [
        (httpx.Response(502, text="<html>Bad gateway</html>"), 502, "HTTP 502 without an ONTAP"),
        (httpx.Response(500, json={"message": "not ontap"}), 500, "HTTP 500 without an ONTAP"),
        (httpx.Response(200, text="{not json"), 200, "invalid JSON in the response"),
        (httpx.Response(200, json=["a list"]), 200, "expected a JSON object, got list"),
    ],
    ids=["html", "foreign-json", "bad-json", "wrong-shape"],
)
async def test_garbage_is_protocol(response: httpx.Response, status: int, says: str) -> None:
    """A body that is not ONTAP's becomes PROTOCOL with the status and a short message
    saying what was wrong (a 200's parse error kept as the cause), never the body."""
    with pytest.raises(OntapError) as info:
        await make_client(lambda request: response).cluster_info()
    err = info.value
    assert (err.kind, err.status, err.maybe_sent) == (ErrorKind.PROTOCOL, status, False)
    assert says in err.message and len(err.message) < 200
    assert "Bad gateway" not in err.message and "not ontap" not in err.message
    assert isinstance(err.__cause__, ValueError) is (status == 200)


async def test_gateway_504_to_the_post_may_have_been_sent() -> None:
    """A gateway's 504 to the rekey says nothing about ONTAP: maybe_sent."""
    client = make_client(lambda request: httpx.Response(504, text="Gateway Timeout"))
    with pytest.raises(OntapError) as info:
        await client.rekey_external("u1", "k", return_timeout=0)
    assert (info.value.kind, info.value.maybe_sent) == (ErrorKind.PROTOCOL, True)


async def test_get_job_bare_404_has_code_4() -> None:
    """An expired job (404 without a body) is status 404, code "4"."""
    with pytest.raises(OntapError) as info:
        await make_client(lambda request: httpx.Response(404)).get_job("j1")
    assert (info.value.status, info.value.code) == (404, "4")


def raiser(exc: Exception) -> Handler:
    def app(request: httpx.Request) -> httpx.Response:
        raise exc

    return app


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("t"), httpx.PoolTimeout("p")],
    ids=lambda e: type(e).__name__,
)
async def test_connect_failures_never_sent(exc: Exception) -> None:
    """Refused, connect timeout, pool timeout: CONNECT, never sent, even for a POST."""
    with pytest.raises(OntapError) as info:
        await make_client(raiser(exc)).rekey_external("u1", "k", return_timeout=0)
    assert (info.value.kind, info.value.maybe_sent) == (ErrorKind.CONNECT, False)
    assert info.value.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("t"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("Server disconnected"),
        httpx.WriteError("broken pipe"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_drop_after_post_is_sent(exc: Exception) -> None:
    """A read timeout or drop during the POST: SENT, maybe_sent True."""
    with pytest.raises(OntapError) as info:
        await make_client(raiser(exc)).rekey_external("u1", "k", return_timeout=0)
    assert (info.value.kind, info.value.maybe_sent) == (ErrorKind.SENT, True)


async def test_drop_during_get_is_harmless() -> None:
    """The same drop on a GET changed nothing: maybe_sent False."""
    with pytest.raises(OntapError) as info:
        await make_client(raiser(httpx.ReadTimeout("t"))).get_job("j1")
    assert (info.value.kind, info.value.maybe_sent) == (ErrorKind.SENT, False)


async def test_certificate_failure_is_tls_with_ca_bundle_hint() -> None:
    """A verification failure under ConnectError is TLS, naming the cluster and ca_bundle."""
    cause = ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
    exc = httpx.ConnectError("handshake")
    exc.__cause__ = cause
    with pytest.raises(OntapError) as info:
        await make_client(raiser(exc)).cluster_info()
    err = info.value
    assert err.kind is ErrorKind.TLS
    assert "east-01" in err.message
    assert "ca_bundle" in err.message


async def test_ssl_eof_after_post_is_sent_not_tls() -> None:
    """An ssl error while reading the answer is a drop, not a certificate problem."""
    exc = httpx.ReadError("EOF")
    exc.__cause__ = ssl.SSLEOFError("EOF occurred in violation of protocol")
    with pytest.raises(OntapError) as info:
        await make_client(raiser(exc)).rekey_external("u1", "k", return_timeout=0)
    assert (info.value.kind, info.value.maybe_sent) == (ErrorKind.SENT, True)


async def test_no_secret_in_any_error() -> None:
    """The basic-auth password and its base64 form never reach an error's text."""
    import base64

    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    failures: list[Handler] = [
        raiser(httpx.ConnectError("refused")),
        raiser(httpx.ReadTimeout("timed out")),
        lambda request: ontap_error(401, "6691623", "User is not authorized"),
        lambda request: httpx.Response(500, text="<html>oops</html>"),
        lambda request: httpx.Response(200, text="not json"),
    ]
    for app in failures:
        with pytest.raises(OntapError) as info:
            await make_client(app).rekey_external("u1", "k", return_timeout=0)
        text = f"{info.value} {info.value.message!r}"
        assert PASSWORD not in text
        assert token not in text
