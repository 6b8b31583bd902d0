/*
 * Which kernel table runs: the widest compiled target whose CPU features
 * are all present (cpuid and the OS's saved register state, through the
 * compiler's __builtin_cpu_supports) and none disabled by the user.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dispatch.h"

const sm_target *sm_active = &sm_target_baseline;

/* A target and the CPU features it was compiled for. */
typedef struct {
    const sm_target *target;
    const char *features[5];
} target_req;

static const target_req reqs[] = {
#if defined(SM_HAVE_AVX512)
    {&sm_target_avx512, {"AVX512F", "AVX2", "FMA", "F16C", NULL}},
#endif
#if defined(SM_HAVE_AVX2)
    {&sm_target_avx2, {"AVX2", "FMA", "F16C", NULL}},
#endif
#if defined(SM_HAVE_NEON)
    {&sm_target_neon, {"ASIMD", NULL}},
#endif
    {&sm_target_baseline, {NULL}},
};
#define N_REQS ((int)(sizeof(reqs) / sizeof(reqs[0])))

static const char *const known[] = {"AVX512F", "AVX2", "FMA", "F16C", "ASIMD"};
#define N_KNOWN ((int)(sizeof(known) / sizeof(known[0])))

static sm_target_info infos[SM_N_TARGETS_MAX];
static char unknown[256];

static int
cpu_has(const char *feature)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(feature, "AVX512F") == 0) {
        return __builtin_cpu_supports("avx512f");
    }
    if (strcmp(feature, "AVX2") == 0) {
        return __builtin_cpu_supports("avx2");
    }
    if (strcmp(feature, "FMA") == 0) {
        return __builtin_cpu_supports("fma");
    }
    if (strcmp(feature, "F16C") == 0) {
        return __builtin_cpu_supports("f16c");
    }
    return 0;
#elif defined(__aarch64__)
    return strcmp(feature, "ASIMD") == 0;   /* mandatory on AArch64 */
#else
    (void)feature;
    return 0;
#endif
}

/*
 * Next item of a comma list: skips separators and surrounding spaces, sets
 * *item and *len, and returns where the scan goes on (NULL at the end).
 */
static const char *
next_item(const char *p, const char **item, size_t *len)
{
    while (*p == ',' || isspace((unsigned char)*p)) {
        p++;
    }
    if (!*p) {
        return NULL;
    }
    const char *end = p;
    while (*end && *end != ',') {
        end++;
    }
    const char *last = end;
    while (last > p && isspace((unsigned char)last[-1])) {
        last--;
    }
    *item = p;
    *len = (size_t)(last - p);
    return end;
}

/* Is `feature` in the comma list `list` (case-insensitive, spaces ignored)? */
static int
listed(const char *list, const char *feature)
{
    const size_t flen = strlen(feature);
    const char *item;
    size_t len;
    for (const char *p = list; p != NULL && (p = next_item(p, &item, &len)) != NULL;) {
        if (len == flen && strncasecmp(item, feature, len) == 0) {
            return 1;
        }
    }
    return 0;
}

static void
collect_unknown(const char *list)
{
    unknown[0] = '\0';
    const char *item;
    size_t len;
    for (const char *p = list; p != NULL && (p = next_item(p, &item, &len)) != NULL;) {
        int ok = 0;
        for (int i = 0; i < N_KNOWN && !ok; i++) {
            ok = strlen(known[i]) == len && strncasecmp(item, known[i], len) == 0;
        }
        if (!ok && strlen(unknown) + len + 2 < sizeof(unknown)) {
            if (unknown[0]) {
                strcat(unknown, ",");
            }
            strncat(unknown, item, len);
        }
    }
}

const sm_target *
sm_dispatch_init(const char *disable)
{
    collect_unknown(disable);
    sm_active = &sm_target_baseline;
    int chosen = 0;
    for (int i = 0; i < N_REQS; i++) {
        int supported = 1, allowed = 1;
        for (int f = 0; reqs[i].features[f] != NULL; f++) {
            if (!cpu_has(reqs[i].features[f])) {
                supported = 0;
            }
            if (disable != NULL && listed(disable, reqs[i].features[f])) {
                allowed = 0;
            }
        }
        infos[i].target = reqs[i].target;
        infos[i].supported = supported;
        infos[i].allowed = supported && allowed;
        if (infos[i].allowed && !chosen) {
            sm_active = reqs[i].target;
            chosen = 1;
        }
    }
    return sm_active;
}

const sm_target_info *
sm_dispatch_targets(int *n)
{
    *n = N_REQS;
    return infos;
}

const char *
sm_dispatch_unknown(void)
{
    return unknown;
}

const char *
sm_dispatch_known(void)
{
    return "AVX512F, AVX2, FMA, F16C, ASIMD";
}

const sm_target *
sm_dispatch_find(const char *name)
{
    for (int i = 0; i < N_REQS; i++) {
        if (strcmp(infos[i].target->name, name) == 0 && infos[i].supported) {
            return infos[i].target;
        }
    }
    return NULL;
}
