"""The one family of errors Shoal raises on purpose.

Permanent errors (bad input, missing objects) are reported and never retried. Transient
errors (a revision conflict, a runtime or server that is away) may succeed on a retry;
the retry helpers in ``shoal.retry`` only ever retry those.
"""

from __future__ import annotations


class ShoalError(Exception):
    """Root of every error Shoal raises deliberately. ``code`` and ``warnings`` travel over the bus."""

    code = "error"

    def __init__(self, message: str, *, warnings: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.warnings = list(warnings or [])
        """What the user should know even though the request failed (unsupported fields...)."""


class PermanentError(ShoalError):
    """Retrying cannot help: the input or the request is wrong."""

    code = "invalid"


class TransientError(ShoalError):
    """Retrying may help: something was busy, away, or changed under us."""

    code = "unavailable"


class InvalidManifest(PermanentError):
    """A manifest failed validation. ``problems`` holds one line per problem."""

    code = "invalid-manifest"

    def __init__(self, problems: list[str], *, warnings: list[str] | None = None) -> None:
        super().__init__("\n".join(problems), warnings=warnings)
        self.problems = problems


class BadPayload(PermanentError):
    """Bytes on the bus that do not decode into the expected model."""

    code = "bad-payload"


class NotFound(PermanentError):
    """The named object does not exist."""

    code = "not-found"


class Conflict(TransientError):
    """A revision-checked write lost: someone else wrote the key first."""

    code = "conflict"


class Deposed(ShoalError):
    """A leader's write was refused because a newer term began: it must stop acting as leader.

    Neither retried nor shown to clients: the actor steps down and a standby carries on.
    """

    code = "deposed"


class Forbidden(PermanentError):
    """The NATS server refused what this identity tried (its permissions do not allow it)."""

    code = "forbidden"


class ClusterUnreachable(TransientError):
    """No NATS server (or no Shoal actor) answered at the given address: it may, later."""

    code = "unreachable"


class CredentialsRefused(ClusterUnreachable):
    """A NATS server answered but turned these credentials (or this TLS) away: waiting cannot help."""

    code = "refused"


class RuntimeUnavailable(TransientError):
    """The container runtime (the Podman service) did not answer."""


class ImageUnavailable(PermanentError):
    """The image is not present and cannot be pulled."""

    code = "image-unavailable"


class ContainerConfigError(ShoalError):
    """A container cannot be configured as asked (a missing ConfigMap, Secret or key; a
    runAsNonRoot container whose image runs as root): Kubernetes' CreateContainerConfigError."""


class InitContainerFailed(ShoalError):
    """An init container exited with a non-zero code: the pod's start is tried again later."""


class RemoteError(ShoalError):
    """An error reply from an actor; ``code`` is the actor's error code.

    ``remote_error`` gives it the class its code stands for as well, so a remote conflict is
    a Conflict (and retried), a remote "unavailable" a TransientError, and so on.
    """

    def __init__(self, code: str, message: str, *, warnings: list[str] | None = None) -> None:
        super().__init__(message, warnings=warnings)
        self.code = code


class RemoteConflict(RemoteError, Conflict):
    pass


class RemoteUnavailable(RemoteError, TransientError):
    pass


class RemoteNotFound(RemoteError, NotFound):
    pass


class RemoteBadPayload(RemoteError, BadPayload):
    pass


class RemoteInvalid(RemoteError, PermanentError):
    """The request was refused as invalid (an invalid manifest, say): one problem per line."""

    @property
    def problems(self) -> list[str]:
        return self.message.splitlines()


_REMOTE = {
    Conflict.code: RemoteConflict,
    TransientError.code: RemoteUnavailable,
    NotFound.code: RemoteNotFound,
    BadPayload.code: RemoteBadPayload,
    InvalidManifest.code: RemoteInvalid,
    PermanentError.code: RemoteInvalid,
}


def remote_error(code: str, message: str, warnings: list[str] | None = None) -> RemoteError:
    error = _REMOTE.get(code, RemoteError)(code, message, warnings=warnings)
    error.code = code
    return error
