#ifndef WEFT_CNI_SHIM_H
#define WEFT_CNI_SHIM_H
/* Linux calls for the CNI plugin (filled in by the CNI work). */
int weft_cni_shim_version(void);
#endif
