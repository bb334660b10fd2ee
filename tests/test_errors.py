"""Errors keep their class across the bus: a remote conflict is retried, a bad manifest is not."""

from __future__ import annotations

import pytest

from shoal.errors import (
    BadPayload,
    ClusterUnreachable,
    Conflict,
    NotFound,
    PermanentError,
    RemoteError,
    TransientError,
    remote_error,
)
from shoal.retry import is_transient


@pytest.mark.parametrize(
    "code, family, transient",
    [
        ("conflict", Conflict, True),
        ("unavailable", TransientError, True),
        ("not-found", NotFound, False),
        ("bad-payload", BadPayload, False),
        ("invalid-manifest", PermanentError, False),
        ("internal", RemoteError, False),
    ],
)
def test_a_remote_error_is_of_the_class_its_code_names(code: str, family: type, transient: bool) -> None:
    error = remote_error(code, "line one\nline two")
    assert isinstance(error, RemoteError) and isinstance(error, family)
    assert (error.code, error.message) == (code, "line one\nline two")
    assert is_transient(error) is transient


def test_an_unreachable_cluster_may_answer_later() -> None:
    assert is_transient(ClusterUnreachable("no NATS server answered"))
