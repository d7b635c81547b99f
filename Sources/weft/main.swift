print("weft: not built yet")
