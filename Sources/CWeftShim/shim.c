#include "weft_shim.h"
int weft_shim_version(void) { return 1; }
