"""Events: the past-tense record of every change, published on ``shoal.v1.events...``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shoal.models.base import Record


class Event(Record):
    id: str
    time: float
    type: Literal["Normal", "Warning"] = "Normal"
    reason: str
    """CamelCase, past tense or state: ``Scheduled``, ``Started``, ``Restarted``, ``NodeNotReady``..."""
    message: str = ""
    kind: str
    """Kind of the object the event is about: ``Pod``, ``Deployment``, ``Node``."""
    namespace: str = ""
    name: str
    source: str = ""
    """The actor that saw it happen: ``scheduler``, ``node/<name>``, ``api``."""
    fields: dict[str, Any] = Field(default_factory=dict)
