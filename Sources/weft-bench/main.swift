print("weft-bench: not built yet")
