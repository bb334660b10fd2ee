"""What each role may publish and subscribe to, as nats-server enforces it.

Pure data: a role (and a node's name) in, the subject lists of its ``permissions`` block
out. Everything a client does on NATS is a subject: a KV put is a publish to
``$KV.<bucket>.<key>``, a read a request to ``$JS.API.DIRECT.GET.KV_<bucket>...`` or a
consumer made on ``$JS.API.CONSUMER.CREATE.KV_<bucket>...``, so "may write the pods bucket"
and "may write only its own lease" are both subject lists. docs/security.md shows the table.

Replies come back to an inbox of the identity's own (``_SHOAL_INBOX.<identity>.>``): no one
else may subscribe there, so replies cannot be snooped. ``app`` identities, for the user's own
applications' NATS traffic on the same servers, may do anything that is not Shoal's.
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.bus import subjects as s

ADMIN = "admin"
VIEWER = "viewer"
API = "api"
SCHEDULER = "scheduler"
SERVICE = "service"
AUTOSCALER = "autoscaler"
NODE = "node"
FLEET = "fleet"
"""A process of many hollow nodes (scale tests and benchmarks): a node's rights for every name."""
APP = "app"
"""A user's application using the same NATS servers (its own streams, queues, KV buckets): free
to do anything that does not touch Shoal's subjects, buckets, streams or inboxes."""

ROLES = (ADMIN, VIEWER, API, SCHEDULER, SERVICE, AUTOSCALER, NODE, FLEET, APP)
"""Every role an identity can have; ``node`` identities carry the node's name too."""

CONTROL_PLANE = (API, SCHEDULER, SERVICE, AUTOSCALER)

CLUSTER_IDENTITIES = (ADMIN, VIEWER, *CONTROL_PLANE)
"""The unnamed identities every cluster issues for itself (``shoal up``, ``shoal credentials init``)."""


@dataclass(frozen=True)
class Grant:
    """A ``permissions`` block of nats-server: what one identity may publish and subscribe to."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responses: bool = False
    """May reply to the requests it receives (each reply subject once, while it is fresh)."""
    publish_deny: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()
    """Taken out of what the allow lists grant (only apps, which are allowed everything else)."""


def inbox_prefix(identity: str) -> str:
    """Where an identity's replies arrive: ``_SHOAL_INBOX.<identity>``; only it may subscribe there
    (apps, which may subscribe to almost anything, never to ``_SHOAL_INBOX.>``)."""
    return f"{INBOXES}.{identity}"


INBOXES = "_SHOAL_INBOX"
"""The first token of every Shoal identity's inbox subjects."""


def identity_of(role: str, name: str = "") -> str:
    """``node-edge-1``, ``admin-alice``, or the role alone for the one identity of a role."""
    return f"{role}-{name}" if name else role


def reads(bucket: str) -> list[str]:
    """Read ``bucket``: open it, get keys, watch it (consumers of its stream only)."""
    stream = f"KV_{bucket}"
    return [
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.FC.{stream}.>",
        f"$JS.ACK.{stream}.>",
    ]


def writes(bucket: str, keys: str = ">", *, fenced_as: str = "") -> list[str]:
    """Write ``keys`` of ``bucket`` (a put, an update, a delete: all publishes there); with
    ``fenced_as``, also the fence and check subjects of that role's batched writes."""
    subjects = [f"$KV.{bucket}.{keys}"]
    if fenced_as:
        subjects.append(f"$KVFENCE.{bucket}.{fenced_as}.>")
    return subjects


def manages_streams() -> list[str]:
    """Make and update Shoal's buckets and event stream (a role that owns state, after a restart
    of nats-server lost what it kept in memory)."""
    return [f"$JS.API.STREAM.{verb}.{stream}" for stream in SHOAL_STREAMS for verb in ("CREATE", "UPDATE")]


def reads_events() -> list[str]:
    return reads_stream(s.EVENTS_STREAM)


def reads_stream(stream: str) -> list[str]:
    return [
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


SHOAL_STREAMS = (*(f"KV_{bucket}" for bucket in s.ALL_BUCKET_NAMES), s.EVENTS_STREAM, s.IMAGE_STREAM)


def reads_images() -> list[str]:
    """Find, fetch and list the image store's images (its index and its chunks). nats-py finds
    the stream of an object's chunks by asking for stream names (not secret: names alone)."""
    return [*reads_stream(s.IMAGE_STREAM), "$JS.API.STREAM.NAMES"]


def writes_images() -> list[str]:
    """Push and remove images: publish chunks and index entries, purge a replaced image's chunks."""
    return [f"$O.{s.IMAGE_STORE}.>", f"$JS.API.STREAM.PURGE.{s.IMAGE_STREAM}"]


EVERYONE = ["$JS.API.INFO", s.PROCESS_STATS, *(f"$JS.API.STREAM.INFO.{stream}" for stream in SHOAL_STREAMS)]
"""Every identity: the JetStream account's info, how Shoal's streams are set up (a role checks
them as it starts), and answering or asking ``shoal debug``."""

SECRETS = s.BUCKET_SECRETS
"""Sealed Secrets: only the API reads or writes them; others ask the API."""

READABLE_BY_EVERY_CLIENT = [b for b in s.ALL_BUCKET_NAMES if b != SECRETS]


def _reads_all() -> list[str]:
    return [subject for bucket in READABLE_BY_EVERY_CLIENT for subject in reads(bucket)]


API_OWNS = (
    s.BUCKET_DEPLOYMENTS,
    s.BUCKET_NODE_SPECS,
    s.BUCKET_PRIORITY_CLASSES,
    s.BUCKET_REVISIONS,
    s.BUCKET_SERVICES,
    s.BUCKET_NODE_PORTS,
    s.BUCKET_CLUSTER_IPS,
    s.BUCKET_HPAS,
    s.BUCKET_NAMESPACES,
    s.BUCKET_CONFIGMAPS,
    s.BUCKET_SECRETS,
    s.BUCKET_CLAIMS,
    s.BUCKET_OBJECTS,
    s.BUCKET_JOBS,
    s.BUCKET_CRONJOBS,
    s.BUCKET_DAEMONSETS,
    s.BUCKET_STATEFULSETS,
    s.BUCKET_PDBS,
    s.BUCKET_PODS,  # bare pods, and pods marked for deletion
    s.BUCKET_DEPLOYMENT_STATUS,  # a deleted deployment's status goes with it
    s.BUCKET_CLAIM_STATUS,  # ... and a deleted claim's
)
"""Buckets the API actor writes: desired state, as users apply it."""

SCHEDULER_OWNS = (
    s.BUCKET_PODS,
    s.BUCKET_DEPLOYMENT_STATUS,
    s.BUCKET_NODE_STATUS,
    s.BUCKET_CLAIMS,  # a StatefulSet's claims, made from its templates
    s.BUCKET_CLAIM_STATUS,
    s.BUCKET_JOBS,  # the Jobs of CronJobs
    s.BUCKET_JOB_STATUS,
    s.BUCKET_CRONJOB_STATUS,
    s.BUCKET_DAEMONSET_STATUS,
    s.BUCKET_STATEFULSET_STATUS,
    s.BUCKET_PDB_STATUS,
    s.BUCKET_REVISIONS,  # the revisions of DaemonSets and StatefulSets
    s.BUCKET_NODES,  # registrations of nodes gone for good (--forget-nodes-after)
)
"""Buckets the leading scheduler writes: placements and observed status."""

NODE_READS = (
    s.BUCKET_PODS,
    s.BUCKET_POD_STATUS,
    s.BUCKET_NODES,
    s.BUCKET_NODE_STATUS,
    s.BUCKET_NODE_SPECS,
    s.BUCKET_SERVICES,
    s.BUCKET_ENDPOINTS,
    s.BUCKET_CONFIGMAPS,
    s.BUCKET_NAMESPACES,
    s.BUCKET_CLAIMS,
    s.BUCKET_CLAIM_STATUS,
    s.BUCKET_SECRETS,  # sealed: which Secret changed, never what it holds (see below)
)
"""What a node needs to run its pods and serve services. The Secrets bucket holds only what the
API sealed with keys no node has: a node learns from it which Secret changed, and asks the API
for the values, which it gives only for pods bound to that node. No other kinds' desired state."""


def _leader(role: str) -> list[str]:
    """Its own leader lease, under its own key."""
    return [f"$KV.{s.BUCKET_LEASES}.{role}"]


def grant(role: str, name: str = "") -> Grant:
    """The permissions of one identity (``name``: the node's, for a node)."""
    inbox = f"{inbox_prefix(identity_of(role, name))}.>"
    if role == ADMIN:
        return Grant(
            publish=(
                *EVERYONE,
                *s.API_SUBJECTS,
                s.API_SECRET_READ,
                s.API_RESOLVE,
                s.API_VERSION,
                f"{s.PREFIX}.node.*.logs",
                f"{s.PREFIX}.logs.*.keepalive",
                *_runs_exec(),
                *manages_streams(),
                *_reads_all(),
                *reads(SECRETS),  # sealed: names for `get secrets`; values only through the API
                *reads_events(),
                *reads_images(),
                *writes_images(),
            ),
            subscribe=(
                inbox,
                s.EVENTS_ALL,
                f"{s.PREFIX}.logs.*",
                s.exec_stream("*", "*"),
                f"{s.METRICS_PREFIX}.>",
                s.NODE_HEARTBEATS,
            ),
        )
    if role == VIEWER:
        return Grant(
            publish=(
                *EVERYONE,
                s.API_RESOLVE,
                s.API_VERSION,
                f"{s.PREFIX}.node.*.logs",
                f"{s.PREFIX}.logs.*.keepalive",
                *_reads_all(),
                *reads_events(),
                *reads_images(),
            ),
            subscribe=(inbox, s.EVENTS_ALL, f"{s.PREFIX}.logs.*", f"{s.METRICS_PREFIX}.>"),
        )
    if role in CONTROL_PLANE:
        owned = {API: API_OWNS, SCHEDULER: SCHEDULER_OWNS, SERVICE: (s.BUCKET_ENDPOINTS,)}
        owned_buckets = owned.get(role, (s.BUCKET_HPA_STATUS,) if role == AUTOSCALER else ())
        publish = [
            *EVERYONE,
            *manages_streams(),
            *_reads_all(),
            *reads_events(),
            *(subject for bucket in owned_buckets for subject in writes(bucket, fenced_as=role)),
            *_leader(role),
            f"{s.EVENTS_PREFIX}.>",
        ]
        subscribe = [inbox, s.NODE_HEARTBEATS]  # every replica judges nodes' health
        if role == API:
            publish += reads(SECRETS)
            subscribe += [
                f"{subject} {s.API_QUEUE}" for subject in (*s.API_SUBJECTS, s.API_SECRET_READ, s.API_VERSION)
            ]
            subscribe.append(f"{s.NODE_SECRETS_ALL} {s.API_QUEUE}")
            subscribe.append(f"{s.NODE_RELEASE_ALL} {s.API_QUEUE}")
        if role == SERVICE:
            subscribe.append(f"{s.API_RESOLVE} {s.SERVICE_QUEUE}")
        if role == AUTOSCALER:
            publish += [s.API_SCALE]
            subscribe.append(f"{s.METRICS_PREFIX}.>")
            publish += ["$JS.API.STREAM.INFO.*", "$JS.API.CONSUMER.INFO.*.*"]  # backlog of any stream
        return Grant(publish=tuple(publish), subscribe=(*subscribe, s.PROCESS_STATS), responses=True)
    if role == NODE:
        if not name:
            raise ValueError("a node identity needs the node's name")
        return _node(name, inbox)
    if role == FLEET:
        return _node("*", inbox)
    if role == APP:
        return Grant(publish=(">",), subscribe=(">",), publish_deny=_shoal_own(), subscribe_deny=_shoal_own())
    raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")


def _node(name: str, inbox: str) -> Grant:
    """A node's rights: ``name`` is its own (``*``: any node's, for a fleet of hollow nodes)."""
    return Grant(
        publish=(
            *EVERYONE,
            *(subject for bucket in NODE_READS for subject in reads(bucket)),
            *writes(s.BUCKET_NODES, name),
            *writes(s.BUCKET_METRICS, name),
            *reads(s.BUCKET_METRICS),
            # The one bucket kept in memory, lost when nats-server restarts: any writer makes it again.
            f"$JS.API.STREAM.CREATE.KV_{s.BUCKET_METRICS}",
            *writes(s.BUCKET_POD_STATUS, f"{name}.>"),  # statuses of its own pods, under its name
            *reads_images(),  # images its pods need that no registry has
            s.node_heartbeat(name),
            s.node_secrets(name),
            s.node_release(name),  # the records of pods it has stopped go through the API
            f"{s.EVENTS_PREFIX}.pod.>",
            f"{s.EVENTS_PREFIX}.node.{s.CLUSTER_SCOPE}.{name}.>",
            f"{s.PREFIX}.logs.*",
            s.exec_stream(name, "*"),  # the output of its own exec sessions
            f"$JS.API.STREAM.INFO.{s.EVENTS_STREAM}",
        ),
        subscribe=(
            inbox,
            s.node_logs(name),
            f"{s.PREFIX}.logs.*.keepalive",
            s.node_exec(name),
            s.node_forward(name),
            s.exec_input(s.exec_stream(name, "*")),
            s.exec_keepalive(s.exec_stream(name, "*")),
            s.PROCESS_STATS,
        ),
        responses=True,
    )


def _runs_exec() -> list[str]:
    """Asking any node to run a command in a pod or to connect to a pod's port, and feeding and
    keeping the session: the admin's alone (a shell in a container is all that container can
    do; a forwarded port reaches what no service exposes)."""
    session = s.exec_stream("*", "*")
    return [s.node_exec("*"), s.node_forward("*"), s.exec_input(session), s.exec_keepalive(session)]


def _shoal_own() -> tuple[str, ...]:
    """Every subject that is Shoal's: its requests and feeds, its buckets and streams (by every
    JetStream API verb), its fences and its identities' inboxes."""
    own = [f"{s.PREFIX}.>", "$KVFENCE.>", f"{INBOXES}.>", f"$O.{s.IMAGE_STORE}.>"]
    for bucket in s.ALL_BUCKET_NAMES:
        own.append(f"$KV.{bucket}.>")
    for stream in SHOAL_STREAMS:
        own += [
            f"$JS.API.*.*.{stream}",
            f"$JS.API.*.*.{stream}.>",
            f"$JS.API.*.*.*.{stream}",
            f"$JS.API.*.*.*.{stream}.>",
            f"$JS.FC.{stream}.>",
            f"$JS.ACK.{stream}.>",
        ]
    return tuple(own)
