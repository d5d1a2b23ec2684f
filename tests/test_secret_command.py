"""`password_command` / `token_command`: the argv runs without a shell, stdout stripped is
the secret, registered for redaction at once; every failure is one line naming the cluster."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.core.inventory import BasicAuth, ClusterSpec, TlsSettings
from orchestrator.errors import UserError
from orchestrator.observe.redaction import REDACTED, clear_secrets, register_secret, scrub_text
from orchestrator.ontap.connect import build_http_client
from orchestrator.ontap.secret_command import command_secret, forget_command_secrets


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    forget_command_secrets()
    yield
    forget_command_secrets()
    clear_secrets()


def _python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", f"import os, sys, time\n{code}")


def _secret(argv: tuple[str, ...], timeout_s: float = 30.0) -> str:
    return command_secret("east-01", argv, timeout_s=timeout_s, field="auth.password_command")


def test_stdout_stripped_is_the_secret() -> None:
    assert _secret(_python("print('\\t pw-from-vault-77 \\n')")) == "pw-from-vault-77"


def test_a_command_secret_is_handed_to_on_secret_and_redacted_once_wired() -> None:
    """connect hands the secret to `on_secret` at once; the redactor wired there scrubs it."""
    auth = BasicAuth("admin", password_command=_python("print('pw-from-vault-78')"))
    spec = ClusterSpec(name="c1", base_url="https://c1", auth=auth, tls=TlsSettings(), key_id="k")
    build_http_client(spec, timeout=httpx.Timeout(1.0), on_secret=register_secret)
    assert scrub_text("login with pw-from-vault-78 failed") == f"login with {REDACTED} failed"


def test_no_shell_is_involved() -> None:
    """Shell syntax is passed through as plain arguments, never interpreted."""
    argv = (*_python("print(sys.argv[1])"), "$(echo injected); rm -rf /")
    assert _secret(argv) == "$(echo injected); rm -rf /"


def test_the_same_argv_runs_once_per_process(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    argv = _python(f"open({str(counter)!r}, 'a').write('x'); print('pw-once-31')")
    assert _secret(argv) == _secret(argv) == "pw-once-31"
    assert counter.read_text() == "x"


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("print('pw-leak-1', file=sys.stderr); sys.exit(2)", "exited with status 2"),
        ("print('pw-leak-1'); sys.exit(1)", "exited with status 1"),
        ("print('   ')", "printed nothing"),
        ("sys.stdout.buffer.write(b'\\xff\\xfe')", "printed something that is not UTF-8 text"),
        ("os.kill(os.getpid(), 9)", "was killed by signal 9"),
    ],
)
def test_a_failure_is_one_line_without_the_output(code: str, problem: str) -> None:
    with pytest.raises(UserError) as caught:
        _secret(_python(code))
    (line,) = caught.value.lines
    assert line.startswith(f"east-01: auth.password_command ({sys.executable})")
    assert problem in line
    assert "pw-leak-1" not in line


def test_a_timeout_kills_the_command_and_its_children(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    code = (
        "import subprocess\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(120)"
    )
    with pytest.raises(
        UserError, match=r"did not finish within 0\.5 s \(set auth\.command_timeout\)"
    ):
        _secret(_python(code), timeout_s=0.5)
    pid = int(child_pid.read_text())
    for _ in range(200):  # SIGKILL is delivered asynchronously: give it up to ~10 s
        if not _alive(pid):
            break
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Killed and reaped by init, or a zombie waiting for it: either way not running."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_a_missing_or_not_executable_program_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=r"^east-01: auth.password_command \(nope-cli-x\): program not found"
    ):
        _secret(("nope-cli-x",))
    script = tmp_path / "vault.sh"
    script.write_text("#!/bin/sh\necho pw\n")
    script.chmod(0o600)
    with pytest.raises(UserError, match="program is not executable"):
        _secret((str(script),))
