"""NATS: subjects, payload codec, KV buckets, events, request/reply, the embedded server."""
