#!/usr/bin/env bash
# Brings up compose.yaml's cluster and the sample app on it (`make compose` runs this):
# the image, the identities in compose/data, the containers, a context named `compose` for
# the shoal command on this machine, the sample's images pushed into the cluster (the nodes'
# Podman stores start empty and there is no registry), and examples/hello.yaml applied.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${BIN:-$root/.venv/bin}
data=$here/data
servers=(nats-1 nats-2 nats-3)
nodes=(node-1 node-2 node-3)

"$root/scripts/build-shoal-image.sh"

# Every server's certificate is valid for its name on the compose network and for this
# machine's loopback, where compose publishes the servers' client ports.
init=("$bin/shoal" credentials init --data-dir "$data" --host localhost --host 127.0.0.1)
for server in "${servers[@]}"; do init+=(--server "$server"); done
for node in "${nodes[@]}"; do init+=(--node "$node"); done
"${init[@]}" >/dev/null

"$bin/shoal" config set-context compose \
    --server tls://127.0.0.1:14222,tls://127.0.0.1:14223,tls://127.0.0.1:14224 \
    --credentials "$data/security/credentials/admin.yaml" --tls-ca "$data/security/ca.pem" \
    --data-dir "$data" >/dev/null
"$bin/shoal" config use-context compose

nofile=$(ulimit -Hn)
[[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
SHOAL_NOFILE=$nofile "$bin/podman-compose" -f "$here/compose.yaml" up -d

# The control plane answers once the servers have formed their cluster and the roles have
# joined; each node once its Podman is up.
echo "waiting for the three nodes"
deadline=$((SECONDS + 240))
for node in "${nodes[@]}"; do
    until "$bin/shoal" wait --for=condition=Ready "node/$node" --timeout 10s >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            echo "node $node is not Ready after 240s: podman-compose -f $here/compose.yaml logs $node" >&2
            exit 1
        fi
        sleep 2
    done
    echo "$node Ready"
done
for image in localhost/busybox:latest localhost/shoal-web:v1 localhost/shoal-web:v2; do
    "$bin/shoal" image push "$image"
done
# The API actors may still be making their buckets on the forming cluster: an apply is all
# or nothing, so it is simply tried again until one answers.
until "$bin/shoal" apply -f "$root/examples/hello.yaml" 2>/dev/null; do
    if ((SECONDS > deadline)); then
        "$bin/shoal" apply -f "$root/examples/hello.yaml"
        exit 1
    fi
    sleep 2
done
"$bin/shoal" rollout status deployment/hello --timeout 180
"$bin/shoal" get pods -o wide
