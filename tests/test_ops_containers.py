"""The Dockerfile and docker-compose.yml, checked statically: the compose file parses, every
OMC service runs a command that exists in `omc` (resolved through the real CLI), the
services have health checks and named volumes, no secret is written in the file; the image
is multi-stage on python:3.11-slim, installs with the constraints and runs as a non-root
user with a HEALTHCHECK. `docker compose config` runs where docker compose is usable."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from omc.cli.app import app

ROOT = Path(__file__).parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"])


def resolve(args: list[str]) -> Any:
    """The `omc` command that `args` name, with its options parsed (raises if either fails).
    (Typer ships its own Click: groups are told by their `get_command`.)"""
    command: Any = typer.main.get_command(app)
    context = command.context_class
    ctx = context(command, info_name="omc")
    rest, name = list(args), "omc"
    while hasattr(command, "get_command"):
        assert rest, f"{name} is a group of commands, not a command"
        name = rest.pop(0)
        sub = command.get_command(ctx, name)
        assert sub is not None, f"omc has no command {name}"
        command, ctx = sub, context(sub, info_name=name, parent=ctx)
    command.make_context(name, rest, parent=ctx.parent)  # rejects unknown options
    return command


def test_every_omc_service_runs_an_existing_command() -> None:
    omc_services = {n: s for n, s in services().items() if s.get("image", "").startswith("omc")}
    assert {"migrate", "scheduler", "worker", "api", "metrics"} <= set(omc_services)
    for service in omc_services.values():
        resolve(service["command"])
    with pytest.raises(AssertionError, match="no command"):
        resolve(["no-such-command"])
    with pytest.raises(Exception, match="No such option"):
        resolve(["collect", "--no-such-option"])


def test_services_have_healthchecks_named_volumes_and_no_secrets() -> None:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    for name, service in document["services"].items():
        if name == "migrate":  # runs once, then the others start
            assert service["restart"] == "no"
            continue
        if "healthcheck" in service:
            assert service["healthcheck"]["test"], name
        else:  # OMC's image has its own HEALTHCHECK (omc db check)
            assert service["image"].startswith("omc"), f"{name} has no health check"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in document["volumes"], f"{name}: {source} is not a named volume"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for key, value in (service.get("environment") or {}).items():
            secret = re.search(r"PASSWORD|SECRET|TOKEN|_KEY$", key)
            inline = str(value) and not str(value).startswith("${")
            assert not (secret and inline), f"{name}: {key} is written in the file"
            userinfo = re.match(r"\w[\w+.-]*://[^/@:]*:([^@]*)@", str(value))
            assert userinfo is None or userinfo.group(1).startswith("${"), f"{name}: {key}"


def test_dockerfile_is_multi_stage_slim_non_root_with_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) == 2 and all(s.startswith("python:3.11-slim") for s in stages)
    assert "-c constraints.txt" in text and "-c /tmp/constraints.txt" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    healthcheck = re.search(r'^HEALTHCHECK .*CMD \["omc", "db", "check"\]', text, re.M)
    assert healthcheck is not None
    resolve(["db", "check"])
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in copied.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("docker compose (v2 plugin) not installed")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"POSTGRES_PASSWORD": "only-for-the-check", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
