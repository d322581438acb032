// Everything lives in include/cglibc_shim.h as static inline functions; SwiftPM needs one source file.
#include "cglibc_shim.h"
