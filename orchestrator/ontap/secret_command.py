"""Secrets from the administrator's vault: `password_command` / `token_command`.

The argv list runs without a shell (nothing to quote, nothing to inject), with stdin
closed and a timeout (`auth.command_timeout`, 30 s by default); its stdout, stripped of
surrounding whitespace, is the secret. It works with any CLI that prints a secret:
`vault kv get -field=password ...`, `aws secretsmanager get-secret-value --query
SecretString --output text ...`, CyberArk's `ark_ccl`, `pass show ...`.

`connect` hands the secret to its `on_secret` the moment it is read. Failures are one line that
names the cluster and the program, never the secret and never the command's stderr (a
failing vault CLI may echo what it was given); run the command by hand to see its output.
The same argv (e.g. one `defaults: auth:` block for the whole fleet) runs once per process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading

from orchestrator.errors import CredentialError

_cache: dict[tuple[str, ...], str] = {}
_lock = threading.Lock()


def command_secret(cluster: str, argv: tuple[str, ...], *, timeout_s: float, field: str) -> str:
    """The secret `argv` prints; CredentialError naming `cluster` and `field` when it fails."""
    with _lock:
        cached = _cache.get(argv)
        if cached is None:
            cached = _cache[argv] = _run(cluster, argv, timeout_s, field)
    return cached


def forget_command_secrets() -> None:
    """Drop the cached secrets (for tests, and after a run in a long-lived process)."""
    with _lock:
        _cache.clear()


def _run(cluster: str, argv: tuple[str, ...], timeout_s: float, field: str) -> str:
    where = f"{cluster}: {field} ({argv[0]})"
    stdout = _output(where, argv, timeout_s)
    try:
        secret = stdout.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialError(f"{where} printed something that is not UTF-8 text") from None
    if not secret:
        raise CredentialError(f"{where} printed nothing (the secret is read from its stdout)")
    return secret


def _output(where: str, argv: tuple[str, ...], timeout_s: float) -> bytes:
    try:
        process = subprocess.Popen(  # an argv list from the inventory: no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a timeout kills its children too
        )
    except FileNotFoundError:
        raise CredentialError(f"{where}: program not found (check the path or PATH)") from None
    except PermissionError:
        raise CredentialError(
            f"{where}: program is not executable (chmod +x, or check it)"
        ) from None
    except OSError as exc:
        raise CredentialError(f"{where}: cannot run it: {exc.strerror}") from None
    try:
        stdout, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise CredentialError(
            f"{where} did not finish within {timeout_s:g} s (set auth.command_timeout)"
        ) from None
    if process.returncode != 0:
        raise CredentialError(
            f"{where} {_exit_text(process.returncode)} (its stderr is not shown: "
            "it may hold secrets; run the command by hand to see it)"
        )
    return stdout


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have finished meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _exit_text(code: int) -> str:
    if code < 0:
        return f"was killed by signal {-code}"
    return f"exited with status {code}"
