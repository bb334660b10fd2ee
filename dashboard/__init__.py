"""``shoal dashboard``: a live, read-only web view of a cluster.

One server follows the cluster's KV buckets and event stream once (``feed``), keeps a
compact picture of it (``state``), and pushes each change to every browser as server-sent
events (``hub``, ``app``); the pages are static files in ``static/``.
"""

DEFAULT_ADDRESS = "127.0.0.1"
"""Loopback: the dashboard shows the whole cluster to whoever reaches it."""
DEFAULT_PORT = 8080
