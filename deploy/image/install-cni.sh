#!/bin/sh
# install-cni: the Weft DaemonSet's init container. Puts the plugin and the shipped conflist on
# the host (hostPath volumes mounted at /host/opt/cni/bin and /host/etc/cni/net.d), idempotently:
# a file that is already identical is left alone; a changed one is replaced atomically (copy to a
# temporary name in the same folder, then rename), so kubelet never sees half a file.
set -eu
bin_dir=${CNI_BIN_DIR:-/host/opt/cni/bin}
conf_dir=${CNI_CONF_DIR:-/host/etc/cni/net.d}
conflist=${CNI_CONFLIST_NAME:-10-weft.conflist}
put() { # put SRC DEST MODE
  if cmp -s "$1" "$2"; then echo "install-cni: $2 is up to date"; return; fi
  cp "$1" "$2.weft-tmp" && chmod "$3" "$2.weft-tmp" && mv -f "$2.weft-tmp" "$2"
  echo "install-cni: installed $2"
}
mkdir -p "$bin_dir" "$conf_dir"
put /usr/bin/weft-cni "$bin_dir/weft-cni" 0755
put /etc/weft/10-weft.conflist "$conf_dir/$conflist" 0644
