#ifndef WEFT_SHIM_H
#define WEFT_SHIM_H
/* Linux system calls and ioctls for the data plane (filled in by the data-plane work). */
int weft_shim_version(void);
#endif
