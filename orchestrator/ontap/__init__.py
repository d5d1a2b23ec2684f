"""The ONTAP boundary: the typed REST client, its records and the HTTP client factory.

`connect.build_http_client()` builds one `httpx.AsyncClient` per cluster (auth, TLS,
timeouts); `client.OntapClient` wraps it with typed calls and turns every failure into
`orchestrator.core.errors.OntapError`.
"""
