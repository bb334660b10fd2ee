#!/usr/bin/env bash
# Installs what Shoal needs from the operating system, when it is missing:
# Podman with the runc runtime (crun fails on cgroups v1 hosts), catatonit for Podman
# pods' infra containers, busybox-static for the local test image, nftables for
# services' cluster IPs in the kernel, iproute2 for the network namespaces of test hosts,
# chromium for the dashboard's browser tests, debootstrap for the Debian base of the image
# compose/ runs (scripts/build-shoal-image.sh), conntrack (nodes forget the UDP flows of
# endpoints that went), and gcc with libc6-dev for the test image's static UDP echo server.
set -euo pipefail

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v catatonit >/dev/null || [[ -x /usr/libexec/podman/catatonit ]] || need+=(catatonit)
{ [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
command -v nft >/dev/null || [[ -x /usr/sbin/nft ]] || need+=(nftables)
command -v ip >/dev/null || [[ -x /usr/sbin/ip ]] || need+=(iproute2)
command -v chromium >/dev/null || need+=(chromium)
command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || need+=(debootstrap)
command -v conntrack >/dev/null || [[ -x /usr/sbin/conntrack ]] || need+=(conntrack)
command -v gcc >/dev/null || need+=(gcc)
[[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/aarch64-linux-gnu/libc.a ]] || need+=(libc6-dev)

if ((${#need[@]} == 0)); then
    echo "system packages present: podman $(podman --version | awk '{print $3}'), runc, catatonit, busybox-static, nftables, iproute2, chromium, debootstrap, conntrack, gcc"
    exit 0
fi

sudo=""
[[ $(id -u) == 0 ]] || sudo="sudo"
if ! command -v apt-get >/dev/null; then
    echo "please install: ${need[*]} (this script knows apt-get only)" >&2
    exit 1
fi
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q "${need[@]}" >/dev/null
}
echo "installed ${need[*]}"
