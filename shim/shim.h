/* shim/shim.h - shared declarations of the preload shim's wrappers. */
#ifndef MESA_SHIM_H
#define MESA_SHIM_H
#endif
