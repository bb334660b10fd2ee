"""Patches, label and annotation changes, and diffs of objects, as tables (no cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shoal.errors import InvalidManifest
from shoal.manifests import patching
from shoal.manifests.files import read_manifests
from shoal.manifests.validate import validate_documents
from shoal.models.api import ManifestDocument

EXAMPLES = Path(__file__).parent.parent / "examples"


# RFC 7386's own examples (appendix A), and one from kubectl's documentation.
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        ({"spec": {"replicas": 1, "paused": False}}, {"spec": {"replicas": 3}}, {"spec": {"replicas": 3, "paused": False}}),  # noqa: E501
    ],
)  # fmt: skip
def test_a_merge_patch_is_rfc_7386(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert patching.merge_patch(target, patch) == result
    assert repr(target) == before  # the target is not changed in place


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}},
}


@pytest.mark.parametrize(
    ("patch_type", "text", "check"),
    [
        ("merge", '{"spec": {"replicas": 4}}', lambda o: o["spec"]["replicas"] == 4),
        ("strategic", "spec: {replicas: 2}", lambda o: o["spec"]["replicas"] == 2),
        ("merge", '{"metadata": {"labels": {"app": null, "tier": "x"}}}', lambda o: o["metadata"]["labels"] == {"tier": "x"}),  # noqa: E501
        ("json", '[{"op": "replace", "path": "/spec/replicas", "value": 5}]', lambda o: o["spec"]["replicas"] == 5),  # noqa: E501
        ("json", '[{"op": "add", "path": "/spec/template/spec/containers/0/args", "value": ["x"]}]',
         lambda o: o["spec"]["template"]["spec"]["containers"][0]["args"] == ["x"]),
        ("json", '[{"op": "remove", "path": "/metadata/labels/app"}]', lambda o: o["metadata"]["labels"] == {}),  # noqa: E501
        ("json", '[{"op": "test", "path": "/spec/replicas", "value": 1}, {"op": "replace", "path": "/spec/replicas", "value": 2}]',  # noqa: E501
         lambda o: o["spec"]["replicas"] == 2),
    ],
)  # fmt: skip
def test_patches_change_what_they_name(patch_type: str, text: str, check: Any) -> None:
    patched = patching.apply_patch(DEPLOYMENT, patching.parse_patch(text, patch_type), patch_type)
    assert check(patched)
    assert DEPLOYMENT["spec"]["replicas"] == 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("patch_type", "text", "problem"),
    [
        ("merge", "[1]", "is an object"),
        ("json", '{"op": "add"}', "list of operations"),
        ("json", "[1]", "list of operations"),
        ("merge", "{a: [", "not JSON or YAML"),
        ("apply", "{}", "not a patch type"),
        ("json", '[{"op": "remove", "path": "/spec/nothing"}]', "--patch:"),
        ("json", '[{"op": "test", "path": "/spec/replicas", "value": 9}]', "--patch:"),
        ("json", '[{"op": "jump", "path": "/spec"}]', "--patch:"),
        ("merge", '{"metadata": {"name": "other"}}', "metadata.name"),
        ("merge", '{"metadata": {"namespace": "kube-system"}}', "metadata.namespace"),
        ("json", '[{"op": "replace", "path": "/kind", "value": "Service"}]', "kind"),
    ],
)  # fmt: skip
def test_a_bad_patch_is_one_problem_naming_it(patch_type: str, text: str, problem: str) -> None:
    with pytest.raises(InvalidManifest) as raised:
        patching.apply_patch(DEPLOYMENT, patching.parse_patch(text, patch_type), patch_type)
    assert problem in str(raised.value) and len(str(raised.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("changes", "parsed"),
    [
        (["a=b"], {"a": "b"}),
        (["a=b", "c-"], {"a": "b", "c": None}),
        (["example.com/tier=gold"], {"example.com/tier": "gold"}),
        (["a="], {"a": ""}),
        (["url=http://x/?a=b"], {"url": "http://x/?a=b"}),  # only the first = splits
    ],
)
def test_changes_read_as_kubectl_reads_them(changes: list[str], parsed: dict[str, str | None]) -> None:
    assert patching.parse_changes(changes, "label") == parsed


@pytest.mark.parametrize("changes", [[], ["a"], ["-"], ["=b"]])
def test_changes_that_say_nothing_are_refused(changes: list[str]) -> None:
    with pytest.raises(InvalidManifest, match="label"):
        patching.parse_changes(changes, "label")


def test_a_label_with_another_value_changes_only_with_overwrite() -> None:
    with pytest.raises(InvalidManifest, match="--overwrite"):
        patching.change_metadata(DEPLOYMENT, "labels", {"app": "other"}, overwrite=False)
    same = patching.change_metadata(DEPLOYMENT, "labels", {"app": "web", "tier": "x"}, overwrite=False)
    assert same["metadata"]["labels"] == {"app": "web", "tier": "x"}
    changed = patching.change_metadata(DEPLOYMENT, "labels", {"app": "other"}, overwrite=True)
    assert changed["metadata"]["labels"] == {"app": "other"}
    removed = patching.change_metadata(DEPLOYMENT, "labels", {"app": None, "gone": None}, overwrite=False)
    assert removed["metadata"]["labels"] == {}
    noted = patching.change_metadata(DEPLOYMENT, "annotations", {"note": "hi"}, overwrite=False)
    assert noted["metadata"]["annotations"] == {"note": "hi"} and noted["spec"] == DEPLOYMENT["spec"]
    assert "annotations" not in DEPLOYMENT["metadata"]  # type: ignore[operator]


def _validated(path: Path) -> list[Any]:
    objects, _ = validate_documents(read_manifests([path]))
    return objects


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_authored_form_applies_back_to_the_same_object(example: Path) -> None:
    for obj in _validated(example):
        form = patching.authored(obj.model, obj.info.api_version, obj.info.kind)
        assert list(form)[:2] == ["apiVersion", "kind"] and "status" not in form
        assert "uid" not in form["metadata"] and "schema" not in form
        [again], _ = validate_documents([ManifestDocument(source="form", index=1, body=form)])
        assert again.model == obj.model, f"{obj.kind} {obj.name} changed on the way back"


SECRET = """
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: hunter2, user: admin}
"""


def test_a_secret_s_form_carries_its_values_as_base64_and_a_diff_masks_them(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(SECRET)
    [obj] = _validated(path)
    form = patching.authored(obj.model, "v1", "Secret")
    assert form["data"] == {"password": "aHVudGVyMg==", "user": "YWRtaW4="} and "stringData" not in form
    changed = {**form, "data": {**form["data"], "password": "c2VjcmV0"}}
    before, after = patching.masked_secrets(form, changed)
    text = patching.unified_diff(before, after, "v1.Secret.default.db")
    assert "*** (before)" in text and "*** (after)" in text
    assert "aHVudGVyMg" not in text and "c2VjcmV0" not in text and "hunter2" not in text


def test_a_diff_shows_only_what_changes() -> None:
    assert patching.unified_diff(DEPLOYMENT, DEPLOYMENT, "x") == ""
    scaled = patching.merge_patch(DEPLOYMENT, {"spec": {"replicas": 3}})
    text = patching.unified_diff(DEPLOYMENT, scaled, "apps.v1.Deployment.default.web")
    assert "-  replicas: 1\n" in text and "+  replicas: 3\n" in text
    assert text.startswith("--- live/apps.v1.Deployment.default.web\n+++ merged/")
    created = patching.unified_diff(None, DEPLOYMENT, "new")
    assert created.count("\n+") >= 5 and "\n-" not in created.split("\n", 2)[2]


@pytest.mark.parametrize(
    ("wanted", "live", "expected"),
    [
        # A replica count left out keeps the stored one (as the API keeps it).
        ({"kind": "Deployment", "spec": {"selector": {}}}, {"spec": {"replicas": 4}},
         {"kind": "Deployment", "spec": {"selector": {}, "replicas": 4}}),
        ({"kind": "Deployment", "spec": {"replicas": 2}}, {"spec": {"replicas": 4}},
         {"kind": "Deployment", "spec": {"replicas": 2}}),
        # A service's cluster IP and node ports, made by the API, stay.
        ({"kind": "Service", "spec": {"ports": [{"port": 80}]}},
         {"spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80, "nodePort": 30001}]}},
         {"kind": "Service", "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80, "nodePort": 30001}]}}),
        ({"kind": "Service", "spec": {"ports": [{"port": 81}]}},
         {"spec": {"ports": [{"port": 80, "nodePort": 30001}]}},
         {"kind": "Service", "spec": {"ports": [{"port": 81}]}}),
        ({"kind": "ConfigMap", "data": {"a": "b"}}, None, {"kind": "ConfigMap", "data": {"a": "b"}}),
    ],
)  # fmt: skip
def test_a_diff_counts_what_the_api_fills_in(wanted: Any, live: Any, expected: Any) -> None:
    assert patching.with_server_defaults(wanted, live) == expected


# -- get's --field-selector, --sort-by and --show-labels ------------------------------------------

PODS = [
    {"metadata": {"name": "b", "labels": {"app": "x"}, "creationTimestamp": "2026-01-02T00:00:00Z"},
     "spec": {"nodeName": "n1"}, "status": {"phase": "Running", "restarts": 10}},
    {"metadata": {"name": "a", "labels": {}, "creationTimestamp": "2026-01-03T00:00:00Z"},
     "spec": {"nodeName": "n2"}, "status": {"phase": "Pending", "restarts": 9}},
    {"metadata": {"name": "c", "creationTimestamp": "2026-01-01T00:00:00Z"},
     "spec": {}, "status": {"phase": "Running", "restarts": 2}},
]  # fmt: skip


@pytest.mark.parametrize(
    ("field_selector", "sort_by", "names"),
    [
        (None, None, ["b", "a", "c"]),
        ("status.phase=Running", None, ["b", "c"]),
        ("status.phase==Running,spec.nodeName!=n1", None, ["c"]),
        ("spec.nodeName=", None, ["c"]),  # a field the object lacks compares as empty
        ("metadata.name!=a", ".metadata.name", ["b", "c"]),
        (None, ".metadata.creationTimestamp", ["c", "b", "a"]),
        (None, "{.status.restarts}", ["c", "a", "b"]),  # numbers by value, not as text
        (None, ".spec.nodeName", ["c", "b", "a"]),  # missing first
    ],
)
def test_get_filters_by_fields_and_sorts_by_a_jsonpath(
    field_selector: str | None, sort_by: str | None, names: list[str]
) -> None:
    from shoal.cli.refine import refined

    rows = [[p["metadata"]["name"]] for p in PODS]
    rows, objects = refined(rows, PODS, field_selector=field_selector, sort_by=sort_by)
    assert [r[0] for r in rows] == names == [o["metadata"]["name"] for o in objects]


@pytest.mark.parametrize("bad", ["status.phase", "=x", "a~b"])
def test_a_field_selector_without_an_operator_is_refused(bad: str) -> None:
    from shoal.cli.refine import parse_field_selector

    with pytest.raises(InvalidManifest, match="--field-selector"):
        parse_field_selector(bad)


def test_labels_show_as_kubectl_shows_them() -> None:
    from shoal.cli.refine import labels_cell

    assert labels_cell(PODS[0]) == "app=x" and labels_cell(PODS[1]) == "<none>" == labels_cell(PODS[2])


def test_watched_rows_line_up_under_the_first_table() -> None:
    from shoal.cli.watching import aligned

    widths = [4, 7, 3]
    assert aligned(widths, ["NAME", "STATUS", "AGE"]) == "NAME   STATUS    AGE"
    assert aligned(widths, ["web-1", "Running", "1s"]) == "web-1   Running   1s"


# -- explain ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path", "type_name", "fields"),
    [
        ("Deployment", [], "Object", {"apiVersion", "kind", "metadata", "spec"}),
        ("Deployment", ["spec"], "Object", {"replicas", "selector", "template", "strategy", "paused"}),
        ("Deployment", ["spec", "replicas"], "integer", set()),
        (
            "Deployment",
            ["spec", "template", "spec", "containers"],
            "[]Object",
            {"name", "image", "env", "ports"},
        ),
        ("Deployment", ["spec", "paused"], "boolean", set()),
        ("ConfigMap", ["data"], "map[string]string", set()),
        ("Service", ["spec", "ports"], "[]Object", {"port", "targetPort", "protocol"}),
    ],
)
def test_explain_walks_the_models_by_manifest_names(
    kind: str, path: list[str], type_name: str, fields: set[str]
) -> None:
    from shoal.kinds import registry
    from shoal.manifests.explain import explain

    info = registry().by_kind(kind)
    assert info is not None and info.model is not None
    found = explain(info.model, kind, path)
    assert found.type_name == type_name and found.path == ".".join([kind.lower(), *path])
    assert fields <= {f.name for f in found.fields} and "schema" not in {f.name for f in found.fields}


def test_explain_names_a_field_that_does_not_exist_and_gives_docstrings() -> None:
    from shoal.kinds import registry
    from shoal.manifests.explain import explain

    info = registry().by_kind("Deployment")
    assert info is not None and info.model is not None
    with pytest.raises(
        InvalidManifest, match=r"'replica' does not exist in deployment.spec \(its fields: replicas"
    ):
        explain(info.model, "Deployment", ["spec", "replica"])
    with pytest.raises(InvalidManifest, match="none: it is a value"):
        explain(info.model, "Deployment", ["spec", "paused", "x"])
    replicas = next(f for f in explain(info.model, "Deployment", ["spec"]).fields if f.name == "replicas")
    assert "leaves replicas out" in replicas.doc
