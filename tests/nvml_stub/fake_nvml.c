/*
 * fake_nvml.c - a stand-in for libnvidia-ml.so.1, for wattui's tests and benchmarks.
 *
 * The real pynvml binding loads it (see tests/nvml_stub/build.py). It exports the NVML
 * functions wattui calls, with the same C signatures and struct layouts. Its behaviour
 * is a pure function of a config file and a clock:
 *
 *   WATTUI_FAKE_NVML_CONFIG=/path/to/config   (unset: one Hopper GPU with a counter)
 *
 * The file is re-read whenever it changes (checked with stat() on every call; write it
 * with an atomic rename). Lines are key=value, '#' starts a comment:
 *
 *   count=N                   number of GPUs (default 1, max 64)
 *   time=SECONDS | real       fake clock; "real" (default) uses CLOCK_MONOTONIC
 *   driver=550.54.15          nvmlSystemGetDriverVersion
 *   init=RC                   return code of nvmlInitWithFlags (e.g. DRIVER_NOT_LOADED)
 *   rc.FUNCTION=RC            return code of any exported function, on every GPU
 *   field_delay_us=N          nvmlDeviceGetFieldValues takes N us (outside the stub's
 *                             lock, as a driver call takes time while others run)
 *   *.KEY=VALUE               per-GPU KEY for every GPU
 *   gpuN.KEY=VALUE            per-GPU KEY for GPU N (applied after the *. lines)
 *
 * Per-GPU keys: name, uuid, arch (NVML_DEVICE_ARCH_*: 7 Ampere, 9 Hopper, 4 Pascal),
 * power_w, ramp_w_per_s, wave_w, wave_period_s, wave_phase, wave_shape=cos|square
 * (power in W at time t is, with x = t/wave_period_s + wave_phase,
 *   cos:    P(t) = power_w + ramp_w_per_s*t + wave_w*(1-cos(2*pi*x))/2
 *   square: P(t) = power_w + ramp_w_per_s*t + wave_w*(frac(x) < 0.5) ),
 * energy_since (s), energy_offset_mj (the counter is offset + 1000*integral of P from
 * energy_since to t, rounded to mJ; move energy_since forward to model a reset),
 * usage=average|instant (what nvmlDeviceGetPowerUsage returns; default by arch/name),
 * fields=1|0|average (NVML_FI_DEV_POWER_AVERAGE and _INSTANT supported, neither, or only
 * the average), util_gpu, util_mem,
 * mem_total, mem_used (bytes), temp_c, limit_mw, pids (comma list), rc.FUNCTION=RC,
 * sm (comma list, one SM utilisation % per pid, for nvmlDeviceGetProcessUtilization:
 * NOT_FOUND when empty), mig (comma list of MIG instance UUIDs on this GPU: their handles
 * come from nvmlDeviceGetHandleByUUID and lead back to this GPU through
 * nvmlDeviceGetDeviceHandleFromMigDeviceHandle).
 * RC is a number or a name: NOT_SUPPORTED, NO_PERMISSION, DRIVER_NOT_LOADED, GPU_IS_LOST,
 * UNKNOWN, ... (without the NVML_ERROR_ prefix).
 *
 * Compile with -DOMIT_<function> to leave a symbol out (pynvml then raises
 * NVMLError_FunctionNotFound). Extra exports for tests: fakeNvmlCallCount(name),
 * fakeNvmlResetCallCounts().
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef int nvmlReturn_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_NOT_FOUND 6

#define MAXDEV 64
#define MAXPIDS 64

#define FAKE_FUNCS(X)                                                                      \
    X(nvmlInitWithFlags) X(nvmlInit_v2) X(nvmlInit) X(nvmlShutdown) X(nvmlErrorString)     \
    X(nvmlSystemGetDriverVersion) X(nvmlSystemGetNVMLVersion)                              \
    X(nvmlSystemGetCudaDriverVersion) X(nvmlSystemGetCudaDriverVersion_v2)                 \
    X(nvmlDeviceGetCount_v2) X(nvmlDeviceGetCount) X(nvmlDeviceGetHandleByIndex_v2)        \
    X(nvmlDeviceGetHandleByIndex) X(nvmlDeviceGetHandleByUUID) X(nvmlDeviceGetIndex)       \
    X(nvmlDeviceGetName) X(nvmlDeviceGetUUID) X(nvmlDeviceGetArchitecture)                 \
    X(nvmlDeviceGetTotalEnergyConsumption) X(nvmlDeviceGetPowerUsage)                      \
    X(nvmlDeviceGetFieldValues) X(nvmlDeviceGetUtilizationRates)                           \
    X(nvmlDeviceGetMemoryInfo) X(nvmlDeviceGetMemoryInfo_v2) X(nvmlDeviceGetTemperature)   \
    X(nvmlDeviceGetEnforcedPowerLimit) X(nvmlDeviceGetPowerManagementLimit)                \
    X(nvmlDeviceGetComputeRunningProcesses_v3) X(nvmlDeviceGetComputeRunningProcesses_v2)  \
    X(nvmlDeviceGetProcessUtilization) X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle)

#define AS_ENUM(n) FN_##n,
enum { FAKE_FUNCS(AS_ENUM) NFUNC };
#define AS_NAME(n) #n,
static const char *fn_names[NFUNC] = {FAKE_FUNCS(AS_NAME)};

struct fake_dev {
    int index;
    char name[96];
    char uuid[96];
    unsigned arch;
    double power_w, ramp, wave_w, wave_period, wave_phase;
    int square;
    double energy_since, energy_offset_mj;
    int usage;  /* 0 instant, 1 average, -1 by arch */
    int fields; /* power fields supported */
    unsigned util_gpu, util_mem, temp_c, limit_mw;
    unsigned long long mem_total, mem_used;
    unsigned pids[MAXPIDS];
    int npids;
    unsigned sm[MAXPIDS];
    int nsm;
    char mig[8][96];
    int nmig;
    int rc[NFUNC];
};

/* A MIG instance handle: which GPU it belongs to. */
struct fake_mig {
    int parent;
    int slot;
};
static struct fake_mig migs[64 * 8];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct fake_dev devs[MAXDEV];
static int g_count = 1;
static int g_rc[NFUNC];
static int g_init_rc = 0;
static volatile long g_field_delay_us = 0;
static int g_time_fixed = 0;
static double g_time = 0.0;
static char g_driver[80] = "550.54.15";
static int g_refcount = 0;
static int g_loaded = 0;
static struct stat g_st;
static char g_path[4096];
static unsigned long g_calls[NFUNC];

static const struct { const char *name; int rc; } rc_names[] = {
    {"SUCCESS", 0}, {"UNINITIALIZED", 1}, {"INVALID_ARGUMENT", 2}, {"NOT_SUPPORTED", 3},
    {"NO_PERMISSION", 4}, {"ALREADY_INITIALIZED", 5}, {"NOT_FOUND", 6},
    {"INSUFFICIENT_SIZE", 7}, {"INSUFFICIENT_POWER", 8}, {"DRIVER_NOT_LOADED", 9},
    {"TIMEOUT", 10}, {"IRQ_ISSUE", 11}, {"LIBRARY_NOT_FOUND", 12}, {"FUNCTION_NOT_FOUND", 13},
    {"CORRUPTED_INFOROM", 14}, {"GPU_IS_LOST", 15}, {"RESET_REQUIRED", 16},
    {"OPERATING_SYSTEM", 17}, {"LIB_RM_VERSION_MISMATCH", 18}, {"IN_USE", 19},
    {"MEMORY", 20}, {"NO_DATA", 21}, {"UNKNOWN", 999},
};

static int parse_rc(const char *v) {
    if ((v[0] >= '0' && v[0] <= '9') || v[0] == '-') return atoi(v);
    if (strncmp(v, "NVML_ERROR_", 11) == 0) v += 11;
    for (size_t i = 0; i < sizeof rc_names / sizeof rc_names[0]; i++)
        if (strcmp(v, rc_names[i].name) == 0) return rc_names[i].rc;
    fprintf(stderr, "fake_nvml: unknown return code '%s'\n", v);
    return 999;
}

static int fn_index(const char *name) {
    for (int i = 0; i < NFUNC; i++)
        if (strcmp(name, fn_names[i]) == 0) return i;
    return -1;
}

static char *trim(char *s);

static void dev_defaults(struct fake_dev *d, int i) {
    memset(d, 0, sizeof *d);
    d->index = i;
    snprintf(d->name, sizeof d->name, "NVIDIA H100 80GB HBM3");
    snprintf(d->uuid, sizeof d->uuid, "GPU-fa4e0000-0000-4000-8000-%012d", i);
    d->arch = 9;
    d->power_w = 100.0 + 10.0 * i;
    d->wave_period = 20.0;
    d->energy_offset_mj = 1000000.0 * (i + 1);
    d->usage = -1;
    d->fields = 1;
    d->util_gpu = 50;
    d->util_mem = 20;
    d->temp_c = 40;
    d->limit_mw = 700000;
    d->mem_total = 80ULL << 30;
    d->mem_used = 1ULL << 30;
}

static void set_dev_key(struct fake_dev *d, const char *k, const char *v) {
    if (strcmp(k, "name") == 0) snprintf(d->name, sizeof d->name, "%s", v);
    else if (strcmp(k, "uuid") == 0) snprintf(d->uuid, sizeof d->uuid, "%s", v);
    else if (strcmp(k, "arch") == 0) d->arch = (unsigned)strtoul(v, NULL, 0);
    else if (strcmp(k, "power_w") == 0) d->power_w = atof(v);
    else if (strcmp(k, "ramp_w_per_s") == 0) d->ramp = atof(v);
    else if (strcmp(k, "wave_w") == 0) d->wave_w = atof(v);
    else if (strcmp(k, "wave_period_s") == 0) d->wave_period = atof(v);
    else if (strcmp(k, "wave_phase") == 0) d->wave_phase = atof(v);
    else if (strcmp(k, "wave_shape") == 0) d->square = strcmp(v, "square") == 0;
    else if (strcmp(k, "energy_since") == 0) d->energy_since = atof(v);
    else if (strcmp(k, "energy_offset_mj") == 0) d->energy_offset_mj = atof(v);
    else if (strcmp(k, "usage") == 0) d->usage = strcmp(v, "average") == 0 ? 1 : 0;
    else if (strcmp(k, "fields") == 0) d->fields = strcmp(v, "average") == 0 ? 2 : atoi(v);
    else if (strcmp(k, "util_gpu") == 0) d->util_gpu = (unsigned)atoi(v);
    else if (strcmp(k, "util_mem") == 0) d->util_mem = (unsigned)atoi(v);
    else if (strcmp(k, "temp_c") == 0) d->temp_c = (unsigned)atoi(v);
    else if (strcmp(k, "limit_mw") == 0) d->limit_mw = (unsigned)atoi(v);
    else if (strcmp(k, "mem_total") == 0) d->mem_total = strtoull(v, NULL, 0);
    else if (strcmp(k, "mem_used") == 0) d->mem_used = strtoull(v, NULL, 0);
    else if (strcmp(k, "pids") == 0) {
        d->npids = 0;
        const char *p = v;
        while (*p && d->npids < MAXPIDS) {
            char *end;
            unsigned long x = strtoul(p, &end, 10);
            if (end == p) break;
            d->pids[d->npids++] = (unsigned)x;
            p = (*end == ',') ? end + 1 : end;
        }
    } else if (strcmp(k, "sm") == 0) {
        d->nsm = 0;
        const char *p = v;
        while (*p && d->nsm < MAXPIDS) {
            char *end;
            unsigned long x = strtoul(p, &end, 10);
            if (end == p) break;
            d->sm[d->nsm++] = (unsigned)x;
            p = (*end == ',') ? end + 1 : end;
        }
    } else if (strcmp(k, "mig") == 0) {
        d->nmig = 0;
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", v);
        for (char *tok = strtok(buf, ","); tok && d->nmig < 8; tok = strtok(NULL, ","))
            snprintf(d->mig[d->nmig++], sizeof d->mig[0], "%s", trim(tok));
    } else if (strncmp(k, "rc.", 3) == 0) {
        int f = fn_index(k + 3);
        if (f < 0) fprintf(stderr, "fake_nvml: unknown function '%s'\n", k + 3);
        else d->rc[f] = parse_rc(v);
    } else {
        fprintf(stderr, "fake_nvml: unknown key '%s'\n", k);
    }
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
    return s;
}

static void load_config(void) {
    g_count = 1;
    g_init_rc = 0;
    g_field_delay_us = 0;
    g_time_fixed = 0;
    snprintf(g_driver, sizeof g_driver, "550.54.15");
    memset(g_rc, 0, sizeof g_rc);
    for (int i = 0; i < MAXDEV; i++) dev_defaults(&devs[i], i);
    if (!g_path[0]) return;
    FILE *f = fopen(g_path, "r");
    if (!f) return;
    char line[4096];
    for (int pass = 0; pass < 2; pass++) {
        rewind(f);
        while (fgets(line, sizeof line, f)) {
            char *hash = strchr(line, '#');
            if (hash) *hash = 0;
            char *eq = strchr(line, '=');
            if (!eq) continue;
            *eq = 0;
            char *k = trim(line), *v = trim(eq + 1);
            if (pass == 0) {
                if (strcmp(k, "count") == 0) {
                    g_count = atoi(v);
                    if (g_count < 0) g_count = 0;
                    if (g_count > MAXDEV) g_count = MAXDEV;
                } else if (strcmp(k, "time") == 0) {
                    g_time_fixed = strcmp(v, "real") != 0;
                    g_time = atof(v);
                } else if (strcmp(k, "driver") == 0) {
                    snprintf(g_driver, sizeof g_driver, "%s", v);
                } else if (strcmp(k, "init") == 0) {
                    g_init_rc = parse_rc(v);
                } else if (strcmp(k, "field_delay_us") == 0) {
                    g_field_delay_us = atol(v);
                } else if (strncmp(k, "rc.", 3) == 0) {
                    int fi = fn_index(k + 3);
                    if (fi < 0) fprintf(stderr, "fake_nvml: unknown function '%s'\n", k + 3);
                    else g_rc[fi] = parse_rc(v);
                } else if (strncmp(k, "*.", 2) == 0) {
                    for (int i = 0; i < MAXDEV; i++) set_dev_key(&devs[i], k + 2, v);
                } else if (strncmp(k, "gpu", 3) != 0) {
                    fprintf(stderr, "fake_nvml: unknown key '%s'\n", k);
                }
            } else if (strncmp(k, "gpu", 3) == 0) {
                char *dot;
                long i = strtol(k + 3, &dot, 10);
                if (*dot == '.' && i >= 0 && i < MAXDEV) set_dev_key(&devs[i], dot + 1, v);
            }
        }
    }
    fclose(f);
}

/* Re-read the config when the env var or the file changed. Called with mu held. */
static void maybe_reload(void) {
    const char *p = getenv("WATTUI_FAKE_NVML_CONFIG");
    if (!p) p = "";
    struct stat st;
    memset(&st, 0, sizeof st);
    if (p[0] && stat(p, &st) != 0) memset(&st, 0, sizeof st);
    if (g_loaded && strcmp(p, g_path) == 0 && st.st_ino == g_st.st_ino &&
        st.st_size == g_st.st_size && st.st_mtim.tv_sec == g_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == g_st.st_mtim.tv_nsec)
        return;
    snprintf(g_path, sizeof g_path, "%s", p);
    g_st = st;
    g_loaded = 1;
    load_config();
}

static double now_s(void) {
    if (g_time_fixed) return g_time;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double power_at(const struct fake_dev *d, double t) {
    double p = d->power_w + d->ramp * t;
    if (d->wave_w != 0.0 && d->wave_period > 0.0) {
        double x = t / d->wave_period + d->wave_phase;
        if (d->square)
            p += (x - floor(x) < 0.5) ? d->wave_w : 0.0;
        else
            p += d->wave_w * (1.0 - cos(2.0 * M_PI * x)) / 2.0;
    }
    return p < 0.0 ? 0.0 : p;
}

/* Antiderivative of P (J); exact for the formula above (ignoring the clamp at 0). */
static double energy_anti(const struct fake_dev *d, double t) {
    double e = d->power_w * t + d->ramp * t * t / 2.0;
    if (d->wave_w != 0.0 && d->wave_period > 0.0) {
        double x = t / d->wave_period + d->wave_phase;
        if (d->square) {
            double n = floor(x);
            e += d->wave_w * d->wave_period * (0.5 * n + fmin(x - n, 0.5));
        } else {
            double w = 2.0 * M_PI / d->wave_period;
            e += d->wave_w * (t - sin(w * t + 2.0 * M_PI * d->wave_phase) / w) / 2.0;
        }
    }
    return e;
}

static unsigned mw(double w) { return (unsigned)llround(w * 1000.0); }

static int enter(int fn) {
    pthread_mutex_lock(&mu);
    maybe_reload();
    g_calls[fn]++;
    return g_rc[fn];
}

#define RETURN(x) do { int r_ = (x); pthread_mutex_unlock(&mu); return r_; } while (0)
#define BEGIN(fn) do { int rc_ = enter(FN_##fn); if (rc_) RETURN(rc_); \
    if (g_refcount <= 0) RETURN(NVML_ERROR_UNINITIALIZED); } while (0)
#define BEGIN_DEV(fn, d) do { BEGIN(fn); if (!valid(d)) RETURN(NVML_ERROR_INVALID_ARGUMENT); \
    if ((d)->rc[FN_##fn]) RETURN((d)->rc[FN_##fn]); } while (0)

typedef struct fake_dev *nvmlDevice_t;

static int valid(nvmlDevice_t d) {
    return d != NULL && d >= devs && d < devs + g_count;
}

/* ---- extra exports for tests ---- */
unsigned long fakeNvmlCallCount(const char *name) {
    pthread_mutex_lock(&mu);
    int i = fn_index(name);
    unsigned long n = i < 0 ? 0 : g_calls[i];
    pthread_mutex_unlock(&mu);
    return n;
}

void fakeNvmlResetCallCounts(void) {
    pthread_mutex_lock(&mu);
    memset(g_calls, 0, sizeof g_calls);
    pthread_mutex_unlock(&mu);
}

/* ---- init / system ---- */
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    int rc = enter(FN_nvmlInitWithFlags);
    if (rc) RETURN(rc);
    if (g_init_rc) RETURN(g_init_rc);
    g_refcount++;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    BEGIN(nvmlShutdown);
    g_refcount--;
    RETURN(NVML_SUCCESS);
}

const char *nvmlErrorString(nvmlReturn_t r) {
    for (size_t i = 0; i < sizeof rc_names / sizeof rc_names[0]; i++)
        if (rc_names[i].rc == r) return rc_names[i].name;
    return "Unknown Error";
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *buf, unsigned int len) {
    BEGIN(nvmlSystemGetDriverVersion);
    if (!buf) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (strlen(g_driver) + 1 > len) RETURN(NVML_ERROR_INSUFFICIENT_SIZE);
    snprintf(buf, len, "%s", g_driver);
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *buf, unsigned int len) {
    BEGIN(nvmlSystemGetNVMLVersion);
    if (!buf) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    snprintf(buf, len, "12.%s", g_driver);
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) {
    BEGIN(nvmlSystemGetCudaDriverVersion);
    if (!v) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *v = 12040;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
    BEGIN(nvmlSystemGetCudaDriverVersion_v2);
    if (!v) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *v = 12040;
    RETURN(NVML_SUCCESS);
}

/* ---- device enumeration ---- */
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) {
    BEGIN(nvmlDeviceGetCount_v2);
    if (!n) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *n = (unsigned)g_count;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *n) {
    BEGIN(nvmlDeviceGetCount);
    if (!n) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *n = (unsigned)g_count;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *out) {
    BEGIN(nvmlDeviceGetHandleByIndex_v2);
    if (!out || i >= (unsigned)g_count) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (devs[i].rc[FN_nvmlDeviceGetHandleByIndex_v2])
        RETURN(devs[i].rc[FN_nvmlDeviceGetHandleByIndex_v2]);
    *out = &devs[i];
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, nvmlDevice_t *out) {
    BEGIN(nvmlDeviceGetHandleByIndex);
    if (!out || i >= (unsigned)g_count) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *out = &devs[i];
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *out) {
    BEGIN(nvmlDeviceGetHandleByUUID);
    if (!out || !uuid) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    for (int i = 0; i < g_count; i++) {
        if (strcmp(devs[i].uuid, uuid) == 0) {
            *out = &devs[i];
            RETURN(NVML_SUCCESS);
        }
        for (int j = 0; j < devs[i].nmig; j++)
            if (strcmp(devs[i].mig[j], uuid) == 0) {
                migs[i * 8 + j].parent = i;
                migs[i * 8 + j].slot = j;
                *out = (nvmlDevice_t)(void *)&migs[i * 8 + j];
                RETURN(NVML_SUCCESS);
            }
    }
    RETURN(NVML_ERROR_NOT_FOUND);
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t *out) {
    BEGIN(nvmlDeviceGetDeviceHandleFromMigDeviceHandle);
    struct fake_mig *m = (struct fake_mig *)(void *)mig;
    if (!out || m < migs || m >= migs + sizeof migs / sizeof migs[0])
        RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *out = &devs[m->parent];
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *i) {
    BEGIN_DEV(nvmlDeviceGetIndex, d);
    if (!i) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *i = (unsigned)d->index;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned int len) {
    BEGIN_DEV(nvmlDeviceGetName, d);
    if (!buf) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (strlen(d->name) + 1 > len) RETURN(NVML_ERROR_INSUFFICIENT_SIZE);
    snprintf(buf, len, "%s", d->name);
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *buf, unsigned int len) {
    BEGIN_DEV(nvmlDeviceGetUUID, d);
    if (!buf) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    if (strlen(d->uuid) + 1 > len) RETURN(NVML_ERROR_INSUFFICIENT_SIZE);
    snprintf(buf, len, "%s", d->uuid);
    RETURN(NVML_SUCCESS);
}

#ifndef OMIT_nvmlDeviceGetArchitecture
nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t d, unsigned int *arch) {
    BEGIN_DEV(nvmlDeviceGetArchitecture, d);
    if (!arch) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *arch = d->arch;
    RETURN(NVML_SUCCESS);
}
#endif

/* ---- energy and power ---- */
static unsigned long long counter_mj(const struct fake_dev *d, double t) {
    double e = energy_anti(d, t) - energy_anti(d, d->energy_since);
    double v = d->energy_offset_mj + 1000.0 * e;
    return v <= 0.0 ? 0ULL : (unsigned long long)llround(v);
}

/* Mean power over the second before t (what the driver's 1 s average would say). */
static double average_1s(const struct fake_dev *d, double t) {
    return energy_anti(d, t) - energy_anti(d, t - 1.0);
}

static int usage_is_average(const struct fake_dev *d) {
    if (d->usage >= 0) return d->usage;
    return d->arch >= 7 && d->arch != 0xffffffffu && strstr(d->name, "A100") == NULL;
}

#ifndef OMIT_nvmlDeviceGetTotalEnergyConsumption
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *e) {
    BEGIN_DEV(nvmlDeviceGetTotalEnergyConsumption, d);
    if (!e) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *e = counter_mj(d, now_s());
    RETURN(NVML_SUCCESS);
}
#endif

#ifndef OMIT_nvmlDeviceGetPowerUsage
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *p) {
    BEGIN_DEV(nvmlDeviceGetPowerUsage, d);
    if (!p) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    double t = now_s();
    *p = mw(usage_is_average(d) ? average_1s(d, t) : power_at(d, t));
    RETURN(NVML_SUCCESS);
}
#endif

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    signed int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    uint32_t fieldId;
    uint32_t scopeId;
    int64_t timestamp;
    int64_t latencyUsec;
    unsigned int valueType;
    unsigned int nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

#define NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION 83
#define NVML_FI_DEV_POWER_AVERAGE 185
#define NVML_FI_DEV_POWER_INSTANT 186

#ifndef OMIT_nvmlDeviceGetFieldValues
nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int n, nvmlFieldValue_t *v) {
    long delay_us = g_field_delay_us; /* as of the last call's config (read under the lock) */
    if (delay_us > 0) {
        struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) != 0) {
        }
    }
    BEGIN_DEV(nvmlDeviceGetFieldValues, d);
    if (!v || n < 0) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    double t = now_s();
    for (int i = 0; i < n; i++) {
        v[i].timestamp = (int64_t)(t * 1e6);
        v[i].latencyUsec = 0;
        v[i].value.ullVal = 0;
        v[i].nvmlReturn = NVML_SUCCESS;
        switch (v[i].fieldId) {
        case NVML_FI_DEV_POWER_AVERAGE:
        case NVML_FI_DEV_POWER_INSTANT:
            if (!d->fields || (d->fields == 2 && v[i].fieldId == NVML_FI_DEV_POWER_INSTANT)) {
                v[i].nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
                break;
            }
            v[i].valueType = 1; /* unsigned int, mW */
            v[i].value.uiVal = mw(v[i].fieldId == NVML_FI_DEV_POWER_AVERAGE
                                      ? average_1s(d, t) : power_at(d, t));
            break;
        case NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION:
            if (d->rc[FN_nvmlDeviceGetTotalEnergyConsumption]) {
                v[i].nvmlReturn = (unsigned)d->rc[FN_nvmlDeviceGetTotalEnergyConsumption];
                break;
            }
            v[i].valueType = 3; /* unsigned long long, mJ */
            v[i].value.ullVal = counter_mj(d, t);
            break;
        default:
            v[i].nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        }
    }
    RETURN(NVML_SUCCESS);
}
#endif

/* ---- slower figures ---- */
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

#ifndef OMIT_nvmlDeviceGetUtilizationRates
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
    BEGIN_DEV(nvmlDeviceGetUtilizationRates, d);
    if (!u) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    u->gpu = d->util_gpu;
    u->memory = d->util_mem;
    RETURN(NVML_SUCCESS);
}
#endif

#ifndef OMIT_nvmlDeviceGetMemoryInfo
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    BEGIN_DEV(nvmlDeviceGetMemoryInfo, d);
    if (!m) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    m->total = d->mem_total;
    m->used = d->mem_used;
    m->free = d->mem_total > d->mem_used ? d->mem_total - d->mem_used : 0;
    RETURN(NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
    BEGIN_DEV(nvmlDeviceGetMemoryInfo_v2, d);
    if (!m) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    m->total = d->mem_total;
    m->reserved = 0;
    m->used = d->mem_used;
    m->free = d->mem_total > d->mem_used ? d->mem_total - d->mem_used : 0;
    RETURN(NVML_SUCCESS);
}
#endif

#ifndef OMIT_nvmlDeviceGetTemperature
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, unsigned int sensor, unsigned int *t) {
    BEGIN_DEV(nvmlDeviceGetTemperature, d);
    if (!t || sensor != 0) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *t = d->temp_c;
    RETURN(NVML_SUCCESS);
}
#endif

#ifndef OMIT_nvmlDeviceGetEnforcedPowerLimit
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *l) {
    BEGIN_DEV(nvmlDeviceGetEnforcedPowerLimit, d);
    if (!l) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *l = d->limit_mw;
    RETURN(NVML_SUCCESS);
}
#endif

#ifndef OMIT_nvmlDeviceGetPowerManagementLimit
nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int *l) {
    BEGIN_DEV(nvmlDeviceGetPowerManagementLimit, d);
    if (!l) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    *l = d->limit_mw;
    RETURN(NVML_SUCCESS);
}
#endif

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

static int procs(nvmlDevice_t d, unsigned int *count, nvmlProcessInfo_t *infos) {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned n = (unsigned)d->npids;
    if (infos == NULL || *count < n) {
        *count = n;
        return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned i = 0; i < n; i++) {
        infos[i].pid = d->pids[i];
        infos[i].usedGpuMemory = 1ULL << 30;
        infos[i].gpuInstanceId = 0xffffffffu;
        infos[i].computeInstanceId = 0xffffffffu;
    }
    *count = n;
    return NVML_SUCCESS;
}

#ifndef OMIT_nvmlDeviceGetComputeRunningProcesses
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                      nvmlProcessInfo_t *infos) {
    BEGIN_DEV(nvmlDeviceGetComputeRunningProcesses_v3, d);
    RETURN(procs(d, count, infos));
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int *count,
                                                      nvmlProcessInfo_t *infos) {
    BEGIN_DEV(nvmlDeviceGetComputeRunningProcesses_v2, d);
    RETURN(procs(d, count, infos));
}
#endif

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

#ifndef OMIT_nvmlDeviceGetProcessUtilization
/* One sample per pid that has an sm value, stamped now (us); NOT_FOUND when none. */
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d, nvmlProcessUtilizationSample_t *u,
                                             unsigned int *count, unsigned long long last) {
    BEGIN_DEV(nvmlDeviceGetProcessUtilization, d);
    (void)last;
    if (!count) RETURN(NVML_ERROR_INVALID_ARGUMENT);
    unsigned n = (unsigned)(d->nsm < d->npids ? d->nsm : d->npids);
    if (n == 0) {
        *count = 0;
        RETURN(NVML_ERROR_NOT_FOUND);
    }
    if (u == NULL || *count < n) {
        *count = n;
        RETURN(NVML_ERROR_INSUFFICIENT_SIZE);
    }
    unsigned long long ts = (unsigned long long)(now_s() * 1e6);
    for (unsigned i = 0; i < n; i++) {
        u[i].pid = d->pids[i];
        u[i].timeStamp = ts;
        u[i].smUtil = d->sm[i];
        u[i].memUtil = d->sm[i] / 2;
        u[i].encUtil = 0;
        u[i].decUtil = 0;
    }
    *count = n;
    RETURN(NVML_SUCCESS);
}
#endif
