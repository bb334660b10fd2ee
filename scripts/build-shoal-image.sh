#!/usr/bin/env bash
# Builds localhost/shoal:latest, Shoal itself in an image, from this checkout and Debian's
# packages alone (no registry): the image compose/ runs for every host of its cluster.
#
#   localhost/shoal-base:bookworm  Debian bookworm (debootstrap, minbase) with Python and what a
#                                  node needs to be a host of its own: Podman with runc, conmon,
#                                  netavark, nftables and iproute2. Built once, then kept.
#   localhost/shoal:latest         that base with Shoal installed in /opt/shoal, from wheels
#                                  built here (the image's Python is bookworm's 3.11).
#
# --force builds both again. Needs root (debootstrap, podman) and debootstrap.
set -euo pipefail

force=0
[[ "${1:-}" == "--force" ]] && force=1
here=$(cd "$(dirname "$0")/.." && pwd)
base=localhost/shoal-base:bookworm
image=localhost/shoal:latest
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
python=${PYTHON:-$here/.venv/bin/python}

# The sandboxes Shoal is built on refuse Podman's default ulimits (no CAP_SYS_RESOURCE):
# builds run with limits this shell has.
nofile=$(ulimit -Hn)
[[ "$nofile" == unlimited || "$nofile" -gt 65536 ]] && nofile=65536
ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=8192:8192")

work=$(mktemp -d /var/tmp/shoal-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [[ $force == 1 ]] || ! podman image exists "$base"; then
    command -v debootstrap >/dev/null || { echo "debootstrap is needed: apt-get install -y debootstrap" >&2; exit 1; }
    packages=python3,python3-venv,ca-certificates,podman,netavark,aardvark-dns,runc,conmon,catatonit,nftables,conntrack,iproute2,iptables
    echo "debootstrap bookworm into $work/rootfs (a minute or two)"
    debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
        tail -20 "$work/debootstrap.log" >&2
        exit 1
    }
    root=$work/rootfs
    # Podman in a container has no systemd: cgroups through cgroupfs, events to a file, and
    # netavark (the CNI file Debian ships would otherwise make Podman pick CNI, not installed).
    rm -f "$root"/etc/cni/net.d/*.conflist
    mkdir -p "$root/etc/containers"
    printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n\n[network]\nnetwork_backend = "netavark"\n' \
        >"$root/etc/containers/containers.conf"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/debootstrap
    tar -C "$root" -cf "$work/base.tar" .
    rm -rf "$root"
    podman import --change 'CMD ["bash"]' "$work/base.tar" "$base" >/dev/null
    echo "built $base"
fi

echo "building Shoal's wheels"
"$python" -m pip wheel --quiet --wheel-dir "$work/wheels" "$here" >"$work/wheels.log" 2>&1 || {
    tail -20 "$work/wheels.log" >&2
    exit 1
}
rm -rf "$here/build"
cat >"$work/Containerfile" <<EOF
FROM $base
COPY wheels /wheels
RUN python3 -m venv /opt/shoal && /opt/shoal/bin/pip install --quiet --no-index --find-links /wheels shoal && rm -rf /wheels
ENV PATH=/opt/shoal/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["shoal", "--help"]
EOF
podman build "${ulimits[@]}" --quiet -t "$image" -f "$work/Containerfile" "$work" >/dev/null
echo "built $image"
