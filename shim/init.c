/* shim/init.c - placeholder until the wrappers land. */
#include "config.h"
#include "shim.h"
