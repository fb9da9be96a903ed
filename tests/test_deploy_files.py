"""The deployment files are correct: every command and variable in them is one zjobs knows.

Parsed always; checked by `docker compose config` where compose is installed, and the
image built and run where a Docker daemon answers.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import click
import pytest
import yaml

from zjobs.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _parses(argv: list[str]) -> click.Command:
    """`zjobs ARGV` parses as a command line (unknown options fail); the command."""
    command = main.commands[argv[0]]
    command.make_context(argv[0], list(argv[1:]))
    return command


def _envvars(command: click.Command) -> set[str]:
    return {p.envvar for p in command.params if isinstance(getattr(p, "envvar", None), str)}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_runs_a_broker_an_api_and_two_workers_on_a_volume() -> None:
    services = _compose()["services"]
    assert set(services) == {"broker", "api", "worker"}
    assert services["worker"]["deploy"]["replicas"] == 2
    broker = services["broker"]["command"]
    data_dir = broker[broker.index("--data-dir") + 1]
    volume = services["broker"]["volumes"][0].split(":")
    assert volume[0] in _compose()["volumes"] and volume[1] == data_dir
    for name, service in services.items():
        command = _parses(service["command"])
        unknown = {k for k in service.get("environment", {}) if k.startswith("ZJOBS_")} \
            - _envvars(command) - {"ZJOBS_API_TOKEN"}
        assert not unknown, (name, unknown)
    api = services["api"]["command"]
    assert services["api"]["ports"][0].endswith(":" + api[api.index("--port") + 1])


def test_compose_peers_connect_to_the_ports_the_broker_binds() -> None:
    services = _compose()["services"]
    broker = services["broker"]["command"]
    for role in ("frontend", "backend", "events"):
        bound = broker[broker.index(f"--{role}") + 1]
        assert bound.startswith("tcp://0.0.0.0:")
        for peer in ("api", "worker"):
            wanted = services[peer]["environment"][f"ZJOBS_{role.upper()}"]
            assert wanted == bound.replace("0.0.0.0", "broker"), (peer, role)


def test_the_dockerfile_installs_zjobs_and_runs_it() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["zjobs"]' in text
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        for source in [word for word in line.split()[:-1] if not word.startswith("--")]:
            assert (ROOT / source).exists(), source
    cmd = re.search(r"^CMD (.+)$", text, flags=re.M).group(1)
    _parses(yaml.safe_load(cmd))


def test_the_systemd_units_in_the_docs_run_zjobs_commands_that_parse() -> None:
    starts = re.findall(r"^ExecStart=\S+/zjobs (.+)$", (ROOT / "docs" / "deploy.md").read_text(),
                        flags=re.M)
    assert len(starts) == 3
    for line in starts:
        _parses(shlex.split(line.replace("%H-%i", "host-1")))


# ---------------------------------------------------------------- the first hour (issue 25)


def _opts(argv: list[str]) -> dict:
    command = main.commands[argv[0]]
    return command.make_context(argv[0], list(argv[1:])).params


def _exposed_without_a_token(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether `zjobs ARGV` would refuse to start for want of ZJOBS_API_TOKEN."""
    from zjobs.broker.wire.errors import StartError
    from zjobs.exposure import check_exposure

    monkeypatch.delenv("ZJOBS_API_TOKEN", raising=False)
    try:
        check_exposure(_opts(argv))
    except StartError as exc:
        assert "ZJOBS_API_TOKEN" in str(exc)
        return True
    return False


def test_compose_takes_the_api_token_from_the_environment(monkeypatch) -> None:
    api = _compose()["services"]["api"]
    assert _exposed_without_a_token(api["command"], monkeypatch)  # so the token matters
    token = api["environment"]["ZJOBS_API_TOKEN"]
    assert re.fullmatch(r"\$\{ZJOBS_API_TOKEN:\?[^}]+\}", token), token  # required, not baked


def test_compose_has_healthchecks_and_waits_for_a_healthy_broker() -> None:
    services = _compose()["services"]
    broker = services["broker"]["healthcheck"]["test"]
    assert broker[:2] == ["CMD", "zjobs"]
    assert _parses(broker[2:]).name == "status"  # a read: answers only if the broker serves
    assert "--broker-timeout" in broker
    api = " ".join(services["api"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/health" in api  # public, 200 only while the broker answers
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {"broker": {"condition": "service_healthy"}}


def test_the_image_needs_a_token_and_lets_a_derived_image_pip_install(monkeypatch) -> None:
    text = (ROOT / "Dockerfile").read_text()
    cmd = yaml.safe_load(re.search(r"^CMD (.+)$", text, flags=re.M).group(1))
    assert _exposed_without_a_token(cmd, monkeypatch)
    env_lines = re.findall(r"^(?:ENV|ARG) .*$", text, flags=re.M)
    assert not any("ZJOBS_API_TOKEN" in line for line in env_lines)  # never baked in
    assert "ZJOBS_API_TOKEN" in text  # but said how to give it
    venv = re.search(r"python -m venv (\S+)", text).group(1)
    assert re.search(rf"PATH={re.escape(venv)}/bin:\$PATH", text)
    assert re.search(rf"chown -R zjobs\S* {re.escape(venv)}", text)
    user = re.search(r"^USER zjobs$", text, flags=re.M).start()
    install = re.search(r"^RUN pip install", text, flags=re.M).start()
    assert user < install  # installed, and a derived image's installs, as zjobs


def test_the_systemd_units_make_their_state_directory_and_keep_the_token_out() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text()
    units = re.findall(r"```ini\n(.*?)```", docs, flags=re.S)
    broker = next(u for u in units if "zjobs broker" in u)
    state = re.search(r"^StateDirectory=(\S+)$", broker, flags=re.M).group(1)
    data_dir = re.search(r"--data-dir (\S+)", broker).group(1)
    assert data_dir == f"/var/lib/{state}"
    api = next(u for u in units if "zjobs api" in u)
    assert "--host 0.0.0.0" in api and re.search(r"^EnvironmentFile=\S+$", api, flags=re.M)
    assert "ZJOBS_API_TOKEN=" not in "".join(re.findall(r"^Environment=.*$", docs, flags=re.M))


def _works(*argv: str) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_docker_compose_accepts_the_file() -> None:
    if shutil.which("docker") is None or not _works("docker", "compose", "version"):
        pytest.skip("docker compose is not installed here; the file is checked by parsing above")
    done = subprocess.run(["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_image_builds_and_runs() -> None:
    if shutil.which("docker") is None or not _works("docker", "info"):
        pytest.skip("no Docker daemon answers here; the Dockerfile is checked by parsing above")
    build = subprocess.run(["docker", "build", "-q", "-t", "zjobs:test", str(ROOT)],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["docker", "run", "--rm", "zjobs:test", "--version"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "zjobs" in run.stdout, run.stderr
