"""``interp-client`` as a person and a script use it: under a real terminal (a pty) the progress bar advances with
the job's events; ``--json`` parses; the exit status says success, a failed job, a bad request or trouble."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from interp_client import Client
from interp_client.cli import EXIT_BAD_REQUEST, EXIT_FAILED, EXIT_OK, EXIT_TROUBLE

from tests.client.conftest import PATCHING, SLOW, Service
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

SCRIPT = Path(sys.executable).with_name("interp-client")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "interp_client"]


def _flags(body: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in body.items():
        args.append("--" + name.replace("_", "-"))
        args.extend(value if isinstance(value, list) else [str(value)])
    return args


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=timeout, check=False)


class Terminal:
    """The command on a pseudo-terminal: stdout and stderr are the tty, as in a person's shell."""

    def __init__(self, *args: str):
        master, slave = os.openpty()
        self._master = master
        self.proc = subprocess.Popen([*COMMAND, *args], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        self._screen = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self._master], [], [], 0.2)
            if not ready:
                if self.proc.poll() is not None:
                    return
                continue
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the command exited and closed the terminal
                return
            if not data:
                return
            with self._lock:
                self._screen.extend(data)

    @property
    def screen(self) -> str:
        with self._lock:
            return self._screen.decode("utf-8", "replace")

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := re.search(pattern, self.screen):
                return found
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} never appeared on:\n{self.screen}")

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        os.close(self._master)
        return code


def test_the_progress_bar_advances_on_a_terminal(service: Service) -> None:
    terminal = Terminal(*service.cli_target, "run", "patching", *_flags(SLOW), "--top", "3")
    assert terminal.finish() == EXIT_OK, terminal.screen
    screen = terminal.screen
    frames = screen.split("\r")
    percentages = {int(m.group(1)) for frame in frames if (m := re.search(r"\]\s+(\d+)%\s+running", frame))}
    assert len(percentages) >= 3 and percentages <= set(range(101)), screen  # 0, 25, 50, 75 as chunks finish
    assert re.search(r"\] 100%\s+succeeded", screen)
    assert "resid_pre: top 3 of" in screen and "mlp_out: top 3 of" in screen
    assert re.search(r"layer\s+position\s+value\s+raw", screen)


def test_a_cancelled_run_exits_1(service: Service, client: Client) -> None:
    terminal = Terminal(*service.cli_target, "run", "patching", *_flags(SLOW))
    job_id = terminal.wait_for(r"job ([0-9a-f]{32}): patching").group(1)
    terminal.wait_for(r"\d+%\s+running")
    client.job(job_id).cancel()
    assert terminal.finish() == EXIT_FAILED, terminal.screen
    assert f"job {job_id}: patching on slow-gpt2, cancelled" in terminal.screen


def test_json_output_parses(service: Service) -> None:
    done = run_cli(*service.cli_target, "run", "patching", *_flags(PATCHING), "--json")
    assert done.returncode == EXIT_OK, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "succeeded" and job["kind"] == "patching"
    assert set(job["result"]["targets"]) == {"resid_pre", "head_out"}
    assert done.stderr == ""  # no progress bar when stderr is no terminal
    listed = json.loads(run_cli(*service.cli_target, "jobs", "ls", "--limit", "2", "--json").stdout)
    assert listed[0]["id"] == job["id"] and len(listed) == 2
    models = json.loads(run_cli("models", "--json", *service.cli_target).stdout)
    assert [m["id"] for m in models] == ["tiny-gpt2", "slow-gpt2"]


def test_tables_for_each_kind(service: Service) -> None:
    url = [*service.cli_target]
    attribution = run_cli(*url, "run", "attribution", "--model", "tiny-gpt2", "--prompt", "The cat sat",
                          "--target", '{"token": " "}', "--method", "saliency")
    assert attribution.returncode == EXIT_OK and re.search(r'11\s+"t"\s+\S+\s+#+', attribution.stdout)
    sae = run_cli(*url, "run", "sae-encode", "--model", "tiny-gpt2", "--prompt", "Hi", "--sae", "res-1",
                  "--top-k", "3")
    assert sae.returncode == EXIT_OK and re.search(r'1\s+"H"\s+\d+\s+f\d+ [\d.]+, f\d+', sae.stdout)
    steer = run_cli(*url, "run", "steer", "--model", "tiny-gpt2", "--prompt", "Once upon", "--sae", "res-1",
                    "--feature", "7", "--coefficient", "8", "--max-new-tokens", "4")
    assert steer.returncode == EXIT_OK
    assert re.search(r"^unsteered: .{4}$", steer.stdout, re.M) and re.search(r"^steered: +.{4}$", steer.stdout, re.M)
    models = run_cli(*url, "models")
    assert re.search(r"^tiny-gpt2\s+yes\s+2\s+64\s+4\s+128\s+res-1$", models.stdout, re.M)


def test_a_failed_job_exits_1(service: Service) -> None:
    shown = run_cli(*service.cli_target, "jobs", "show", service.failed_job_id)
    assert shown.returncode == EXIT_FAILED
    assert f"job {service.failed_job_id}: patching on tiny-gpt2, failed" in shown.stdout
    assert "not_single_token" in shown.stdout and "(field answer)" in shown.stdout


def test_bad_requests_exit_2(service: Service) -> None:
    unknown = run_cli(*service.cli_target, "run", "patching", *_flags({**PATCHING, "model": "nope"}))
    assert unknown.returncode == EXIT_BAD_REQUEST and "unknown_model" in unknown.stderr
    refused = run_cli(*service.cli_target, "run", "patching", *_flags({**PATCHING, "answer": "two tokens"}))
    assert refused.returncode == EXIT_BAD_REQUEST and "not_single_token" in refused.stderr
    usage = run_cli(*service.cli_target, "run", "patching", "--model", "tiny-gpt2")
    assert usage.returncode == EXIT_BAD_REQUEST and "--clean-prompt" in usage.stderr
    missing = run_cli(*service.cli_target, "jobs", "show", "does-not-exist")
    assert missing.returncode == EXIT_BAD_REQUEST and "unknown_job" in missing.stderr


def test_an_unreachable_service_exits_3() -> None:
    done = run_cli("--url", f"http://127.0.0.1:{free_port()}", "models")
    assert done.returncode == EXIT_TROUBLE and "connection_failed" in done.stderr


def test_help_documents_the_exit_codes_and_every_field() -> None:
    top = run_cli("--help").stdout
    assert "exit status:" in top and re.search(r"^\s+3\s+connection or server trouble", top, re.M)
    patching = run_cli("run", "patching", "--help").stdout
    assert "--wrong-answer TEXT" in patching and "required by metric logit_diff" in patching
    assert "--clean-prompt TEXT, --clean TEXT" in patching and "default: exact" in patching
