"""The route table: path templates to handlers, matched by segment count then segments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.simulator import routes_cluster as cl
from orchestrator.simulator import routes_jobs as jobs
from orchestrator.simulator import routes_keymanagers as km
from orchestrator.simulator import routes_keystores as ks
from orchestrator.simulator import routes_kms as kms
from orchestrator.simulator.http import Handler
from orchestrator.simulator.personality import KEY_STORE_CONFIGURATION
from orchestrator.simulator.providers import PROVIDERS, Provider


@dataclass(frozen=True)
class Route:
    """One path template (`{name}` segments capture), its handlers by method, and the
    first ONTAP version that has it (`since`; older clusters answer 404 "API not found")."""

    template: str
    methods: Mapping[str, Handler]
    since: tuple[int, ...] = ()
    parts: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.template.strip("/").split("/")))

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """The captured segments if `parts` fit this template."""
        args: dict[str, str] = {}
        for want, got in zip(self.parts, parts, strict=True):
            if want.startswith("{"):
                args[want[1:-1]] = got
            elif want != got:
                return None
        return args


def _provider_routes(provider: Provider) -> list[Route]:
    """A cloud key manager's collection, instance and rekey actions, each from its version."""
    base = f"/api/security/{provider.collection}"
    routes = [
        Route(base, {"GET": kms.list_handler(provider)}, since=provider.collection_since),
        Route(
            f"{base}/{{uuid}}", {"GET": kms.get_handler(provider)}, since=provider.collection_since
        ),
        Route(
            f"{base}/{{uuid}}/rekey-internal",
            {"POST": kms.rekey_handler(provider, "internal")},
            since=provider.internal_since,
        ),
    ]
    if provider.external_since is not None:
        routes.append(
            Route(
                f"{base}/{{uuid}}/rekey-external",
                {"POST": kms.rekey_handler(provider, "external")},
                since=provider.external_since,
            )
        )
    return routes


ROUTES = (
    Route("/api/cluster", {"GET": cl.get_cluster}),
    Route("/api/cluster/nodes", {"GET": cl.list_nodes}),
    Route("/api/cluster/nodes/{uuid}", {"GET": cl.get_node}),
    Route("/api/svm/svms", {"GET": cl.list_svms}),
    Route("/api/svm/svms/{uuid}", {"GET": cl.get_svm}),
    Route("/api/cluster/jobs", {"GET": jobs.list_jobs}),
    Route("/api/cluster/jobs/{uuid}", {"GET": jobs.get_job}),
    Route("/api/security/key-stores", {"GET": ks.list_key_stores}),
    Route(
        "/api/security/key-stores/{uuid}",
        {"GET": ks.get_key_store, "PATCH": ks.patch_key_store},
        since=KEY_STORE_CONFIGURATION,
    ),
    Route("/api/security/key-managers", {"GET": km.list_key_managers}),
    Route("/api/security/key-managers/{uuid}", {"GET": km.get_key_manager}),
    Route("/api/security/key-managers/{uuid}/migrate", {"POST": km.migrate}),
    *(route for provider in PROVIDERS.values() for route in _provider_routes(provider)),
)

_BY_LENGTH: dict[int, list[Route]] = {}
for _route in ROUTES:
    _BY_LENGTH.setdefault(len(_route.parts), []).append(_route)


def match(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for a request path and its captured segments, or None."""
    parts = path.strip("/").split("/")
    for route in _BY_LENGTH.get(len(parts), ()):
        args = route.match(parts)
        if args is not None:
            return route, args
    return None
