import WeftCNI
print("weft-cni: not built yet")
