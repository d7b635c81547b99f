#include "weft_cni_shim.h"
int weft_cni_shim_version(void) { return 1; }
