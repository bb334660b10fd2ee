"""Everything Shoal keeps in JetStream, made if missing: the buckets, the event stream, the image store."""

from __future__ import annotations

from nats.js import JetStreamContext

from shoal.bus import kv
from shoal.bus.events import ensure_events_stream
from shoal.bus.images import ensure_image_store


async def ensure_state(js: JetStreamContext, replicas: int) -> None:
    """Make what is missing, each with ``replicas`` copies (what exists is left as it is)."""
    await kv.ensure_buckets(js, replicas)
    await ensure_events_stream(js, replicas)
    await ensure_image_store(js, replicas)
