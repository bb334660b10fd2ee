"""Hostile manifest files are refused in one line naming the file, fast and in bounded memory;
the look-alikes that are valid Kubernetes still load, pack and validate.

Each file under ``fixtures/hostile/`` says on its first line what it tries (``# tries:``)
or why it is valid (``# valid:``). Files too large to keep are written here, in ``tmp_path``.
"""

from __future__ import annotations

import io
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shoal.bus.codec import encode
from shoal.errors import InvalidManifest
from shoal.manifests import files
from shoal.manifests.files import (
    MAX_ALIASED_NODES,
    MAX_PROBLEMS,
    MAX_REQUEST_BYTES,
    STDIN,
    item_source,
    parse_documents,
    read_manifests,
)
from shoal.manifests.validate import validate_documents
from shoal.models.api import ApplyRequest, ManifestDocument
from shoal.models.workloads import Deployment

FIXTURES = Path(__file__).parent / "fixtures" / "hostile"
REAL = Path(__file__).parent / "fixtures" / "real"
SECONDS = 2.0
PEAK_BYTES = 200 * 2**20

HOSTILE = [
    ("alias_bomb.yaml", "line 5, column 14: excessive aliasing: aliases up to *c here add"),
    ("merge_bomb.yaml", "excessive aliasing"),
    ("alias_depth.yaml", "nested deeper than 100 levels once aliases are expanded"),
    ("recursive_alias.yaml", "line 4, column 44: *self is inside the collection it names"),
    ("deep_nesting.yaml", "line 2, column 106: nested deeper than 100 levels"),
    ("int_keys.yaml", "line 7, column 5: mapping keys must be strings (got 1, an integer"),
    ("bool_keys.yaml", "line 7, column 5: mapping keys must be strings (got on, a boolean"),
    ("null_keys.yaml", "line 6, column 3: mapping keys must be strings (got null)"),
    ("duplicate_keys.yaml", "line 8, column 3: duplicate key 'replicas' (first at line 7)"),
    ("python_tag.yaml", "the tag !!python/object/apply:os.system is not supported"),
    ("set_tag.yaml", "the tag !!set is not supported"),
    ("binary.yaml", "not a text file: a NUL byte at line 4"),
    ("latin1.yaml", "not a text file: the byte 0xe9 at line 2"),
    ("list_bad_item.yaml", ' (List item 2), document 1 (Deployment "api"): spec.replicas: must be >= 0'),
    ("list_nested.yaml", " (List item 1), document 1: a List inside a List is not supported"),
    # The next three get past the loader (their values pack) and are refused by validation.
    ("replicas_2_64.yaml", ": spec.replicas: must be <= 2147483647 (got '18446744073709551616')"),
    (
        "cpu_1e999999999.yaml",
        ".resources.requests.cpu: invalid cpu quantity '1e999999999': more than Shoal can store",
    ),
    (
        "memory_1e99.yaml",
        ".resources.requests.memory: invalid memory quantity '1e99': more than Shoal can store",
    ),
]

VALID = ["valid_exa_memory.yaml", "valid_list.yaml", "valid_null_timestamp.yaml"]


@pytest.fixture(params=["libyaml", "python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both event sources: libyaml's parser (the default) and PyYAML's own, same checks."""
    if request.param == "python":
        monkeypatch.setattr(files, "LOADER", files.ManifestLoader)
    yield request.param


def load(paths: list[Path]) -> list[ManifestDocument]:
    """What an apply does with files: read them, pack the request for the bus, validate."""
    documents = read_manifests(paths)
    encode(ApplyRequest(documents=documents))
    validate_documents(documents)
    return documents


def refusal(paths: list[Path]) -> tuple[str, float, int]:
    """The one problem line, the seconds it took, and the peak memory of a second run."""
    started = time.perf_counter()
    with pytest.raises(InvalidManifest) as caught:
        load(paths)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        with pytest.raises(InvalidManifest):
            load(paths)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    problems = caught.value.problems
    assert len(problems) == 1, problems
    assert "\n" not in problems[0]
    return problems[0], elapsed, peak


@pytest.mark.parametrize(("name", "words"), HOSTILE, ids=[name for name, _ in HOSTILE])
def test_hostile_files_are_refused_in_one_line_quickly(loader: str, name: str, words: str) -> None:
    path = FIXTURES / name
    problem, elapsed, peak = refusal([path])
    assert problem.startswith(str(path)), problem
    assert words in problem, problem
    assert elapsed < SECONDS
    assert peak < PEAK_BYTES


def test_every_fixture_is_tested_and_says_what_it_is() -> None:
    names = {path.name for path in FIXTURES.iterdir()}
    assert names == {name for name, _ in HOSTILE} | set(VALID)
    for name in names:
        first = (FIXTURES / name).read_bytes().split(b"\n", 1)[0]
        assert first.startswith(b"# valid: " if name in VALID else b"# tries: "), name


def test_the_alias_bomb_stays_small() -> None:
    text = (FIXTURES / "alias_bomb.yaml").read_text()
    assert len(text) < 611
    tracemalloc.start()
    try:
        with pytest.raises(InvalidManifest, match="excessive aliasing"):
            parse_documents(text, "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


def test_a_4_mib_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# tries: 4 MiB, more than one request may carry\n" + "a: b\n" * (2**20))
    problem, elapsed, peak = refusal([path])
    assert problem.startswith(f"{path}: too large (")
    assert "at most 3 MiB of manifests per request" in problem
    assert elapsed < SECONDS
    assert peak < 2**20  # refused on its size alone, never read


def test_the_3_mib_limit_is_for_all_files_of_a_request(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("# padding\n" * (2 * 2**20 // 10))
    problem, _, _ = refusal([tmp_path])
    assert problem.startswith(f"{tmp_path / 'b.yaml'}: too large (")
    assert "bytes were read before it" in problem


def test_aliases_count_over_every_document_of_a_request(tmp_path: Path) -> None:
    # Each document alone is fine: 97 uses of a 41-node list add 3,977 nodes.
    document = "a: &a [" + ", ".join(["x"] * 40) + "]\nb: [" + ", ".join(["*a"] * 97) + "]\n"
    parse_documents(document, "one.yaml")
    (tmp_path / "a.yaml").write_text(document + "---\n" + document)
    (tmp_path / "b.yaml").write_text(document)
    problem, _, _ = refusal([tmp_path])
    assert problem.startswith(f"{tmp_path / 'b.yaml'}, document 1, line 2, column ")
    assert f"more than the {MAX_ALIASED_NODES:,} allowed per request; earlier documents used 7,954" in problem


def test_standard_input_is_read_with_the_same_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    def stdin(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    stdin((FIXTURES / "valid_list.yaml").read_bytes())
    documents = load([STDIN])
    assert [d.source for d in documents] == [item_source("<stdin>", 1), item_source("<stdin>", 2)]
    stdin(b"a: b\n" * (MAX_REQUEST_BYTES // 4))
    with pytest.raises(InvalidManifest, match=r"^<stdin>: too large \(more than 3,145,728 bytes\)"):
        read_manifests([STDIN])
    stdin((FIXTURES / "alias_bomb.yaml").read_bytes())
    with pytest.raises(InvalidManifest, match=r"^<stdin>, document 1, line 5, column 14: excessive aliasing"):
        read_manifests([STDIN])
    stdin(b"")
    with pytest.raises(InvalidManifest, match="given twice"):
        read_manifests([STDIN, STDIN])


def test_many_problems_are_listed_one_line_each_up_to_a_limit() -> None:
    text = "\n".join(f"{n}: x" for n in range(MAX_PROBLEMS + 10))
    with pytest.raises(InvalidManifest) as caught:
        parse_documents(text, "keys.yaml")
    problems = caught.value.problems
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[0] == "keys.yaml, document 1, line 1, column 1: mapping keys must be strings" + (
        " (got 0, an integer; quote it to make it text)"
    )
    assert problems[-1] == "keys.yaml: 10 more problems"


def test_syntax_errors_name_line_column_and_document() -> None:
    with pytest.raises(
        InvalidManifest, match=r"^app.yaml: invalid YAML at line 4, column \d+ \(document 2\): "
    ):
        parse_documents("a: 1\n---\nb: [1, 2\nc: d\n", "app.yaml")
    with pytest.raises(InvalidManifest, match=r"^app.yaml: invalid YAML at line 2, column 4.*0x0007"):
        parse_documents("a: 1\nb: \x07\n", "app.yaml")


def test_valid_exa_memory_loads() -> None:
    objects, _ = validate_documents(load([FIXTURES / "valid_exa_memory.yaml"]))
    memory = []
    for obj in objects:
        assert isinstance(obj.model, Deployment)
        memory.append(obj.model.spec.template.spec.containers[0].resources.requests.memory)
    assert memory == [2**60, 2 * 10**18]


def test_a_list_expands_into_its_items() -> None:
    path = FIXTURES / "valid_list.yaml"
    documents = load([path])
    assert [(d.source, d.index) for d in documents] == [
        (item_source(str(path), 1), 1),
        (item_source(str(path), 2), 1),
    ]
    objects, _ = validate_documents(documents)
    assert [obj.name for obj in objects] == ["web", "api"]
    assert objects[1].where == f'{path} (List item 2), document 1 (Deployment "api")'


def test_exported_objects_with_null_and_timestamps_parse() -> None:
    # Only that it loads and packs: whether validation accepts it is validation's business.
    [document] = read_manifests([FIXTURES / "valid_null_timestamp.yaml"])
    encode(ApplyRequest(documents=[document]))
    metadata = document.body["metadata"]
    assert metadata["creationTimestamp"] is None
    assert metadata["annotations"]["exported"] == "2024-05-01T12:00:00Z"  # text, as Kubernetes reads it


def test_integers_beyond_64_bits_load_as_their_text() -> None:
    [document] = parse_documents(f"a: {2**64}\nb: {-(2**63)}\nc: 0x{'f' * 16}\nd: {'9' * 5000}\n", "n.yaml")
    encode(ApplyRequest(documents=[document]))
    assert document.body == {"a": str(2**64), "b": -(2**63), "c": 2**64 - 1, "d": "9" * 5000}


def test_utf16_with_a_byte_order_mark_reads_as_kubectl_does(tmp_path: Path) -> None:
    path = tmp_path / "windows.yaml"
    path.write_bytes("a: café\n".encode("utf-16"))
    [document] = read_manifests([path])
    assert document.body == {"a": "café"}


def test_merge_keys_may_be_overridden_without_counting_as_duplicates() -> None:
    [document] = parse_documents("base: &b {x: 1, y: 2}\nthis: {<<: *b, y: 3}\n", "m.yaml")
    assert document.body["this"] == {"x": 1, "y": 3}


@pytest.mark.parametrize(
    "path", sorted(p for p in REAL.glob("*.yaml") if p.stat().st_size < 100_000), ids=lambda p: p.name
)
def test_real_manifests_load_as_plain_pyyaml_reads_them(path: Path) -> None:
    expected = [body for body in yaml.safe_load_all(path.read_text()) if body is not None]
    assert [document.body for document in read_manifests([path])] == expected
