"""The mutable state of one simulated cluster."""

from __future__ import annotations

import random
from collections import Counter, deque
from fnmatch import fnmatchcase
from functools import cached_property
from typing import TYPE_CHECKING, Any

from orchestrator.simulator.jobs import Failure, Job, JobState, new_job_uuid
from orchestrator.simulator.model import CLUSTER_SCOPE, KmsConfig, Node, Svm, stable_uuid
from orchestrator.simulator.personality import Personality
from orchestrator.simulator.providers import AWS, PROVIDERS, Provider
from orchestrator.simulator.scenario import KeystoreState

if TYPE_CHECKING:
    from orchestrator.simulator.fleet import ClusterDef
    from orchestrator.simulator.policy import ClusterPolicy
    from orchestrator.simulator.timebase import Timebase

# What a health fault does to an external rekey (docs/simulator.md, "ONTAP as documented")
EXTERNAL_REKEY_FAILED = Failure(65537919, "External rekey failed on one or more nodes.")
NODES_OFFLINE = Failure(65537566, "Rekey cannot be performed: not all nodes are online.")
KEY_STORE_BLOCKED = Failure(
    65537556, "The key manager is blocked: rekey cannot be performed on the SVM."
)


def parse_version(text: str) -> tuple[int, int, int]:
    """`"9.14.1"` -> `(9, 14, 1)`; a missing minor is 0."""
    parts = [int(p) for p in text.split(".")]
    return (parts[0], parts[1], parts[2] if len(parts) > 2 else 0)


class ClusterState:
    """One cluster: identity, accounts, counters, and (built on first use) its SVMs,
    configurations and jobs. Building lazily keeps a 1,000-cluster fleet cheap to start."""

    def __init__(
        self, definition: ClusterDef, policy: ClusterPolicy, seed: int, timebase: Timebase
    ) -> None:
        self.definition = definition
        self.policy = policy
        self.seed = seed
        self.timebase = timebase
        self.name = definition.name
        self.uuid = stable_uuid(self.name)
        self.version_text = policy.version or definition.version
        self.version = parse_version(self.version_text)
        self.personality = Personality(self.version)
        self.unreachable = policy.unreachable
        self.users = self._accounts()
        self.tokens = frozenset(definition.tokens)
        self.rng = random.Random(f"{seed}:{self.name}")
        self.in_flight = 0
        self.peak_requests = 0
        self.peak_rekeys = 0
        self.rekey_spans: list[tuple[float, float]] = []  # (start, end) of every rekey job
        self.failed_logins = 0
        self.user_failures: Counter[str] = Counter()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.jobs: dict[str, Job] = {}
        self._active: list[Job] = []
        self._ended: deque[Job] = deque()

    @property
    def password(self) -> str:
        """The main account's password on this cluster (differs under `wrong_password`)."""
        return self.users[self.definition.username]

    @property
    def has_aws_kms_api(self) -> bool:
        """ONTAP 9.12 added the aws-kms endpoints."""
        return self.personality.has_aws_kms_api

    @property
    def accepts_tokens(self) -> bool:
        """OAuth 2.0 bearer tokens work from 9.14."""
        return self.personality.accepts_tokens

    @cached_property
    def key_manager_uuid(self) -> str:
        """The admin SVM's key manager (`/api/security/key-managers`): a migration's source."""
        return stable_uuid(self.name, "key-manager")

    def _accounts(self) -> dict[str, str]:
        password = self.definition.password
        if self.policy.wrong_password:
            password = self.policy.password or f"{password}-rotated"
        return {**self.definition.users, self.definition.username: password}

    # -- inventory, built on first use -------------------------------------------------

    @cached_property
    def nodes(self) -> list[Node]:
        """The cluster's nodes, `<cluster>-01` ..."""
        count = self.definition.nodes
        names = [f"{self.name}-{i:02d}" for i in range(1, count + 1)]
        return [
            Node(
                name=name,
                uuid=stable_uuid(self.name, "node", str(i)),
                up=not any(fnmatchcase(name, glob) for glob in self.policy.down_nodes),
            )
            for i, name in enumerate(names, start=1)
        ]

    @cached_property
    def admin_svm(self) -> Svm:
        """The admin SVM, named after the cluster; owns the cluster-scoped configuration."""
        return Svm(name=self.name, uuid=stable_uuid(self.name, "admin"), subtype="admin")

    @cached_property
    def svms(self) -> list[Svm]:
        """The data SVMs in fleet-file order, each with its AWS KMS configuration or None."""
        svms = []
        for name in self.definition.svms:
            svm = Svm(name=name, uuid=stable_uuid(self.name, "svm", name))
            if not self._has_fact(name, "no_aws_kms"):
                provider = PROVIDERS[self.definition.key_managers.get(name, "aws")]
                svm.kms = self._config(svm, "svm", provider)
            svms.append(svm)
        return svms

    @cached_property
    def configs(self) -> list[KmsConfig]:
        """Every AWS KMS configuration: the cluster-scoped one first, then per SVM."""
        configs = [svm.kms for svm in self.svms if svm.kms is not None]
        if self.definition.include_cluster_scope or self.policy.cluster_scope:
            self.admin_svm.kms = self._config(self.admin_svm, "cluster")
            configs.insert(0, self.admin_svm.kms)
        return configs

    @cached_property
    def config_by_uuid(self) -> dict[str, KmsConfig]:
        """Configurations by uuid: the per-request lookup."""
        return {config.uuid: config for config in self.configs}

    @cached_property
    def svm_by_uuid(self) -> dict[str, Svm]:
        """Data SVMs by uuid."""
        return {svm.uuid: svm for svm in self.svms}

    def _has_fact(self, svm: str, kind: str) -> bool:
        return any(f.kind == kind for f in self.policy.svm_facts(self.name, svm))

    def _config(self, svm: Svm, scope: str, provider: Provider = AWS) -> KmsConfig:
        target_svm = CLUSTER_SCOPE if scope == "cluster" else svm.name
        config = KmsConfig(
            uuid=stable_uuid(self.name, provider.collection, target_svm),
            cluster=self.name,
            svm=svm,
            scope=scope,
            provider=provider,
            key_id=provider.key_value(self.name, target_svm),
            faults=tuple(f for f in self.policy.rekey_faults if f.matches(self.name, target_svm)),
            rate_faults=tuple(
                f for f in self.policy.rate_faults if f.matches(self.name, target_svm)
            ),
            job_duration=self.policy.job_duration_for(self.name, target_svm),
            rng=random.Random(f"{self.seed}:{self.name}/{target_svm}"),
        )
        self._apply_svm_facts(config, target_svm)
        return config

    def _apply_svm_facts(self, config: KmsConfig, svm: str) -> None:
        unreachable: set[str] = set()
        for fact in self.policy.svm_facts(self.name, svm):
            if fact.kind == "amazon_unreachable":
                config.amazon_reachable = False
            elif fact.kind == "ekmip_unreachable":
                unreachable.update(n.name for n in self.nodes if fnmatchcase(n.name, fact.node))
            elif fact.kind == "keystore_state":
                config.state_override = fact.state
            elif fact.kind == "keystore_disabled":
                config.enabled = False
            if fact.as_ is not None:
                config.health_path = fact.as_
        config.ekmip_unreachable = frozenset(unreachable)

    # -- jobs --------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Apply the effects of every job that ended by `now`; forget expired jobs."""
        if self._active:
            still = []
            for job in self._active:
                if job.end_at <= now:
                    self._finish(job)
                else:
                    still.append(job)
            self._active = still
        expiry = self.policy.options.job_expiry_s
        while self._ended and self._ended[0].end_at + expiry <= now:
            self.jobs.pop(self._ended.popleft().uuid, None)

    def start_rekey(
        self,
        config: KmsConfig,
        key_id: str | None,
        failure: Failure | None,
        now: float,
        operation: str = "external",
    ) -> Job:
        """Accept a rekey: create its job (behind the running one, if any: `busy_rekey:
        queue`), mark the configuration busy, record it."""
        options = self.policy.options
        ahead = (
            config.running if config.running is not None and not config.running.settled else None
        )
        begins = max(now, ahead.end_at) if ahead is not None else now
        duration = config.job_duration.draw(config.rng)
        description = (
            options.job_description.replace("{uuid}", config.uuid)
            .replace("{collection}", config.provider.collection)
            .replace("{operation}", operation)
        )
        job = Job(
            uuid=new_job_uuid(config.rng.getrandbits(128)),
            config=config,
            key_id=key_id if key_id is not None else config.key_id,
            node=self.nodes[0],
            created_at=now,
            start_at=begins,
            end_at=begins + duration,
            failure=failure,
            description=description or None,
            after=ahead if ahead is not None and not ahead.settled else None,
            kind="rekey" if operation == "external" else "rekey_internal",
            paused_fraction=options.paused_fraction,
            running_code=options.running_job_code,
        )
        job.stats_entry = {
            "time": self.timebase.iso(now),
            "key_id": key_id,
            "job_uuid": job.uuid,
            "outcome": JobState.RUNNING.value,
            "provider": config.provider.name,
            "operation": operation,
            "status": 0,  # the POST's HTTP status, set when it is answered (0: dropped)
        }
        config.rekeys.append(job.stats_entry)
        config.running = job
        self._add(job)
        self.rekey_spans.append((begins, job.end_at))
        self.peak_rekeys = max(self.peak_rekeys, self._running_rekeys(now))
        return job

    def start_migrate(self, config: KmsConfig, now: float) -> Job:
        """Accept a key migration into `config`'s SVM: it clears keys_in_admin_svm."""
        job = Job(
            uuid=new_job_uuid(config.rng.getrandbits(128)),
            config=config,
            key_id=config.key_id,
            node=self.nodes[0],
            created_at=now,
            end_at=now + config.job_duration.draw(config.rng),
            failure=None,
            description=f"POST /api/security/key-managers/{self.key_manager_uuid}/migrate",
            kind="migrate",
        )
        self._add(job)
        return job

    def _add(self, job: Job) -> None:
        self.jobs[job.uuid] = job
        self._active.append(job)
        self._active.sort(key=lambda j: j.end_at)  # settle in the order jobs end

    def _running_rekeys(self, now: float) -> int:
        return sum(1 for j in self._active if j.kind != "migrate" and j.begins <= now < j.end_at)

    def finish_now(self, job: Job) -> None:
        """Settle a job whose end the caller has waited for (clock-skew proof), and every
        job that ended before it (a queued rekey applies after the one it waited for)."""
        if job.settled:
            return
        done = [j for j in self._active if j.end_at <= job.end_at or j is job]
        self._active = [j for j in self._active if j not in done]
        for ended in done:
            self._finish(ended)

    def _finish(self, job: Job) -> None:
        job.settled = True
        config = job.config
        self._ended.append(job)
        if job.kind == "migrate":
            config.cleared.add("keys_in_admin_svm")
            return
        if job.failure is None and job.kind == "rekey":  # an internal rekey keeps the key id
            config.key_id = job.key_id
            config.key_version += 1
        job.stats_entry["outcome"] = job.state(job.end_at).value
        if config.running is job:
            config.running = None

    def job(self, uuid: str, now: float) -> Job | None:
        """The job record if it exists and has not expired."""
        job = self.jobs.get(uuid)
        if job is None or job.end_at + self.policy.options.job_expiry_s <= now:
            return None
        return job

    def keystore_state(self, config: KmsConfig, now: float) -> KeystoreState:
        """The state /key-stores shows for a configuration at `now`."""
        job = config.running  # the newest rekey; queued ones point at the one ahead
        while job is not None and not job.settled:
            if job.begins <= now < job.end_at:
                return "svm_kek_rekey"
            job = job.after
        return config.shown_state(self.timebase.elapsed(now)) or "active"

    def health_failure(
        self, config: KmsConfig, operation: str = "external"
    ) -> tuple[str, Failure] | None:
        """How a rekey fails on this configuration's health, if it does: (`sync` | `job`,
        failure). A blocked key store refuses the POST; an internal rekey with a node down
        is refused (65537566); for an external one, an unreachable cloud service, key
        servers or a node down fail the job on those nodes."""
        if config.state_override == "blocked":
            return config.health_path or "sync", KEY_STORE_BLOCKED
        nodes_down = any(not node.up for node in self.nodes)
        if operation == "internal":
            return (config.health_path or "sync", NODES_OFFLINE) if nodes_down else None
        if not config.amazon_reachable or config.ekmip_unreachable or nodes_down:
            code = config.provider.external_failed_code
            failure = (
                EXTERNAL_REKEY_FAILED
                if code == 65537919
                else Failure(
                    code,
                    "External rekey failed on one or more nodes. Try the rekey operation again.",
                )
            )
            return config.health_path or "job", failure
        return None

    # -- ground truth ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """This cluster's counters in the /_sim/stats shape."""
        return {
            "peak_concurrent_requests": self.peak_requests,
            "peak_concurrent_rekeys": self.peak_rekeys,
            "failed_logins": self.failed_logins,
            "requests": [
                {"method": m, "path": p, "status": s, "count": n}
                for (m, p, s), n in sorted(self.requests.items())
            ],
        }
