"""Shoal: a small-cluster container orchestrator.

Kubernetes' model (deployments, scheduling, self-healing) with a control plane of
independent actors talking over NATS, and node actors that run containers through Podman.
Layers: ``cli`` -> ``actors`` -> {``bus``, ``runtime``}; ``models`` and ``manifests`` are shared
by all of them and depend on nothing else in Shoal.
"""

__version__ = "0.1.0"
