/*
 * tree.h -- red-black trees from libbsd, usable outside its overlay mode.
 */
#ifndef POSTHASTE_TREE_H
#define POSTHASTE_TREE_H

#ifndef __unused
#define __unused	__attribute__((__unused__))
#endif
#include <sys/tree.h>

#endif
