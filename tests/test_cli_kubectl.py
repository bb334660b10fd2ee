"""kubectl's habits through the command line, on a real cluster: patch, label, annotate, edit and
diff; get -w, --field-selector, --sort-by, --show-labels, --no-headers."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest
import yaml

from shoal.actors.node.logs import KEEPALIVE_TIMEOUT
from shoal.client import ShoalClient
from shoal.runtime.terminal import set_size
from tests.harness import LocalShoal, deployment, documents, get, holds_for, unique_name, wait_for, web
from tests.test_cluster import wait_running

pytestmark = pytest.mark.podman


async def shoal(cluster: LocalShoal, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """``shoal ARGS`` against the cluster, with ``env`` added to its environment."""
    if env is None:
        return await asyncio.to_thread(cluster.shoal, *args)
    argv = [sys.executable, "-m", "shoal", *args]
    environment = {**cluster.env, **env}
    run = functools.partial(subprocess.run, argv, env=environment, capture_output=True, text=True, timeout=60)
    return await asyncio.to_thread(run)


def one_error(done, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert lines[0].startswith("error:") and all(w in lines[0] for w in words), done.stderr


async def stored_yaml(cluster: LocalShoal, kind: str, name: str) -> dict:  # type: ignore[type-arg]
    done = await shoal(cluster, "get", kind, *([name] if name else []), "-o", "yaml")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


async def test_labels_and_annotations_of_any_object(cluster: LocalShoal, client: ShoalClient) -> None:
    name = unique_name("labeled")
    await client.apply(
        documents(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: b}}\n")
    )
    done = await shoal(cluster, "label", "configmap", name, "tier=gold", "team=web")
    assert done.stdout.strip() == f"configmap/{name} labeled", done.stderr
    assert (await stored_yaml(cluster, "cm", name))["metadata"]["labels"] == {"tier": "gold", "team": "web"}
    listed = await shoal(cluster, "get", "cm", "-l", "tier=gold", "-o", "name")
    assert listed.stdout.split() == [f"configmap/{name}"]
    # Another value for a key it has: only with --overwrite, as kubectl; nothing changed before.
    one_error(await shoal(cluster, "label", f"cm/{name}", "tier=silver"), "tier", "--overwrite")
    assert (await stored_yaml(cluster, "cm", name))["metadata"]["labels"]["tier"] == "gold"
    await shoal(cluster, "label", f"cm/{name}", "tier=silver", "team-", "--overwrite")
    assert (await stored_yaml(cluster, "cm", name))["metadata"]["labels"] == {"tier": "silver"}
    done = await shoal(cluster, "annotate", "configmap", name, "note=kept by ops")
    assert done.stdout.strip() == f"configmap/{name} annotated", done.stderr
    stored = await stored_yaml(cluster, "cm", name)
    assert stored["metadata"]["annotations"] == {"note": "kept by ops"} and stored["data"] == {"a": "b"}
    one_error(await shoal(cluster, "label", "cm", "no-such-map", "a=b"), "no-such-map", "not found")
    # Nodes too (through the API's node updates), with the same rules.
    zone = unique_name("zone")
    done = await shoal(cluster, "label", f"node/{cluster.node}", f"zone={zone}")
    assert done.stdout.strip() == f"node/{cluster.node} labeled", done.stderr
    listed = await shoal(cluster, "get", "nodes", "-l", f"zone={zone}", "-o", "name")
    assert listed.stdout.split() == [f"node/{cluster.node}"]
    one_error(await shoal(cluster, "label", "node", cluster.node, "zone=other"), "--overwrite")
    await shoal(cluster, "label", "node", cluster.node, "zone-")
    assert (await shoal(cluster, "get", "nodes", "-l", f"zone={zone}", "-o", "name")).stdout == ""
    one_error(await shoal(cluster, "label", "cm", name, "bad key=x", "--overwrite"), name)


async def test_a_patch_scales_a_deployment_and_a_bad_one_changes_nothing(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("patched")
    await client.apply(documents(deployment(name)))
    [(pod, _)] = await wait_running(client, name, 1)
    done = await shoal(cluster, "patch", "deployment", name, "-p", '{"spec": {"replicas": 2}}')
    assert done.stdout.strip() == f"deployment.apps/{name} patched", done.stderr
    await wait_running(client, name, 2)
    json_patch = '[{"op": "replace", "path": "/spec/replicas", "value": 1}]'
    done = await shoal(cluster, "patch", f"deploy/{name}", "--type", "json", "-p", json_patch)
    assert done.returncode == 0, done.stderr
    await wait_running(client, name, 1)
    again = await shoal(cluster, "patch", f"deploy/{name}", "--type", "json", "-p", json_patch)
    assert again.stdout.strip() == f"deployment.apps/{name} patched (no change)"
    # Refused, each in one line, and the deployment is as it was.
    one_error(await shoal(cluster, "patch", "deploy", name, "-p", '{"spec": {"replicas": -1}}'), "replicas")
    one_error(
        await shoal(cluster, "patch", "deploy", name, "-p", '{"metadata": {"name": "x"}}'), "metadata.name"
    )
    one_error(
        await shoal(cluster, "patch", "deploy", name, "--type", "json", "-p", "{}"), "list of operations"
    )
    one_error(await shoal(cluster, "patch", "deploy", "absent", "-p", "{}"), "absent", "not found")
    [(pod, _)] = await wait_running(client, name, 1)
    one_error(await shoal(cluster, "patch", "pod", pod.metadata.name, "-p", "{}"), "Deployment", name)
    assert (await stored_yaml(cluster, "deploy", name))["spec"]["replicas"] == 1
    # kubectl's other ways of naming the object and of asking for a dry run.
    described = await shoal(cluster, "describe", f"deploy/{name}")
    assert described.returncode == 0 and "Name:" in described.stdout and name in described.stdout
    status = await shoal(cluster, "rollout", "status", "deployment", name, "--timeout", "30")
    assert status.returncode == 0 and "successfully rolled out" in status.stdout, (
        status.stdout + status.stderr
    )
    dry = await shoal(cluster, "patch", "deploy", name, "-p", '{"spec": {"replicas": 4}}', "--dry-run=server")
    assert dry.stdout.strip().endswith("(dry run)"), dry.stderr
    assert (await stored_yaml(cluster, f"deploy/{name}", ""))["spec"]["replicas"] == 1
    await client.delete(documents=documents(deployment(name)))


async def test_edit_applies_what_the_editor_saves(
    cluster: LocalShoal, client: ShoalClient, tmp_path: Path
) -> None:
    name = unique_name("edited")
    await client.apply(
        documents(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: b}}\n")
    )
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('a: b', 'a: changed'))\n"
    )
    done = await shoal(cluster, "edit", "cm", name, env={"EDITOR": f"{sys.executable} {editor}"})
    assert done.stdout.strip() == f"configmap/{name} edited", done.stderr
    assert (await stored_yaml(cluster, "cm", name))["data"] == {"a": "changed"}
    done = await shoal(cluster, "edit", "cm", name, env={"EDITOR": "true"})
    assert done.stdout.strip() == "Edit cancelled, no changes made."
    # A saved object that does not validate: one line, the copy kept, nothing stored.
    editor.write_text(
        "import sys, pathlib\np = pathlib.Path(sys.argv[1])\n"
        "p.write_text(p.read_text().replace('a: changed', 'a: [1]'))\n"
    )
    done = await shoal(cluster, "edit", "cm", name, env={"EDITOR": f"{sys.executable} {editor}"})
    assert done.returncode == 1 and "data.a" in done.stderr and "your changes are kept in" in done.stderr
    kept = Path(done.stderr.split("your changes are kept in ")[1].split()[0])
    try:
        assert "a: [1]" in await asyncio.to_thread(kept.read_text)
    finally:
        await asyncio.to_thread(kept.unlink)
    assert (await stored_yaml(cluster, "cm", name))["data"] == {"a": "changed"}


async def test_diff_shows_what_apply_would_change(
    cluster: LocalShoal, client: ShoalClient, tmp_path: Path
) -> None:
    name = unique_name("diffed")
    manifest = (
        deployment(name, replicas=1)
        + "---\n"
        + (
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
            f"spec: {{selector: {{app: {name}}}, ports: [{{port: 80, targetPort: 8080}}]}}\n"
        )
    )
    path = tmp_path / "app.yaml"
    path.write_text(manifest)
    done = await shoal(cluster, "diff", "-f", str(path))
    assert done.returncode == 1 and f"+++ merged/apps.v1.Deployment.default.{name}" in done.stdout
    assert "+kind: Service" in done.stdout  # not there yet: every line is new
    await shoal(cluster, "apply", "-f", str(path))
    same = await shoal(cluster, "diff", "-f", str(path))
    assert same.returncode == 0 and same.stdout == "", same.stdout + same.stderr  # cluster IP kept
    path.write_text(manifest.replace("replicas: 1", "replicas: 3"))
    changed = await shoal(cluster, "diff", "-f", str(path))
    assert changed.returncode == 1, changed.stderr
    assert "-  replicas: 1\n" in changed.stdout and "+  replicas: 3\n" in changed.stdout
    assert "Service" not in changed.stdout
    assert (await stored_yaml(cluster, "deploy", name))["spec"]["replicas"] == 1  # diff changed nothing
    await client.delete(documents=documents(manifest))


class Lines:
    """The lines a running command prints, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.seen.append(line.rstrip("\n"))

    async def wait(self, test, what: str, timeout: float = 60) -> str:  # type: ignore[no-untyped-def]
        def found() -> str | None:
            return next((line for line in self.seen if test(line)), None)

        return await wait_for(found, timeout=timeout, what=f"{what}; printed so far: {self.seen}")


async def test_get_watch_prints_a_row_as_each_object_changes(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("watched")
    process = cluster.shoal_started("get", "pods", "-w", "-l", f"app={name}")
    try:
        lines = Lines(process)
        await lines.wait(lambda line: line.startswith("NAME") and "STATUS" in line, "the header")
        await client.apply(documents(deployment(name)))
        await lines.wait(lambda line: line.startswith(name) and "Running" in line, "a Running pod's row")
        count = len(lines.seen)
        await client.scale("default", name, 2)
        await wait_running(client, name, 2)
        await wait_for(
            lambda: len({line.split()[0] for line in lines.seen[count:] if line.startswith(name)}) >= 1,
            timeout=30,
            what="the new pod's rows",
        )
        assert all(not line.startswith("NAME") for line in lines.seen[1:])  # the header once
    finally:
        process.terminate()
        _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
        await client.delete(documents=documents(deployment(name)))
    assert "Traceback" not in stderr, stderr


async def test_get_selects_fields_sorts_and_shows_labels(cluster: LocalShoal, client: ShoalClient) -> None:
    prefix = unique_name("fields")
    maps = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: {prefix}-{n}, labels: {{set: {prefix}, n: '{n}'}}}}\n"
        for n in ("b", "a", "c")
    )
    await client.apply(documents(maps))
    names = await shoal(
        cluster, "get", "cm", "-l", f"set={prefix}", "--no-headers", "--sort-by", ".metadata.name"
    )
    assert [line.split()[0] for line in names.stdout.splitlines()] == [f"{prefix}-{n}" for n in "abc"]
    chosen = await shoal(
        cluster, "get", "cm", "--field-selector", f"metadata.name={prefix}-c", "--show-labels"
    )
    [header, row] = chosen.stdout.strip().splitlines()[:1] + [
        line for line in chosen.stdout.splitlines() if line.startswith(prefix)
    ]
    assert header.split()[-1] == "LABELS" and row.split()[0] == f"{prefix}-c" and f"set={prefix}" in row
    none = await shoal(cluster, "get", "cm", "--field-selector", "metadata.name=nothing-like-it")
    assert none.stdout == "" and "No resources found" in none.stderr
    one_error(await shoal(cluster, "get", "cm", "--field-selector", "metadata.name"), "--field-selector")


BARE_POD = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{{name: main, image: localhost/busybox:latest, command: [sleep, "3600"]}}]
"""


async def test_drain_deletes_pods_without_a_controller_only_with_force(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("bare")
    await client.apply(documents(BARE_POD.format(name=name)))
    await wait_for(lambda: _running(client, name), timeout=60, what=f"pod {name} running")
    try:
        refused = await shoal(cluster, "drain", cluster.node, "--ignore-daemonsets")
        assert refused.returncode == 1 and "--force" in refused.stderr and name in refused.stderr
        assert "Traceback" not in refused.stderr
        assert (await client.pod("default", name))[0].node_name == cluster.node  # still there
        done = await shoal(
            cluster, "drain", cluster.node, "--force", "--ignore-daemonsets", "--delete-emptydir-data",
            "--timeout", "60",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"node/{cluster.node} drained" in done.stdout
        assert name not in await _pod_names(client)
    finally:
        await shoal(cluster, "uncordon", cluster.node)


async def _running(client: ShoalClient, name: str) -> bool:
    _, status = await client.pod("default", name)
    return status is not None and status.phase == "Running"


async def _pod_names(client: ShoalClient) -> set[str]:
    return {pod.metadata.name for pod in (await client.pods()).values()}


async def test_exec_runs_a_command_in_the_pod_s_container(cluster: LocalShoal, client: ShoalClient) -> None:
    name = unique_name("execd")
    await client.apply(documents(deployment(name, command=["sleep", "3600"])))
    try:
        [(pod, _)] = await wait_running(client, name, 1)
        target = pod.metadata.name
        done = await shoal(cluster, "exec", target, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
        assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
        # Standard input, piped through to the command and closed at its end.
        piped = await asyncio.to_thread(
            cluster.shoal, "exec", "-i", f"pod/{target}", "--", "sh", "-c", "cat; echo done", input="hello\n"
        )
        assert (piped.returncode, piped.stdout) == (0, "hello\ndone\n"), piped.stderr
        # A terminal of its own in the container.
        terminal = await asyncio.to_thread(cluster.shoal, "exec", "-it", target, "--", "tty", input="")
        assert terminal.returncode == 0 and terminal.stdout.startswith("/dev/pts/"), terminal
        by_owner = await shoal(cluster, "exec", f"deploy/{name}", "--", "echo", "hi")
        assert (by_owner.returncode, by_owner.stdout) == (0, "hi\n"), by_owner.stderr
        one_error(await shoal(cluster, "exec", target), "after --")
        one_error(await shoal(cluster, "exec", "absent-pod", "--", "true"), "absent-pod", "not found")
        one_error(await shoal(cluster, "exec", target, "-c", "nope", "--", "true"), "nope")
        # Only an admin may: a viewer is refused by the server, at once.
        viewer = cluster.access_as("viewer")
        refused = await shoal(
            cluster, "exec", target, "--", "true", env={"SHOAL_CREDENTIALS": str(viewer.credentials)}
        )
        one_error(refused, "not allowed")
    finally:
        await client.delete(documents=documents(deployment(name)))


def _own_terminal() -> None:
    """In the child: a session whose controlling terminal is its standard input, as a shell
    gives the commands it runs (so size changes reach it)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def test_exec_with_a_terminal_gives_the_container_the_user_s_size_and_follows_it(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("sized")
    await client.apply(documents(deployment(name, command=["sleep", "3600"])))
    master, slave = os.openpty()
    process = None
    try:
        [(pod, _)] = await wait_running(client, name, 1)
        set_size(slave, 40, 100)
        script = "stty size; while read line; do stty size; done"
        argv = [sys.executable, "-m", "shoal", "exec", "-it", pod.metadata.name, "--", "sh", "-c", script]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, env=cluster.env, preexec_fn=_own_terminal
        )
        os.close(slave)
        slave = -1
        os.set_blocking(master, False)
        seen = b""

        def printed(text: bytes) -> bool:
            nonlocal seen
            with contextlib.suppress(BlockingIOError, OSError):
                seen += os.read(master, 4096)
            return text in seen

        await wait_for(lambda: printed(b"40 100"), timeout=30, what="the first size")
        set_size(master, 50, 120)  # the user's window grows: the CLI gets SIGWINCH

        def asked_again() -> bool:
            with contextlib.suppress(BlockingIOError):
                os.write(master, b"\r")
            return printed(b"50 120")

        await wait_for(asked_again, timeout=30, interval=0.5, what="the new size in the container")
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        os.close(master)
        if slave >= 0:
            os.close(slave)
        await client.delete(documents=documents(deployment(name)))


async def test_logs_of_what_made_a_pod_and_only_the_recent_ones(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("logged")
    # "late" goes on every second, so a window of recent seconds holds some whenever it is asked.
    script = "echo early; sleep 10; while true; do echo late; sleep 1; done"
    await client.apply(documents(deployment(name, command=["sh", "-c", script])))
    try:
        await wait_running(client, name, 1)

        async def printed_late() -> str:
            done = await shoal(cluster, "logs", f"deployment/{name}")
            return done.stdout if "late" in done.stdout else ""

        assert (await wait_for(printed_late, timeout=40, what="both lines")).startswith("early\nlate\n")
        recent = await shoal(cluster, "logs", f"deploy/{name}", "--since", "4s")
        lines = recent.stdout.splitlines()
        assert lines and set(lines) == {"late"}, recent.stdout + recent.stderr
        one_error(await shoal(cluster, "logs", f"deploy/{name}", "--since", "soon"), "--since")
        one_error(await shoal(cluster, "logs", "deploy/absent-one"), "has no pods")
    finally:
        await client.delete(documents=documents(deployment(name)))


async def test_a_follower_leaving_a_quiet_pods_log_holds_up_nothing_on_its_node(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    """The node ends a followed stream once its follower's pings stop. Closing the stream of
    a container that writes nothing used to wait, on the node's event loop, for a read that
    only the container's next line (or Podman's 120 s timeout) ended: heartbeats stopped and
    the node was declared dead."""
    name = unique_name("quiet")
    await client.apply(documents(deployment(name, command=["sh", "-c", "echo once; exec sleep 3600"])))
    follower = None
    try:
        await wait_running(client, name, 1)
        follower = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shoal", "logs", "-f", f"deploy/{name}",
            env=cluster.env, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert follower.stdout is not None
        assert await asyncio.wait_for(follower.stdout.readline(), 30) == b"once\n"
        follower.kill()  # gone without a word, as a closed laptop goes
        await follower.wait()

        async def node_ready() -> bool:
            condition = (await client.node_conditions()).get(cluster.node)
            return condition is not None and condition.ready

        await holds_for(node_ready, KEEPALIVE_TIMEOUT + 6, what=f"node {cluster.node} Ready")
        assert "once" in (await shoal(cluster, "logs", f"deploy/{name}")).stdout  # and it still answers
    finally:
        if follower is not None and follower.returncode is None:
            follower.kill()
            await follower.wait()
        await client.delete(documents=documents(deployment(name)))


async def test_logs_previous_prints_the_run_before_a_restart(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("restarted")
    # Each run prints when it started, so two runs' output differ.
    script = "echo started at $(cat /proc/uptime); exec sleep 3600"
    await client.apply(documents(deployment(name, command=["sh", "-c", script])))
    try:
        [(pod, status)] = await wait_running(client, name, 1)
        pod_name = pod.metadata.name
        one_error(await shoal(cluster, "logs", pod_name, "--previous"), "previous terminated container")

        async def printed(*args: str) -> str:
            done = await shoal(cluster, "logs", pod_name, *args)
            return done.stdout if "started at" in done.stdout else ""

        first = await wait_for(printed, timeout=20, what="the first run's line")
        await asyncio.to_thread(
            subprocess.run,
            ["podman", "kill", status.container_statuses[0].container_id],
            check=True,
            capture_output=True,
        )

        async def second_run() -> str:
            _, current = await client.pod("default", pod_name)
            if current is None or current.restarts != 1 or not current.ready:
                return ""
            return await printed()

        second = await wait_for(second_run, timeout=40, what="the restarted run's line")
        assert second != first
        assert (await shoal(cluster, "logs", pod_name, "-p")).stdout == first
        assert (await shoal(cluster, "logs", f"deploy/{name}", "--previous", "--tail", "1")).stdout == first
    finally:
        await client.delete(documents=documents(deployment(name)))


async def test_port_forward_reaches_a_pod_and_a_service_through_their_node(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("forwarded")
    await client.apply(documents(web(name, replicas=1)))
    processes: list[subprocess.Popen[str]] = []
    try:
        [(pod, _)] = await wait_running(client, name, 1)

        async def ready() -> bool:
            found = (await client.endpoints()).get(f"default.{name}")
            return found is not None and pod.metadata.name in found.ready_pods

        await wait_for(ready, timeout=30, what="the pod among the service's endpoints")
        # A pod's own port, and a service port (80) that leads to the pod's 8080.
        for target, ports in ((pod.metadata.name, ":8080"), (f"svc/{name}", ":80")):
            process = cluster.shoal_started("port-forward", target, ports)
            processes.append(process)
            line = await Lines(process).wait(
                lambda line: line.startswith("Forwarding from"), "the forwarding line"
            )
            assert line.startswith("Forwarding from 127.0.0.1:") and line.endswith(" -> 8080"), line
            local = int(line.split()[2].rsplit(":", 1)[1])
            for _ in range(3):  # each request a connection of its own
                assert await asyncio.to_thread(get, local) == "v1"
        one_error(await shoal(cluster, "port-forward", f"svc/{name}", "81"), "has no port 81")
        one_error(await shoal(cluster, "port-forward", name, "80:x"), "is not a port pair")
    finally:
        for process in processes:
            process.terminate()
            _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
            assert "Traceback" not in stderr, stderr
        await client.delete(documents=documents(web(name, replicas=1)))


async def test_apply_prune_deletes_what_the_files_no_longer_name(
    cluster: LocalShoal, client: ShoalClient, tmp_path: Path
) -> None:
    name = unique_name("tidy")
    folder = tmp_path / "app"
    folder.mkdir()

    def config_map(map_name: str, app: str) -> str:
        return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {map_name}, labels: {{app: {app}}}}}\n"

    (folder / "web.yaml").write_text(deployment(name))
    (folder / "settings.yaml").write_text(config_map(f"{name}-settings", name))
    outsider = f"{name}-other"

    async def pods_of_set() -> set[str]:
        return set((await shoal(cluster, "get", "pods", "-l", f"app={name}", "-o", "name")).stdout.split())

    await client.apply(documents(config_map(outsider, "someone-else")))
    try:
        done = await shoal(cluster, "apply", "-f", str(folder), "--prune", "-l", f"app={name}")
        assert done.returncode == 0 and "pruned" not in done.stdout, done.stdout + done.stderr
        await wait_running(client, name, 1)
        # -l alone, as kubectl: only the files' objects with those labels are applied.
        (folder / "extra.yaml").write_text(config_map(f"{name}-extra", "someone-else"))
        picked = await shoal(cluster, "apply", "-f", str(folder), "-l", f"app={name}")
        assert picked.returncode == 0 and "extra" not in picked.stdout, picked.stdout + picked.stderr
        assert f"configmap/{name}-settings unchanged" in picked.stdout
        assert (await shoal(cluster, "get", "cm", f"{name}-extra")).returncode == 1
        one_error(await shoal(cluster, "apply", "-f", str(folder), "-l", "app=nobody"), "nothing to apply")
        (folder / "extra.yaml").unlink()
        pods_before = await pods_of_set()
        (folder / "settings.yaml").unlink()
        dry = await shoal(cluster, "apply", "-f", str(folder), "--prune", "-l", f"app={name}", "--dry-run")
        assert f"configmap/{name}-settings pruned (dry run)" in dry.stdout, dry.stdout + dry.stderr
        assert (await shoal(cluster, "get", "cm", f"{name}-settings", "-o", "name")).returncode == 0
        done = await shoal(cluster, "apply", "-f", str(folder), "--prune", "-l", f"app={name}")
        assert done.stdout.splitlines() == [
            f"deployment.apps/{name} unchanged",
            f"configmap/{name}-settings pruned",
        ], done.stdout + done.stderr
        gone = await shoal(cluster, "get", "cm", f"{name}-settings")
        assert gone.returncode == 1 and "not found" in gone.stderr
        # The deployment's own pods carry the set's label but are not in the files: they stay.
        assert await pods_of_set() == pods_before
        assert (await shoal(cluster, "get", "cm", outsider, "-o", "name")).returncode == 0
        one_error(await shoal(cluster, "apply", "-f", str(folder), "--prune"), "--prune", "-l")
        one_error(await shoal(cluster, "apply", "-f", str(folder), "--prune", "-l", "app in (x"), "selector")
    finally:
        await client.delete(documents=documents(deployment(name) + "---\n" + config_map(outsider, "x")))


async def test_the_shell_completes_the_names_of_the_cluster_s_objects(
    cluster: LocalShoal, client: ShoalClient
) -> None:
    name = unique_name("completed")
    await client.apply(documents(deployment(name)))
    try:
        await wait_running(client, name, 1)

        async def completes(*words: str) -> list[str]:
            line = " ".join(words)
            done = await shoal(
                cluster,
                env={
                    "_SHOAL_COMPLETE": "complete_bash",
                    "COMP_WORDS": line,
                    "COMP_CWORD": str(len(words) - 1),
                },
            )
            assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
            return done.stdout.split()

        assert await completes("shoal", "get", "deployments", name[:-2]) == [name]
        assert await completes("shoal", "describe", f"deploy/{name[:-2]}") == [f"deploy/{name}"]
        pods = await completes("shoal", "logs", name)
        assert len(pods) == 1 and pods[0].startswith(f"{name}-"), pods
        assert await completes("shoal", "exec", f"deploy/{name}") == [f"deploy/{name}"]
        assert await completes("shoal", "cordon", cluster.node) == [cluster.node]
        assert await completes("shoal", "get", "deployments", "no-such-prefix") == []
        assert "deployments" in await completes("shoal", "get", "depl")
        # A cluster that does not answer completes nothing, and says nothing.
        unreachable = await shoal(
            cluster,
            env={
                "_SHOAL_COMPLETE": "complete_bash",
                "COMP_WORDS": f"shoal get deployments {name}",
                "COMP_CWORD": "3",
                "SHOAL_SERVER": "nats://127.0.0.1:9",
            },
        )
        assert (unreachable.returncode, unreachable.stdout.strip(), unreachable.stderr) == (0, "", "")
    finally:
        await client.delete(documents=documents(deployment(name)))
