#!/usr/bin/env bash
# tests/e2e/lib/oci-busybox.sh OUT.tar [NAME] — write an OCI image archive (oci-layout, index.json,
# blobs/sha256/…) holding one uncompressed layer: Debian's busybox-static as /bin/busybox with its
# applet links, /etc/passwd and /etc/group. `ctr image import OUT.tar` names it NAME
# (default localhost/weft-busybox:latest, from the io.containerd.image.name annotation).
# Built by hand with tar, sha256sum and printf: no registry, no podman, no network. ~0.3 s.
set -euo pipefail
out=${1:?usage: oci-busybox.sh OUT.tar [NAME]}
name=${2:-localhost/weft-busybox:latest}
bb=$(command -v busybox) || { echo "oci-busybox: busybox not found (Debian: busybox-static)" >&2; exit 1; }
w=$(mktemp -d /tmp/weft-oci.XXXXXX)
trap 'rm -rf "$w"' EXIT
r=$w/rootfs
mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,root,run,var,usr/bin,usr/sbin} "$w/img/blobs/sha256"
cp "$bb" "$r/bin/busybox"
for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf /bin/busybox "$r/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
echo 'root:x:0:' >"$r/etc/group"
chmod 1777 "$r/tmp"
# reproducible layer: fixed owner and mtime, sorted names
tar -C "$r" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$w/layer.tar" .
blob() { # blob FILE -> prints "sha256 size" and stores FILE under blobs/sha256/<sha256>
  local d s; d=$(sha256sum "$1" | cut -d' ' -f1); s=$(stat -c %s "$1")
  cp "$1" "$w/img/blobs/sha256/$d"; echo "$d $s"
}
read -r ld ls < <(blob "$w/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"tests/e2e/lib/oci-busybox.sh"}]}' \
  "$ld" >"$w/config.json"
read -r cd cs < <(blob "$w/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$cd" "$cs" "$ld" "$ls" >"$w/manifest.json"
read -r md ms < <(blob "$w/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$md" "$ms" "$name" "${name##*:}" >"$w/img/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$w/img/oci-layout"
tar -C "$w/img" --owner=0 --group=0 --numeric-owner -cf "$out" oci-layout index.json blobs
