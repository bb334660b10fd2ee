"""The command line as users meet it: output shapes, streams, and a missing cluster."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from shoal.client import ShoalClient
from tests.harness import LocalShoal, deployment, documents, wait_for
from tests.test_cluster import wait_running


@pytest.mark.parametrize(
    "args",
    [["get", "pods"], ["get", "nodes", "-o", "json"], ["describe", "pod", "x"], ["logs", "x"], ["events"],
     ["scale", "deployment/x", "--replicas", "2"], ["delete", "deployment", "x"]],
)  # fmt: skip
def test_without_a_cluster_every_command_says_so_in_one_line(args: list[str]) -> None:
    url = "nats://127.0.0.1:1"
    result = subprocess.run(
        [sys.executable, "-m", "shoal", *args, "--server", url], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert url in lines[0] and "shoal up" in lines[0]
    assert "Traceback" not in result.stderr


def imported_modules(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules `shoal ARGS` imports, from Python's own import log (-X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "shoal", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines}


NOT_FOR_READING_PODS = {
    "shoal.runtime.podman",  # the Podman client: nodes only
    "shoal.dashboard.server",
    "starlette",
    "shoal.actors.base",
    "shoal.models.batch",  # kinds other than pods and nodes: their models, their listers
    "croniter",
    "shoal.models.statefulset",
    "shoal.models.autoscaling",
    "shoal.cli.workloads",
    "jsonpath_ng",  # -o jsonpath only
}


def test_a_command_imports_only_what_it_needs() -> None:
    # Start-up is most of a short command's time: version talks to nobody and loads no
    # models; the list of commands loads no command's module; get loads neither the Podman
    # client, nor the web server, the actors, or other kinds' models.
    version = imported_modules("version", "--client")
    assert not {"shoal.client", "shoal.models.base", "shoal.runtime.podman", "typer", "rich"} & version
    # (Modules loaded by importlib.import_module, as the commands' own are, are not in the
    # log: what they import is.)
    listing = imported_modules("--help")
    assert not {"shoal.client", "shoal.cli.listing", "shoal.security.tls", "pydantic", "nats"} & listing
    get = imported_modules("get", "--help")
    assert {"shoal.client", "shoal.cli.listing"} <= get
    assert not NOT_FOR_READING_PODS & get


def test_the_list_of_commands_is_each_command_own_summary() -> None:
    # `shoal --help` lists the commands from the table in cli/app.py, without importing
    # them: each line must be what the command's own help says.
    import typer

    from shoal.cli.app import COMMANDS

    for name, command in COMMANDS.items():
        module = importlib.import_module(f"shoal.cli.{command.module}")
        target = getattr(module, command.attribute)
        if isinstance(target, typer.Typer):
            own = target.info.help
        else:
            own = (target.__doc__ or "").strip().split("\n\n")[0]
        assert " ".join(str(own).split()) == command.summary, name
    listing = subprocess.run(
        [sys.executable, "-m", "shoal", "--help"], capture_output=True, text=True, timeout=30
    )
    for command in ("up", "apply", "get", "rollout", "drain", "logs", "dashboard", "node", "version"):
        assert f" {command} " in listing.stdout, listing.stdout


def test_a_table_in_a_pipe_is_laid_out_as_kubectl_lays_it_out() -> None:
    from shoal.cli.output import plain_table

    rows = [["web-1", "1/1", "Running"], ["a", "0/1", ""]]
    assert plain_table(["NAME", "READY", "STATUS"], rows) == (
        "NAME    READY   STATUS\nweb-1   1/1     Running\na       0/1\n"
    )
    assert plain_table(None, [["x", "y"], ["longer"]]) == "x        y\nlonger\n"


def test_usage_errors_are_one_line_naming_the_command() -> None:
    for args, said in [
        (["get", "--bogus"], "error: No such option: --bogus (see 'shoal get --help')"),
        (["bogus"], "error: No such command 'bogus'."),
        (["scale"], "error: Missing argument"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "shoal", *args], capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 2, result
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(said), result.stderr


def test_bash_completes_commands_and_subcommands_from_the_script_completion_prints(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A `shoal` on the PATH, as an installed one is, running this interpreter.
    launcher = tmp_path / "shoal"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m shoal "$@"\n')
    launcher.chmod(0o755)
    script = (
        "source <(shoal completion bash)\n"
        "COMP_WORDS=(shoal rollout und); COMP_CWORD=2; _shoal_completion shoal; echo ${COMPREPLY[@]}\n"
        "COMP_WORDS=(shoal sc); COMP_CWORD=1; _shoal_completion shoal; echo ${COMPREPLY[@]}\n"
    )
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["undo", "scale scheduler"]
    refused = subprocess.run(
        [sys.executable, "-m", "shoal", "completion", "tcsh"], capture_output=True, text=True
    )
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "tcsh" in refused.stderr


def test_the_server_comes_from_flag_env_then_context(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shoal.cli.context import DEFAULT_SERVER, resolve_server, write_context

    monkeypatch.setenv("SHOAL_CONTEXT", str(tmp_path / "ctx.yaml"))
    assert resolve_server(None) == DEFAULT_SERVER
    write_context("nats://127.0.0.1:4999", tmp_path)
    assert resolve_server(None) == "nats://127.0.0.1:4999"
    monkeypatch.setenv("SHOAL_SERVER", "nats://127.0.0.1:5000")
    assert resolve_server(None) == "nats://127.0.0.1:5000"
    assert resolve_server("nats://127.0.0.1:5001") == "nats://127.0.0.1:5001"


async def test_get_prints_kubernetes_shaped_objects(cluster: LocalShoal, client: ShoalClient) -> None:
    await client.apply(documents(deployment("shape", replicas=2)))
    pods = await wait_running(client, "shape", 2)

    async def deployment_ready() -> bool:
        status = (await client.deployment_statuses()).get("default.shape")
        return status is not None and status.ready_replicas == 2

    await wait_for(deployment_ready, what="deployment status with 2 ready replicas")

    listed = json.loads(
        (await asyncio.to_thread(cluster.shoal, "get", "pods", "-o", "json", check=True)).stdout
    )
    items = {item["metadata"]["name"]: item for item in listed["items"]}
    assert set(items) == {p.metadata.name for p, _ in pods}
    for item in items.values():
        assert item["kind"] == "Pod"
        assert item["metadata"]["namespace"] == "default" and item["metadata"]["labels"]["app"] == "shape"
        assert item["spec"]["nodeName"] == cluster.node
        status = item["status"]
        assert status["phase"] == "Running" and status["podIP"].startswith("10.")
        [container] = status["containerStatuses"]
        assert container["name"] == "main" and container["ready"] is True and container["restartCount"] == 0

    as_yaml = yaml.safe_load(
        (await asyncio.to_thread(cluster.shoal, "get", "pods", "-o", "yaml", check=True)).stdout
    )
    assert {i["metadata"]["name"] for i in as_yaml["items"]} == set(items)

    template = '{range .items[*]}{.metadata.name}{"\\t"}{.status.podIP}{"\\n"}{end}'
    by_path = await asyncio.to_thread(
        cluster.shoal, "get", "pods", "-l", "app=shape", "-o", f"jsonpath={template}"
    )
    assert by_path.returncode == 0, by_path.stderr
    assert dict(line.split("\t") for line in by_path.stdout.splitlines()) == {
        name: item["status"]["podIP"] for name, item in items.items()
    }
    columns = await asyncio.to_thread(
        cluster.shoal,
        "get",
        "pods",
        "-o",
        "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName",
        check=True,
    )
    # In a pipe, kubectl's layout: no rule under the header, nothing after a line's last cell.
    assert "─" not in columns.stdout
    assert not [line for line in columns.stdout.splitlines() if line.endswith(" ")], columns.stdout
    rows = [line.split() for line in columns.stdout.splitlines() if line.strip()]
    assert rows[0] == ["NAME", "NODE"] and sorted(rows[1:]) == sorted([n, cluster.node] for n in items)

    one = json.loads(
        (
            await asyncio.to_thread(cluster.shoal, "get", "deployment", "shape", "-o", "json", check=True)
        ).stdout
    )
    assert (
        one["kind"] == "Deployment" and one["spec"]["replicas"] == 2 and one["status"]["readyReplicas"] == 2
    )

    nodes = json.loads(
        (await asyncio.to_thread(cluster.shoal, "get", "nodes", "-o", "json", check=True)).stdout
    )
    [node] = [n for n in nodes["items"] if n["metadata"]["name"] == cluster.node]
    [ready] = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == "True"
    assert set(node["status"]["capacity"]) == {"cpu", "memory"}

    table = (await asyncio.to_thread(cluster.shoal, "get", "pods", check=True)).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"]
    assert table.count("Running") == 2 and "1/1" in table

    missing = await asyncio.to_thread(cluster.shoal, "get", "pod", "nope")
    assert missing.returncode == 1 and 'pods "nope" not found' in missing.stderr
    await client.delete(documents=documents(deployment("shape")))


async def test_wait_until_a_condition_holds_or_an_object_is_gone(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(deployment("waited", replicas=2)))
    try:
        available = await asyncio.to_thread(
            cluster.shoal, "wait", "deployment/waited", "--for=condition=Available", "--timeout", "60s"
        )
        assert available.returncode == 0, available.stderr
        assert available.stdout.strip() == "deployment.apps/waited condition met"
        pods = await asyncio.to_thread(
            cluster.shoal, "wait", "pod", "-l", "app=waited", "--for", "condition=Ready", "--timeout", "30s"
        )
        lines = pods.stdout.splitlines()
        assert (
            pods.returncode == 0
            and len(lines) == 2
            and all(line.endswith(" condition met") for line in lines)
        )
        node = await asyncio.to_thread(
            cluster.shoal, "wait", f"node/{cluster.node}", "--for=condition=Ready", "--timeout", "10s"
        )
        assert node.returncode == 0 and node.stdout.strip() == f"node/{cluster.node} condition met", node
        missing = await asyncio.to_thread(
            cluster.shoal, "wait", "deployment/nothing", "--for=condition=Available", "--timeout", "1s"
        )
        assert missing.returncode == 1 and "no matching resources found" in missing.stderr
        never = await asyncio.to_thread(
            cluster.shoal, "wait", "deployment/waited", "--for=condition=Available=false", "--timeout", "1s"
        )
        assert never.returncode == 1
        assert never.stderr.count("\n") == 1 and "timed out after 1s" in never.stderr
        wrong = await asyncio.to_thread(cluster.shoal, "wait", "pod", "--all", "--for=condition=Complete")
        assert wrong.returncode == 1 and "pods have the conditions Ready" in wrong.stderr
        name = lines[0].split()[0].split("/")[1]
        deleting = await asyncio.to_thread(cluster.shoal, "delete", "pod", name, check=True)
        assert deleting.returncode == 0
        gone = await asyncio.to_thread(
            cluster.shoal, "wait", f"pod/{name}", "--for=delete", "--timeout", "60s"
        )
        assert gone.returncode == 0, gone.stderr
        # Nothing printed when the pod was gone before the wait first looked, as with kubectl.
        assert gone.stdout.strip() in ("", f"pod/{name} deleted"), gone.stdout
        assert f"default.{name}" not in await client.pods()
    finally:
        await client.delete(documents=documents(deployment("waited")))


async def test_events_watch_follows_new_events(cluster: LocalShoal, client: ShoalClient) -> None:
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shoal", "events", "-w", env=cluster.env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert watcher.stdout is not None
        header = (await asyncio.wait_for(watcher.stdout.readline(), 30)).decode()
        assert header.split()[:4] == ["AGE", "TYPE", "REASON", "OBJECT"]
        await client.apply(documents(deployment("followed")))
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            line = (await asyncio.wait_for(watcher.stdout.readline(), 30)).decode()
            seen.append(line)
            if "Started" in line and "pod/default/followed-" in line:
                break
        else:
            raise AssertionError(f"no Started event for followed in: {seen}")
        assert any("Created" in line and "deployment/default/followed" in line for line in seen)
    finally:
        watcher.terminate()
        await watcher.wait()
    await client.delete(documents=documents(deployment("followed")))


def test_taints_and_labels_parse_like_kubectl() -> None:
    from shoal.cli.roles import parse_labels, parse_taint
    from shoal.errors import InvalidManifest

    assert str(parse_taint("dedicated=gpu:NoSchedule")) == "dedicated=gpu:NoSchedule"
    assert parse_taint("spot:PreferNoSchedule").value == ""
    for bad in ("novalue", "k=v:Sometimes", "=v:NoSchedule"):
        with pytest.raises(InvalidManifest, match="taint"):
            parse_taint(bad)
    assert parse_labels(["zone=eu-1", "example.com/tier=gold"]) == {
        "zone": "eu-1",
        "example.com/tier": "gold",
    }
    with pytest.raises(InvalidManifest, match="--label"):
        parse_labels(["bad label=x"])


@pytest.mark.parametrize(
    "args",
    [
        ["cordon", "node/x_y"],
        ["scale", "deployment", "Bad_N", "--replicas", "1"],
        ["set", "image", "deployment/Bad_N", "web=busybox"],
        ["rollout", "restart", "deployment/Bad_N"],
        ["label", "node", "Bad_N", "a=b"],
        ["taint", "node", "Bad_N", "a=b:NoSchedule"],
        ["drain", "Bad_N"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_an_invalid_name_is_one_line_not_a_traceback(cluster: LocalShoal, args: list[str]) -> None:
    done = cluster.shoal(*args)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error:") and "_" in done.stderr


@pytest.mark.parametrize(
    ("argv", "read"),
    [
        (["apply", "-f", "x", "--dry-run=server"], ["apply", "-f", "x", "--dry-run"]),
        (["apply", "--dry-run=client", "-f", "x"], ["apply", "--dry-run", "-f", "x"]),
        (["apply", "--dry-run=none", "-f", "x"], ["apply", "-f", "x"]),
        (["apply", "--dry-run", "-f", "x"], ["apply", "--dry-run", "-f", "x"]),
    ],
)
def test_kubectl_s_dry_run_spellings_are_read(argv: list[str], read: list[str]) -> None:
    from shoal.cli.app import kubectl_flags

    assert kubectl_flags(argv) == read


def test_each_cluster_keeps_its_own_context(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shoal.cli.context import read_context, read_contexts, resolve_server, write_context

    monkeypatch.setenv("SHOAL_CONTEXT", str(tmp_path / "ctx.yaml"))
    monkeypatch.delenv("SHOAL_SERVER", raising=False)
    write_context("nats://127.0.0.1:4001", tmp_path / "lab")
    write_context("nats://127.0.0.1:4002", tmp_path / "edge")
    write_context("nats://127.0.0.1:4003", tmp_path / "other" / "lab")  # same name, another cluster
    current, contexts = read_contexts()
    assert list(contexts) == ["lab", "edge", "lab-2"] and current == "lab-2"
    assert resolve_server(None) == "nats://127.0.0.1:4003"
    write_context("nats://127.0.0.1:4011", tmp_path / "lab")  # started again: same context, refreshed
    assert read_contexts() == (
        "lab",
        {**contexts, "lab": {**contexts["lab"], "server": "nats://127.0.0.1:4011"}},
    )
    monkeypatch.setenv("SHOAL_CONTEXT_NAME", "edge")
    assert read_context()["server"] == "nats://127.0.0.1:4002"


def test_a_context_file_of_one_cluster_still_reads(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from shoal.cli.context import read_contexts, resolve_server

    path = tmp_path / "ctx.yaml"
    path.write_text("server: nats://127.0.0.1:4100\ndataDir: /x\n")
    monkeypatch.setenv("SHOAL_CONTEXT", str(path))
    monkeypatch.delenv("SHOAL_SERVER", raising=False)
    assert resolve_server(None) == "nats://127.0.0.1:4100"
    assert read_contexts()[0] == "local"


def test_config_lists_and_switches_contexts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ctx.yaml"
    env = {**os.environ, "SHOAL_CONTEXT": str(path)}
    env.pop("SHOAL_CONTEXT_NAME", None)

    def shoal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shoal", *args], env=env, capture_output=True, text=True, timeout=30
        )

    path.write_text(
        "current: a\ncontexts:\n  a: {server: 'nats://127.0.0.1:1', dataDir: /a}\n"
        "  b: {server: 'nats://127.0.0.1:2', dataDir: /b}\n"
    )
    listed = shoal("config", "get-contexts")
    rows = [line.split() for line in listed.stdout.splitlines() if line.strip()]
    assert ["*", "a", "nats://127.0.0.1:1", "/a"] in rows and ["b", "nats://127.0.0.1:2", "/b"] in rows
    assert shoal("config", "use-context", "b").stdout.strip() == 'Switched to context "b".'
    assert shoal("config", "current-context").stdout.strip() == "b"
    refused = shoal("config", "use-context", "c")
    assert refused.returncode == 1 and "no context named 'c'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    shoal("config", "delete-context", "b")
    assert yaml.safe_load(path.read_text()) == {
        "current": "",
        "contexts": {"a": {"server": "nats://127.0.0.1:1", "dataDir": "/a"}},
    }


def test_explain_prints_a_kind_s_fields_and_refuses_unknown_ones_in_a_line() -> None:
    def shoal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shoal", *args], capture_output=True, text=True, timeout=30
        )

    done = shoal("explain", "deploy.spec.strategy")
    assert done.returncode == 0, done.stderr
    assert "KIND:       Deployment" in done.stdout and "FIELD:      strategy <Object>" in done.stdout
    assert re.search(r"^  rollingUpdate\s+<Object>$", done.stdout, re.MULTILINE), done.stdout
    refused = shoal("explain", "deploy.spec.nope")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "'nope' does not exist in deployment.spec" in refused.stderr


async def test_get_pods_imports_nothing_a_pod_listing_does_not_need(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    await client.apply(documents(deployment("light", replicas=1)))
    await wait_running(client, "light", 1)
    imported = await asyncio.to_thread(imported_modules, "get", "pods", "-o", "wide", env=cluster.env)
    assert "shoal.client" in imported  # (the models a bucket reads come by importlib: not logged)
    assert not NOT_FOR_READING_PODS & imported, NOT_FOR_READING_PODS & imported
