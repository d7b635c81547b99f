// WeftAPI: control-socket protocol. See docs/architecture.md.
