#!/usr/bin/env bash
# Runs the CNI plugin's single-host podman test (tests/cni/podman-e2e.sh) as part of run-all.sh:
# two containers on one test-made host namespace, addresses from a --no-tun node.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec bash "$here/../cni/podman-e2e.sh" "$@"
