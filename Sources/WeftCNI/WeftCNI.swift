// WeftCNI: the CNI plugin logic. See docs/cni.md.
