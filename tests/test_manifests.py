"""Manifest validation: every problem named by document and field path; nothing half-valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shoal.errors import InvalidManifest
from shoal.manifests.files import parse_documents, read_manifests
from shoal.manifests.validate import validate_documents
from shoal.models.workloads import Deployment
from tests.harness import deployment, documents

VALID = deployment("web", replicas=3)


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidManifest) as caught:
        validate_documents(parse_documents(text, "app.yaml"))
    return caught.value.problems


def test_a_valid_deployment_validates_with_defaults() -> None:
    objects, warnings = validate_documents(parse_documents(VALID, "app.yaml"))
    assert warnings == []
    [obj] = objects
    assert (obj.kind, obj.namespace, obj.name) == ("Deployment", "default", "web")
    model = obj.model
    assert isinstance(model, Deployment)
    assert model.spec.replicas == 3
    container = model.spec.template.spec.containers[0]
    assert container.resources.requests.cpu == 50
    assert container.resources.requests.memory == 16 * 2**20
    assert model.spec.template.spec.restart_policy == "Always"


CONTAINER = "spec.template.spec.containers[0]"


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        ("image: localhost/busybox:latest", "imagePullPolicy: Always", f"{CONTAINER}.image", "is required"),
        ("replicas: 3", "replicas: -1", "spec.replicas", "must be >= 0 (got -1)"),
        ("cpu: 50m", "cpu: abc", f"{CONTAINER}.resources.requests.cpu", "invalid cpu quantity 'abc'"),
        (
            "memory: 16Mi",
            "memory: lots",
            f"{CONTAINER}.resources.requests.memory",
            "invalid memory quantity 'lots'",
        ),
        ("name: main", "name: Main_1", f"{CONTAINER}.name", "not a valid name"),
        (
            "containerPort: 8080",
            "containerPort: 70000",
            f"{CONTAINER}.ports[0].containerPort",
            "must be <= 65535",
        ),
        (
            "terminationGracePeriodSeconds: 1",
            "restartPolicy: Sometimes",
            "spec.template.spec.restartPolicy",
            "'Always', 'OnFailure' or 'Never'",
        ),
    ],
)
def test_each_invalid_field_is_named(old: str, new: str, path: str, words: str) -> None:
    [problem] = problems_of(VALID.replace(old, new))
    assert problem.startswith('app.yaml, document 1 (Deployment "web"): ')
    assert f": {path}: " in problem
    assert words in problem


def test_unknown_kind_broken_yaml_and_non_mappings() -> None:
    [problem] = problems_of("apiVersion: v1\nkind: Frobnicator\nmetadata: {name: x}\n")
    assert "kind: unknown kind 'Frobnicator' in 'v1'" in problem and "api-resources" in problem
    [problem] = problems_of("- just\n- a list\n")
    assert "document 1" in problem and "must be a mapping" in problem
    [problem] = problems_of("apiVersion: v1\nkind: Deployment\nmetadata: {name: x}\n")
    assert "apiVersion: Deployment needs 'apps/v1'" in problem
    with pytest.raises(InvalidManifest, match=r"app.yaml: invalid YAML at line 2, column \d+"):
        parse_documents("a: [1, 2\nb: c", "app.yaml")


def test_selector_must_match_template_labels() -> None:
    [problem] = problems_of(VALID.replace("app: web\n  template:", "app: other\n  template:", 1))
    assert "spec.template.metadata.labels" in problem


def test_one_bad_document_rejects_the_whole_file() -> None:
    text = VALID + "---\n" + deployment("api").replace("replicas: 1", "replicas: -2")
    problems = problems_of(text)
    assert len(problems) == 1 and "document 2" in problems[0]


def test_all_problems_are_reported_together() -> None:
    text = VALID.replace("replicas: 3", "replicas: -1").replace("cpu: 50m", "cpu: abc")
    assert len(problems_of(text)) == 2


def test_duplicate_objects_in_one_apply_are_refused() -> None:
    problems = problems_of(VALID + "---\n" + VALID)
    assert any("also defined in" in p for p in problems)


def test_unsupported_fields_are_warned_by_path() -> None:
    text = VALID.replace(
        "terminationGracePeriodSeconds: 1", "terminationGracePeriodSeconds: 1\n      hostNetwork: true"
    )
    text = text.replace("- containerPort: 8080", "- containerPort: 8080\n          hostIP: 1.2.3.4")
    _, warnings = validate_documents(parse_documents(text, "app.yaml"))
    assert any("spec.template.spec.hostNetwork: not supported" in w for w in warnings)
    assert any("spec.template.spec.containers[0].ports[0].hostIP: not supported" in w for w in warnings)


def test_limits_alone_set_requests_and_requests_above_limits_are_refused() -> None:
    text = VALID.replace("requests:", "limits:")
    [obj], _ = validate_documents(parse_documents(text, "app.yaml"))
    assert isinstance(obj.model, Deployment)
    assert obj.model.spec.template.spec.containers[0].resources.requests.cpu == 50
    bad = VALID.replace("memory: 16Mi", "memory: 16Mi\n          limits: {cpu: 10m}")
    [problem] = problems_of(bad)
    assert "requests.cpu must not exceed limits.cpu" in problem


def test_reading_folders_skips_empty_documents(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.yaml").write_text("---\n---\n" + VALID + "---\n")
    (tmp_path / "b.yml").write_text(deployment("api"))
    (tmp_path / "notes.txt").write_text("not a manifest")
    docs = read_manifests([tmp_path])
    assert [(d.source.rsplit("/", 1)[1], d.index) for d in docs] == [("a.yaml", 2), ("b.yml", 1)]
    with pytest.raises(InvalidManifest, match="no such file"):
        read_manifests([tmp_path / "missing.yaml"])


def test_documents_helper_matches_files() -> None:
    assert documents(VALID)[0].body["kind"] == "Deployment"


def test_max_unavailable_above_all_and_target_ports_out_of_range_are_refused() -> None:
    body = yaml.safe_load(VALID)
    body["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}
    (problem,) = problems_of(yaml.safe_dump(body))
    assert "spec.strategy.rollingUpdate:" in problem and "must not exceed 100%" in problem
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 70000}]},
    }
    (problem,) = problems_of(yaml.safe_dump(service))
    assert "spec.ports[0].targetPort" in problem


REAL = Path(__file__).parent / "fixtures" / "real"


@pytest.mark.parametrize("path", sorted(REAL.glob("*.yaml")), ids=lambda p: p.name)
def test_real_manifests_validate_and_keep_what_they_ask(path: Path) -> None:
    """Files from public projects (tests/fixtures/real/PROVENANCE.md) apply as a whole, and an
    env value taken from a ConfigMap or Secret is kept as a reference, never read as ""."""

    objects, warnings = validate_documents(read_manifests([path]))
    assert objects
    body_refs = path.read_text().count("valueFrom:")
    kept = 0
    for obj in objects:
        spec = getattr(obj.model, "spec", None)
        pod_spec = getattr(getattr(spec, "template", None), "spec", None) or (
            spec if hasattr(spec, "containers") else None
        )
        if pod_spec is not None:
            kept += sum(1 for c in pod_spec.all_containers() for e in c.env if e.value_from is not None)
    stored_workloads = any(obj.info.handling == "stored" for obj in objects)
    assert kept == body_refs or stored_workloads, (kept, body_refs)
    assert not any("valueFrom" in w for w in warnings)
