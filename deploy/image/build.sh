#!/usr/bin/env bash
# deploy/image/build.sh — build the Weft node image with podman, FROM scratch, without any registry.
#
#   swift build -c release --product weft
#   swift build -c release --product weft-cni --static-swift-stdlib
#   deploy/image/build.sh                      # -> localhost/weft:<version> and localhost/weft:latest
#
# The image holds /usr/bin/weft and /usr/bin/weft-cni, exactly the shared libraries `ldd` says
# they load (copied to the same paths), busybox (Debian's busybox-static) for the two scripts,
# /usr/local/bin/weft-node (the node container's entrypoint), /usr/local/bin/install-cni (the init
# container) and /etc/weft/10-weft.conflist (a copy of deploy/cni/10-weft.conflist).
#
# env: WEFT_BIN, WEFT_CNI_BIN  binaries to put in (default .build/release/weft, .build/release/weft-cni).
#                              Debug binaries work too (CI's tests/e2e/kubernetes-image.sh uses them):
#                              their Swift libraries come along, but the weft-cni the init container
#                              copies to a host then needs /opt/swift there: ship release binaries.
#      IMAGE                   tag (default localhost/weft:<weft --version>); localhost/weft:latest is added
#      PODMAN                  podman command with flags (e.g. "podman --root D/root --runroot D/run")
# Prints the image id on its last line.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
WEFT_BIN=${WEFT_BIN:-$top/.build/release/weft}
WEFT_CNI_BIN=${WEFT_CNI_BIN:-$top/.build/release/weft-cni}
PODMAN=${PODMAN:-podman}
for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do
  [ -x "$b" ] || { echo "build.sh: $b is missing: build it (swift build -c release --product weft; swift build -c release --product weft-cni --static-swift-stdlib) or set WEFT_BIN / WEFT_CNI_BIN" >&2; exit 1; }
done
bb=$(command -v busybox) || { echo "build.sh: busybox not found: apt-get install busybox-static" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' \
  || { echo "build.sh: $bb is not static: apt-get install busybox-static" >&2; exit 1; }
version=$("$WEFT_BIN" --version | awk '{print $NF}')
IMAGE=${IMAGE:-localhost/weft:$version}

ctx=$(mktemp -d /tmp/weft-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
r=$ctx/rootfs
mkdir -p "$r"/{bin,usr/bin,usr/local/bin,etc/weft,tmp,var/lib/weft,run,proc,sys,dev}
chmod 1777 "$r/tmp"
install -m 0755 "$WEFT_BIN" "$r/usr/bin/weft"
install -m 0755 "$WEFT_CNI_BIN" "$r/usr/bin/weft-cni"
# every library the dynamic loader maps for either binary, at the path it maps it from
libs=$(for b in "$WEFT_BIN" "$WEFT_CNI_BIN"; do
  if ldd "$b" | grep -q 'not found'; then echo "build.sh: $b needs a library that is not installed: $(ldd "$b" | grep 'not found')" >&2; exit 1; fi
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
done | sort -u)
for l in $libs; do mkdir -p "$r$(dirname "$l")"; cp -L "$l" "$r$l"; done
install -m 0755 "$bb" "$r/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -sf /bin/busybox "$r/bin/$a"; done
install -m 0755 "$top/deploy/image/weft-node.sh" "$r/usr/local/bin/weft-node"
install -m 0755 "$top/deploy/image/install-cni.sh" "$r/usr/local/bin/install-cni"
install -m 0644 "$top/deploy/cni/10-weft.conflist" "$r/etc/weft/10-weft.conflist"
echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
echo 'root:x:0:' >"$r/etc/group"
cp "$top/deploy/image/Containerfile" "$ctx/Containerfile"
echo "build.sh: $(echo "$libs" | wc -w) libraries, rootfs $(du -sh "$r" | cut -f1)" >&2
$PODMAN build --pull=never --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.source=weft -f "$ctx/Containerfile" -t "$IMAGE" -t localhost/weft:latest "$ctx" >&2
$PODMAN image inspect -f '{{.Id}}' "$IMAGE"
