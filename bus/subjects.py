"""Every NATS subject, stream and KV bucket Shoal uses, in one place.

Other programs subscribe to these, so they are versioned (``shoal.v1``) and documented in
docs/subjects.md; change both together. Requests live under ``shoal.v1.api`` (control) and
``shoal.v1.node`` (per-node services); the change feed lives under ``shoal.v1.events``.
Object and node names are single subject tokens: Shoal names are DNS labels, never dotted.
"""

from __future__ import annotations

PREFIX = "shoal.v1"

# --- requests (request/reply; payloads in shoal.models.api) --------------------------------

API_APPLY = f"{PREFIX}.api.apply"
"""``shoal.v1.api.apply``: ApplyRequest -> ApplyReply. Validates, then stores, all or nothing."""

API_DELETE = f"{PREFIX}.api.delete"
"""``shoal.v1.api.delete``: DeleteRequest -> ApplyReply."""

API_SCALE = f"{PREFIX}.api.scale"
"""``shoal.v1.api.scale``: ScaleRequest -> ApplyReply."""

API_NODE = f"{PREFIX}.api.node"
"""``shoal.v1.api.node``: NodeUpdateRequest -> NodeUpdateReply (cordon, uncordon, drain)."""

API_QUEUE = "shoal-api"
"""Queue group of the API actors: each request is answered by one replica."""

API_ROLLOUT = f"{PREFIX}.api.rollout"
"""``shoal.v1.api.rollout``: RolloutRequest (undo, pause, resume, restart, set image) -> ApplyReply."""

API_RESOLVE = f"{PREFIX}.api.resolve"
"""``shoal.v1.api.resolve``: ResolveRequest -> Endpoints: where a service's traffic goes, by name."""

API_VERSION = f"{PREFIX}.api.version"
"""``shoal.v1.api.version``: VersionRequest -> VersionReply: the versions the cluster runs."""

API_SECRET_READ = f"{PREFIX}.api.secret.read"
"""``shoal.v1.api.secret.read``: SecretReadRequest -> Secret, in the clear (``get secret -o yaml``)."""


def node_secrets(node: str) -> str:
    """``shoal.v1.api.node-secrets.<node>``: NodeSecretRequest -> SecretBundle: a pod's Secrets, only
    for the node it is bound to. The node is the subject's last token, which the NATS server lets
    only that node's identity publish to: the API trusts the subject, not the request's words."""
    return f"{PREFIX}.api.node-secrets.{node}"


NODE_SECRETS_ALL = f"{PREFIX}.api.node-secrets.*"
"""``shoal.v1.api.node-secrets.*``: where the API actors answer every node's secret requests."""


def node_release(node: str) -> str:
    """``shoal.v1.api.node-release.<node>``: PodReleaseRequest -> Ack: a node has stopped a pod
    marked for deletion and asks for its record to go. Only that node's identity may publish
    here, and the API deletes only records of pods bound to the subject's node: a node cannot
    write the pods bucket at all."""
    return f"{PREFIX}.api.node-release.{node}"


NODE_RELEASE_ALL = f"{PREFIX}.api.node-release.*"
"""``shoal.v1.api.node-release.*``: where the API actors answer every node's releases."""

SERVICE_QUEUE = "shoal-service"
"""Queue group of the service actors (they answer resolve requests)."""

API_SUBJECTS = (API_APPLY, API_DELETE, API_SCALE, API_NODE, API_ROLLOUT)


def node_heartbeat(node: str) -> str:
    """``shoal.v1.node.<node>.heartbeat``: NodeHeartbeat, every heartbeat interval (plain NATS).

    A node is alive while these keep arriving; judges time them by their own clocks.
    """
    return f"{PREFIX}.node.{node}.heartbeat"


NODE_HEARTBEATS = f"{PREFIX}.node.*.heartbeat"
"""``shoal.v1.node.*.heartbeat``: every node's heartbeats."""


def node_logs(node: str) -> str:
    """``shoal.v1.node.<node>.logs``: LogsRequest; the node streams LogChunk to ``stream``."""
    return f"{PREFIX}.node.{node}.logs"


def logs_stream(stream_id: str) -> str:
    """``shoal.v1.logs.<id>``: where one ``shoal logs`` session receives its chunks."""
    return f"{PREFIX}.logs.{stream_id}"


def logs_keepalive(stream: str) -> str:
    """``shoal.v1.logs.<id>.keepalive``: a following client pings here (``stream`` is its
    ``logs_stream`` subject); silence ends the stream."""
    return f"{stream}.keepalive"


def node_exec(node: str) -> str:
    """``shoal.v1.node.<node>.exec``: ExecRequest; the node runs the command in the pod's
    container and streams ExecChunk to ``stream``."""
    return f"{PREFIX}.node.{node}.exec"


def node_forward(node: str) -> str:
    """``shoal.v1.node.<node>.forward``: ForwardRequest; the node connects to the pod's port and
    relays the connection over an exec-style session (``exec_stream``, its input, its pings)."""
    return f"{PREFIX}.node.{node}.forward"


def exec_stream(node: str, stream_id: str) -> str:
    """``shoal.v1.exec.<node>.<id>``: one ``shoal exec`` session's output. The node's name is
    in it so a node may listen only to the input of its own sessions."""
    return f"{PREFIX}.exec.{node}.{stream_id}"


def exec_input(stream: str) -> str:
    """``<stream>.stdin``: ExecInput, the session's standard input, in order."""
    return f"{stream}.stdin"


def exec_keepalive(stream: str) -> str:
    """``<stream>.keepalive``: the client pings here; silence ends the session."""
    return f"{stream}.keepalive"


PROCESS_STATS = f"{PREFIX}.debug.stats"
"""``shoal.v1.debug.stats``: every Shoal process replies with its ProcessStats (one reply each)."""

# --- metrics ---------------------------------------------------------------------------------

METRICS_PREFIX = f"{PREFIX}.metrics"


def node_metrics(node: str) -> str:
    """``shoal.v1.metrics.node.<node>``: NodeMetrics, one per sampling interval (plain NATS)."""
    return f"{METRICS_PREFIX}.node.{node}"


# --- the change feed ------------------------------------------------------------------------

EVENTS_PREFIX = f"{PREFIX}.events"
EVENTS_ALL = f"{EVENTS_PREFIX}.>"
"""``shoal.v1.events.>``: every event."""

CLUSTER_SCOPE = "_"
"""The namespace token of events about cluster-scoped objects (nodes)."""


def event(kind: str, namespace: str, name: str, reason: str) -> str:
    """``shoal.v1.events.<kind>.<namespace>.<name>.<reason>``, kind in lower case.

    For example ``shoal.v1.events.pod.default.web-5f7c9d8b4a-x2x9k.Started``; nodes use
    ``_`` as namespace: ``shoal.v1.events.node._.edge-1.NodeNotReady``.
    """
    return f"{EVENTS_PREFIX}.{kind.lower()}.{namespace or CLUSTER_SCOPE}.{name}.{reason}"


EVENTS_STREAM = "SHOAL_EVENTS"
"""JetStream stream keeping ``shoal.v1.events.>`` with bounded retention."""

IMAGE_STORE = "shoal_images"
"""The object store of container images pushed with ``shoal image push``, named by their
normalized reference (``docker.io/library/busybox:1.36``); nodes fetch from it."""

IMAGE_STREAM = f"OBJ_{IMAGE_STORE}"
"""The stream behind the image store (its chunks ``$O.shoal_images.C.>``, its index ``...M.>``)."""

# --- KV buckets -----------------------------------------------------------------------------

BUCKET_DEPLOYMENTS = "shoal_deployments"
"""Desired deployments, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_DEPLOYMENT_STATUS = "shoal_deployment_status"
"""Observed deployment status, key ``<namespace>.<name>``; written by the scheduler."""

BUCKET_PODS = "shoal_pods"
"""Pod records, key ``<namespace>.<name>``; written by the scheduler (and by nodes to delete)."""

BUCKET_POD_STATUS = "shoal_pod_status"
"""Pod status, key ``<namespace>.<name>``; written by the node running the pod."""

BUCKET_NODES = "shoal_nodes"
"""Node registrations and leases, key ``<node>``; written by each node actor."""

BUCKET_NODE_STATUS = "shoal_node_status"
"""Each node's Ready condition as the leading scheduler judged it, key ``<node>``; written on change."""

BUCKET_NODE_SPECS = "shoal_node_specs"
"""What operators ask of nodes (cordon, drain), key ``<node>``; written by the API actor."""

BUCKET_PRIORITY_CLASSES = "shoal_priority_classes"
"""PriorityClass objects, key ``<name>``; written by the API actor."""

BUCKET_REVISIONS = "shoal_revisions"
"""Deployment revisions, key ``<namespace>.<deployment>.<revision>``; written by the API actor."""

BUCKET_SERVICES = "shoal_services"
"""Service objects, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_NODE_PORTS = "shoal_node_ports"
"""Node port claims, key ``<port>``; written by the API actor before the service using it."""

BUCKET_CLUSTER_IPS = "shoal_cluster_ips"
"""Cluster IP claims, key ``<address>``; written by the API actor before the service using it."""

BUCKET_ENDPOINTS = "shoal_endpoints"
"""Endpoints of each service, key ``<namespace>.<name>``; written by the service actor."""

BUCKET_HPAS = "shoal_hpas"
"""HorizontalPodAutoscaler objects, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_HPA_STATUS = "shoal_hpa_status"
"""What each autoscaler decided and why, key ``<namespace>.<name>``; written by the autoscaler."""

BUCKET_METRICS = "shoal_metrics"
"""The latest usage sample of each node, key ``<node>``; in memory, expiring; written by nodes.

Every write is republished on ``shoal.v1.metrics.node.<node>`` (``node_metrics``).
"""

BUCKET_LEASES = "shoal_leases"
"""Leader leases of replicated actors, key = role (``scheduler``); written by the candidates."""

BUCKET_NAMESPACES = "shoal_namespaces"
"""Namespace objects, key ``<name>``; written by the API actor."""

BUCKET_CONFIGMAPS = "shoal_configmaps"
"""ConfigMap objects, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_SECRETS = "shoal_secrets"
"""Secrets, sealed (AES-GCM) by the API actor, key ``<namespace>.<name>``; only the API reads them."""

BUCKET_CLAIMS = "shoal_claims"
"""PersistentVolumeClaim objects, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_CLAIM_STATUS = "shoal_claim_status"
"""Where each claim's volume lives, key ``<namespace>.<name>``; written by the scheduler on binding."""

BUCKET_OBJECTS = "shoal_objects"
"""Objects Shoal keeps but does not act on, key ``<plural>.<namespace or _>.<name>``; by the API."""

BUCKET_JOBS = "shoal_jobs"
"""Job objects, key ``<namespace>.<name>``; written by the API actor, and by the scheduler for the
Jobs of CronJobs (created, and deleted by history limits, Replace and ttlSecondsAfterFinished)."""

BUCKET_JOB_STATUS = "shoal_job_status"
"""Observed Job status (counts, conditions), key ``<namespace>.<name>``; written by the scheduler."""

BUCKET_CRONJOBS = "shoal_cronjobs"
"""CronJob objects, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_CRONJOB_STATUS = "shoal_cronjob_status"
"""Each CronJob's active Jobs and last schedule, key ``<namespace>.<name>``; written by the scheduler."""

BUCKET_DAEMONSETS = "shoal_daemonsets"
"""DaemonSet objects, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_DAEMONSET_STATUS = "shoal_daemonset_status"
"""Observed DaemonSet status, key ``<namespace>.<name>``; written by the scheduler."""

BUCKET_STATEFULSETS = "shoal_statefulsets"
"""StatefulSet objects, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_PDBS = "shoal_pdbs"
"""PodDisruptionBudget objects, key ``<namespace>.<name>``; written by the API actor."""

BUCKET_PDB_STATUS = "shoal_pdb_status"
"""Each PodDisruptionBudget's counts and the pods waiting for it, key ``<namespace>.<name>``;
written by the scheduler."""

BUCKET_STATEFULSET_STATUS = "shoal_statefulset_status"
"""Observed StatefulSet status and its current revision's template, key ``<namespace>.<name>``;
written by the scheduler."""


ALL_BUCKET_NAMES: tuple[str, ...] = tuple(
    value for key, value in sorted(globals().items()) if key.startswith("BUCKET_")
)
"""Every bucket's name (``shoal_pods``, ``shoal_nodes``...)."""
