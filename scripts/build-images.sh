#!/usr/bin/env bash
# Builds the local images Shoal's examples and tests run, without any registry:
#   localhost/busybox:latest     busybox-static with every applet, a /www folder for httpd.
#   localhost/shoal-web:v1, :v2  the same, serving "v1" / "v2" with httpd on port 8080
#                                (for rolling updates you can see).
#   localhost/udp-echo:latest    the same with a UDP echo server (scripts/udp-echo.c, built
#                                static here with gcc): `udp-echo PORT` answers each datagram
#                                with "<host name> <datagram>" (UDP services in tests).
# Idempotent: an image that exists is kept unless --force is given.
set -euo pipefail

force=0
[[ "${1:-}" == "--force" ]] && force=1

image=localhost/busybox:latest
wanted=("$image" localhost/shoal-web:v1 localhost/shoal-web:v2 localhost/udp-echo:latest)
missing=0
for name in "${wanted[@]}"; do
    podman image exists "$name" || missing=1
done
if [[ $force == 0 && $missing == 0 ]]; then
    echo "images present: ${wanted[*]}"
    exit 0
fi

busybox=$(command -v busybox || true)
if [[ -z "$busybox" ]] || ! "$busybox" --list >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
    # A static busybox runs in an empty root filesystem; Debian ships it as busybox-static.
    busybox=/bin/busybox
    if ! [[ -x $busybox ]] || ldd "$busybox" >/dev/null 2>&1; then
        echo "busybox-static is needed: apt-get install -y busybox-static" >&2
        exit 1
    fi
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,tmp,www,etc,proc,sys,dev,root}
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
echo '<h1>Shoal</h1>' > "$root/www/index.html"
chmod 1777 "$root/tmp"
tar -C "$root" -cf "$root.tar" .
podman import --change 'CMD ["sh"]' --change 'ENV PATH=/bin' "$root.tar" "$image" >/dev/null
echo "built $image"
for version in v1 v2; do
    echo "$version" > "$root/www/index.html"
    tar -C "$root" -cf "$root.tar" .
    podman import --change 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]' --change 'ENV PATH=/bin' \
        "$root.tar" "localhost/shoal-web:$version" >/dev/null
    echo "built localhost/shoal-web:$version"
done
gcc -static -O2 -o "$root/bin/udp-echo" "$(dirname "$0")/udp-echo.c"
tar -C "$root" -cf "$root.tar" .
podman import --change 'CMD ["udp-echo", "9053"]' --change 'ENV PATH=/bin' \
    "$root.tar" localhost/udp-echo:latest >/dev/null
echo "built localhost/udp-echo:latest"
rm -f "$root.tar"
