/* CPU detection and the choice of a kernel table, once at import. */
#ifndef SOFTMAX_DISPATCH_H
#define SOFTMAX_DISPATCH_H

#include "kernels.h"

#define SM_N_TARGETS_MAX 4

typedef struct {
    const sm_target *target;
    int supported;   /* this CPU (and OS) can run it */
    int allowed;     /* supported and not ruled out by the disable list */
} sm_target_info;

/* Detects the CPU, applies `disable` (SOFTMAX_DISABLE_CPU_FEATURES: a comma
 * list such as "AVX512F" or "AVX2,FMA"; NULL for none) and picks the widest
 * allowed target. Returns the chosen one; never NULL (baseline always runs). */
const sm_target *sm_dispatch_init(const char *disable);

/* Compiled targets, widest first; *n gets their number. */
const sm_target_info *sm_dispatch_targets(int *n);
/* Names in the disable list that match no known feature ("" if none). */
const char *sm_dispatch_unknown(void);
/* The feature names this build knows, for messages. */
const char *sm_dispatch_known(void);
const sm_target *sm_dispatch_find(const char *name);

extern const sm_target *sm_active;

#endif
