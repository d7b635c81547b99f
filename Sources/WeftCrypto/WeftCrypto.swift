// WeftCrypto: typed keys and libsodium primitives. See docs/architecture.md.
