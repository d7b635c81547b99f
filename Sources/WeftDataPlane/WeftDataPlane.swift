// WeftDataPlane: UDP + TUN packet path. See docs/dataplane.md.
