"""`ontap-rekey simulate`: serve a simulated fleet on loopback until interrupted.

Each cluster listens on its own port of `--host` (or, with `--address-per-cluster`, on its
own 127.1.x.y address); unreachable clusters (a scenario fault) hold a port that refuses
connections. The command prints where each cluster listens, writes an inventory for the
fleet (`--write-inventory`) and a machine-readable ready file (`--ready-file`: JSON with
every URL, written atomically once all clusters listen, removed on exit), then serves
until SIGINT or SIGTERM and exits 0. The same command runs as
`python -m orchestrator.simulator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import re
import resource
import shlex
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import click
import yaml
from pydantic import ValidationError

from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.inventory_model import is_loopback_address
from orchestrator.errors import UserError
from orchestrator.simulator.fleet import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    DEFAULT_VERSION,
    Fleet,
    FleetSpec,
    KeyManager,
)
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, start_simulation
from orchestrator.simulator.tls import FleetTls

DEFAULT_CLUSTERS = 3
DEFAULT_SVMS = 5
LISTED_IN_FULL = 12  # bigger fleets get a compact summary (the ready file has every URL)
READY_LINE = "simulator ready"
KEY_MANAGERS = ("aws", "azure", "gcp", "barbican")
VERSION_PATTERN = re.compile(r"\d+\.\d+(\.\d+)?")


@dataclass(frozen=True)
class ServeOptions:
    """Where and how to serve, after the command line was checked."""

    host: str
    base_port: int
    address_per_cluster: bool
    tls: bool
    tls_dir: Path | None
    inventory: Path | None
    explicit_svms: bool
    ready_file: Path | None


@click.command(name="simulate")
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fleet file (YAML); instead of --clusters/--svms.",
)
@click.option(
    "--clusters", type=click.IntRange(1), help=f"Clusters to generate [{DEFAULT_CLUSTERS}]."
)
@click.option(
    "--svms", type=click.IntRange(0), help=f"SVMs per generated cluster [{DEFAULT_SVMS}]."
)
@click.option(
    "--versions",
    help="ONTAP versions of generated clusters, round-robin (e.g. 9.12.1,9.16.1) [9.14.1].",
)
@click.option(
    "--key-managers",
    help="Cloud key managers of generated SVMs, round-robin (aws,azure,gcp,barbican) [aws].",
)
@click.option(
    "--scenario",
    "scenario_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scenario file (YAML): faults per cluster or SVM.",
)
@click.option(
    "--write-inventory",
    "inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write an inventory for the fleet to PATH.",
)
@click.option(
    "--explicit-svms",
    is_flag=True,
    help="List every SVM in the written inventory instead of 'svms: all'.",
)
@click.option("--tls", is_flag=True, help="Serve HTTPS with a generated CA.")
@click.option(
    "--tls-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write ca.pem [beside the inventory, else a temporary folder].",
)
@click.option(
    "--username", default=DEFAULT_USERNAME, show_default=True, help="Login of generated clusters."
)
@click.option(
    "--password",
    default=DEFAULT_PASSWORD,
    show_default=True,
    envvar=PASSWORD_ENV,
    help=f"Password of generated clusters (or ${PASSWORD_ENV}).",
)
@click.option("--seed", type=int, help="Seed for the fault draws [the scenario's, else 0].")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on."
)
@click.option(
    "--base-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Cluster i listens on BASE_PORT+i (0: ports from the OS).",
)
@click.option(
    "--address-per-cluster", is_flag=True, help="Give each cluster its own 127.1.x.y address."
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write JSON with every URL here once listening.",
)
def command(
    fleet_file: Path | None,
    clusters: int | None,
    svms: int | None,
    versions: str | None,
    key_managers: str | None,
    scenario_file: Path | None,
    inventory: Path | None,
    explicit_svms: bool,
    tls: bool,
    tls_dir: Path | None,
    username: str,
    password: str,
    seed: int | None,
    host: str,
    base_port: int,
    address_per_cluster: bool,
    ready_file: Path | None,
) -> int:
    """Serve a simulated fleet of ONTAP clusters on loopback until interrupted."""
    _check_loopback(host)
    generated = Generated(_versions(versions), _key_managers(key_managers))
    spec = _fleet_spec(fleet_file, clusters, svms, username, password, generated)
    scenario = _scenario(scenario_file)
    options = ServeOptions(
        host, base_port, address_per_cluster, tls, tls_dir, inventory, explicit_svms, ready_file
    )
    _raise_open_file_limit()
    try:
        asyncio.run(_serve(Fleet(spec, scenario, seed), options))
    except OSError as exc:
        if exc.errno not in {errno.EADDRINUSE, errno.EADDRNOTAVAIL}:
            raise
        raise UserError(
            f"cannot listen on {host} (--base-port {base_port}): {exc.strerror}"
        ) from None
    return int(ExitCode.OK)


# -- parsing the command line -----------------------------------------------------------


def _check_loopback(host: str) -> None:
    if not is_loopback_address(host):
        raise UserError(
            f"--host {host}: the simulator listens on loopback addresses only (127.0.0.0/8 or ::1)"
        )


def _versions(text: str | None) -> list[str] | None:
    """`9.12.1,9.16.1` -> the list; a malformed entry is a one-line error."""
    if text is None:
        return None
    versions = [part.strip() for part in text.split(",") if part.strip()]
    for version in versions:
        if not VERSION_PATTERN.fullmatch(version):
            raise UserError(f"--versions: {version!r} is not an ONTAP version like 9.14.1")
    if not versions:
        raise UserError("--versions: give at least one version, like 9.14.1")
    return versions


def _key_managers(text: str | None) -> list[KeyManager] | None:
    """`aws,azure,gcp` -> the list; an unknown provider is a one-line error."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UserError("--key-managers: give at least one of aws, azure, gcp, barbican")
    for name in names:
        if name not in KEY_MANAGERS:
            raise UserError(f"--key-managers: {name!r} is not one of aws, azure, gcp, barbican")
    return cast("list[KeyManager]", names)


@dataclass(frozen=True)
class Generated:
    """What only a generated fleet takes: versions and key managers, round-robin."""

    versions: list[str] | None = None
    key_managers: list[KeyManager] | None = None


def _fleet_spec(
    fleet_file: Path | None,
    clusters: int | None,
    svms: int | None,
    username: str,
    password: str,
    generated: Generated = Generated(),  # frozen: a shared default is safe
) -> FleetSpec:
    if fleet_file is None:
        return FleetSpec.generate(
            clusters or DEFAULT_CLUSTERS,
            DEFAULT_SVMS if svms is None else svms,
            username=username,
            password=password,
            versions=generated.versions or (DEFAULT_VERSION,),
            key_managers=generated.key_managers or ("aws",),
        )
    if clusters is not None or svms is not None or generated != Generated():
        raise UserError(
            "--fleet and --clusters/--svms/--versions/--key-managers exclude each other "
            "(a fleet file sets `version:` and `key_managers:` per cluster)"
        )
    try:
        return FleetSpec.from_yaml(_read(fleet_file))
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(*_error_lines(fleet_file, exc)) from None


def _scenario(scenario_file: Path | None) -> Scenario | None:
    if scenario_file is None:
        return None
    try:
        return Scenario.from_yaml(_read(scenario_file))
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(*_error_lines(scenario_file, exc)) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None


def _error_lines(path: Path, exc: Exception) -> list[str]:
    """One line per problem: `file: dotted.path: message`."""
    if isinstance(exc, ValidationError):
        return [
            f"{path}: {'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        ]
    return [f"{path}: {' '.join(str(exc).split())}"]


def _raise_open_file_limit() -> None:
    """One listening socket per cluster plus the connections: lift the soft fd limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- serving ----------------------------------------------------------------------------


async def _serve(fleet: Fleet, options: ServeOptions) -> None:
    """Start every listener, announce them, serve until SIGINT/SIGTERM, shut down."""
    with _tls_folder(options) as tls_dir:
        tls = FleetTls(tls_dir) if tls_dir is not None else None
        simulation = await start_simulation(
            fleet,
            host=options.host,
            base_port=options.base_port,
            tls=tls,
            address_per_cluster=options.address_per_cluster,
        )
        try:
            _announce(simulation, options)
            await _until_signalled()
        finally:
            if options.ready_file is not None:
                options.ready_file.unlink(missing_ok=True)
            await simulation.aclose()
            click.echo("simulator stopped.")


@contextlib.contextmanager
def _tls_folder(options: ServeOptions) -> Iterator[Path | None]:
    """Where the CA goes: --tls-dir, else beside the inventory, else a temporary folder."""
    if not options.tls:
        yield None
    elif options.tls_dir is not None:
        yield options.tls_dir
    elif options.inventory is not None:
        yield options.inventory.parent / f"{options.inventory.stem}-tls"
    else:
        with tempfile.TemporaryDirectory(prefix="ontap-sim-tls-") as tmp:
            yield Path(tmp)


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def _announce(simulation: Simulation, options: ServeOptions) -> None:
    """Print where the fleet listens, write the inventory and the ready file."""
    fleet = simulation.fleet
    svm_count = sum(len(c.svms) for c in fleet.spec.clusters)
    scheme = "https" if options.tls else "http"
    click.echo(f"ontap-rekey simulator: {len(fleet.clusters)} clusters, {svm_count} SVMs, {scheme}")
    for line in _listing(simulation):
        click.echo(f"  {line}")
    click.echo(f"ground truth: {simulation.stats_url}")
    if simulation.ca_pem_path is not None:
        click.echo(f"CA bundle: {simulation.ca_pem_path}")
    if options.inventory is not None:
        write_inventory(
            options.inventory,
            fleet.spec,
            simulation.urls,
            ca_bundle=simulation.ca_pem_path,
            svms="explicit" if options.explicit_svms else "all",
        )
        click.echo(f"inventory: {options.inventory}")
        click.echo(f"export {PASSWORD_ENV}={shlex.quote(_password(fleet))}")
    if options.ready_file is not None:
        _write_ready_file(options.ready_file, simulation, options)
    click.echo(f"{READY_LINE}: serving until interrupted (Ctrl-C)")


def _listing(simulation: Simulation) -> list[str]:
    """One line per cluster; the first and last few of a big fleet."""
    lines = [
        f"{name}  {url}"
        + ("  (unreachable: connections refused)" if name in simulation.unreachable else "")
        for name, url in simulation.urls.items()
    ]
    if len(lines) <= LISTED_IN_FULL:
        return lines
    hidden = len(lines) - 4
    return [*lines[:3], f"... {hidden} more (every URL is in --ready-file) ...", lines[-1]]


def _password(fleet: Fleet) -> str:
    return fleet.spec.clusters[0].password if fleet.spec.clusters else DEFAULT_PASSWORD


def _write_ready_file(path: Path, simulation: Simulation, options: ServeOptions) -> None:
    """JSON with every URL, written atomically (a reader never sees half of it)."""
    document: dict[str, Any] = {
        "pid": os.getpid(),
        "urls": simulation.urls,
        "unreachable": list(simulation.unreachable),
        "stats_url": simulation.stats_url,
        "ca_bundle": str(simulation.ca_pem_path) if simulation.ca_pem_path else None,
        "inventory": str(options.inventory) if options.inventory else None,
        "password_env": PASSWORD_ENV,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
