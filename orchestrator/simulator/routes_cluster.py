"""`/api/cluster`, `/api/cluster/nodes`, `/api/svm/svms`."""

from __future__ import annotations

from typing import Any

from orchestrator.simulator.cluster import ClusterState
from orchestrator.simulator.errors import not_found
from orchestrator.simulator.http import Ctx, Response, collection, instance
from orchestrator.simulator.model import Node, Svm
from orchestrator.simulator.query import Resource

VERSION: dict[str, None] = {"full": None, "generation": None, "major": None, "minor": None}
CLUSTER = Resource(
    schema={"name": None, "uuid": None, "version": VERSION, "_links": {"self": {"href": None}}},
    keys=("name", "uuid"),
)
NODE = Resource(
    schema={
        "name": None,
        "uuid": None,
        "state": None,
        "model": None,
        "version": VERSION,
        "_links": {"self": {"href": None}},
    },
    keys=("uuid", "name"),
)
SVM = Resource(
    schema={
        "name": None,
        "uuid": None,
        "state": None,
        "subtype": None,
        "_links": {"self": {"href": None}},
    },
    keys=("uuid", "name"),
)


def version_record(cluster: ClusterState) -> dict[str, Any]:
    """ONTAP's `version {full, generation, major, minor}`."""
    generation, major, minor = cluster.version
    return {
        "full": f"NetApp Release {cluster.version_text}: simulated",
        "generation": generation,
        "major": major,
        "minor": minor,
    }


async def get_cluster(ctx: Ctx) -> Response:
    """GET /api/cluster."""

    def build(cluster: ClusterState, _advanced: bool) -> dict[str, Any]:
        return {
            "name": cluster.name,
            "uuid": cluster.uuid,
            "version": version_record(cluster),
            "_links": {"self": {"href": "/api/cluster"}},
        }

    return instance(ctx, ctx.cluster, build, CLUSTER)


def _node(ctx: Ctx) -> Any:
    def build(node: Node, _advanced: bool) -> dict[str, Any]:
        return {
            "uuid": node.uuid,
            "name": node.name,
            "state": "up" if node.up else "down",
            "model": "SIMBOX",
            "version": version_record(ctx.cluster),
            "_links": {"self": {"href": f"/api/cluster/nodes/{node.uuid}"}},
        }

    return build


async def list_nodes(ctx: Ctx) -> Response:
    """GET /api/cluster/nodes."""
    return collection(ctx, ctx.cluster.nodes, _node(ctx), NODE)


async def get_node(ctx: Ctx) -> Response:
    """GET /api/cluster/nodes/{uuid}."""
    node = next((n for n in ctx.cluster.nodes if n.uuid == ctx.args["uuid"]), None)
    if node is None:
        raise not_found("uuid")
    return instance(ctx, node, _node(ctx), NODE)


def svm_record(svm: Svm, _advanced: bool) -> dict[str, Any]:
    """A data SVM record."""
    return {
        "uuid": svm.uuid,
        "name": svm.name,
        "state": svm.state,
        "subtype": svm.subtype,
        "_links": {"self": {"href": f"/api/svm/svms/{svm.uuid}"}},
    }


async def list_svms(ctx: Ctx) -> Response:
    """GET /api/svm/svms (data SVMs only, as ONTAP lists them)."""
    return collection(ctx, ctx.cluster.svms, svm_record, SVM)


async def get_svm(ctx: Ctx) -> Response:
    """GET /api/svm/svms/{uuid}."""
    svm = ctx.cluster.svm_by_uuid.get(ctx.args["uuid"])
    if svm is None:
        raise not_found("uuid")
    return instance(ctx, svm, svm_record, SVM)
