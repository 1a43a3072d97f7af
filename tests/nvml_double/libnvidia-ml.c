/*
 * A TEST DOUBLE of NVML (libnvidia-ml.so.1), for harness logic only: it lets
 * the tests drive neon-perf's NVML code paths (process GPU memory of a
 * `command`, `memory_limit = "gpu:F"`, a flood's `server_gpu_memory` and
 * `cancel`'s GPU half, the GPU monitor) on a machine without a GPU. It is
 * never what users run, and nothing it reports is a GPU measurement.
 *
 * What it pretends:
 *   - FAKE_NVML_GPUS GPUs (default 1), each of FAKE_NVML_TOTAL_MIB MiB
 *     (default 1024), named "NVML test double".
 *   - The "GPU processes" are the processes whose environment holds
 *     FAKE_NVML_GPU=1. Each uses, on GPU 0, as much GPU memory as it has
 *     resident host memory (VmRSS), so a program's ordinary allocations
 *     stand in for CUDA allocations.
 *   - FAKE_NVML_PID_OFFSET=N reports every such pid plus N, as NVML does
 *     in a container that does not share the host's PID namespace.
 *   - FAKE_NVML_MEMORY_NA=1 lists them without a figure for their memory
 *     (NVML_VALUE_NOT_AVAILABLE), as a driver that withholds per-process
 *     memory does (vGPU, WDDM).
 * Only the calls neon-perf makes are here; any other symbol is missing,
 * which nvml-wrapper reports as an error, as for an older driver.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
};

struct fake_device { unsigned int index; };
typedef struct fake_device *nvmlDevice_t;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

#define MAX_GPUS 8
#define MAX_PROCS 256
static struct fake_device devices[MAX_GPUS];

static unsigned long env_ul(const char *name, unsigned long dflt) {
    const char *v = getenv(name);
    return v && *v ? strtoul(v, NULL, 10) : dflt;
}

static unsigned int gpu_count(void) {
    unsigned long n = env_ul("FAKE_NVML_GPUS", 1);
    return n > MAX_GPUS ? MAX_GPUS : (unsigned int)n;
}

static unsigned long long total_bytes(void) {
    return (unsigned long long)env_ul("FAKE_NVML_TOTAL_MIB", 1024) << 20;
}

/* Whether /proc/PID/environ holds FAKE_NVML_GPU=1. */
static int is_gpu_process(const char *pid) {
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%s/environ", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strcmp(buf + i, "FAKE_NVML_GPU=1") == 0) return 1;
    return 0;
}

/* VmRSS of PID in bytes (0 when it is gone). */
static unsigned long long rss_bytes(const char *pid) {
    char path[64], line[256];
    unsigned long long kib = 0;
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %llu kB", &kib) == 1) break;
    fclose(f);
    return kib << 10;
}

/* The GPU processes of GPU `index`, at most `cap` of them; their count. */
static unsigned int gpu_processes(unsigned int index, nvmlProcessInfo_t *out, unsigned int cap) {
    if (index != 0) return 0;
    unsigned int n = 0;
    unsigned long offset = env_ul("FAKE_NVML_PID_OFFSET", 0);
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        if (!isdigit((unsigned char)e->d_name[0]) || !is_gpu_process(e->d_name)) continue;
        out[n].pid = (unsigned int)(strtoul(e->d_name, NULL, 10) + offset);
        out[n].usedGpuMemory = env_ul("FAKE_NVML_MEMORY_NA", 0) ? ~0ULL : rss_bytes(e->d_name);
        out[n].gpuInstanceId = out[n].computeInstanceId = 0xFFFFFFFFu;
        n++;
    }
    closedir(d);
    return n;
}

static unsigned long long used_bytes(unsigned int index) {
    nvmlProcessInfo_t procs[MAX_PROCS];
    unsigned int n = gpu_processes(index, procs, MAX_PROCS);
    unsigned long long used = 0;
    for (unsigned int i = 0; i < n; i++)
        if (procs[i].usedGpuMemory != ~0ULL) used += procs[i].usedGpuMemory;
    return used > total_bytes() ? total_bytes() : used;
}

static nvmlReturn_t put_string(char *dst, unsigned int len, const char *s) {
    if (!dst || len <= strlen(s)) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(dst, s);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { return NVML_SUCCESS; }
nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return NVML_SUCCESS; }
nvmlReturn_t nvmlShutdown(void) { return NVML_SUCCESS; }

const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len) {
    return put_string(v, len, "0.0-test-double");
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int len) {
    return put_string(v, len, "0.0-test-double");
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = gpu_count();
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!device || index >= gpu_count()) return NVML_ERROR_INVALID_ARGUMENT;
    devices[index].index = index;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *index) {
    if (!d || !index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = d->index;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len) {
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    return put_string(name, len, "NVML test double");
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
    if (!d || !m) return NVML_ERROR_INVALID_ARGUMENT;
    m->total = total_bytes();
    m->used = used_bytes(d->index);
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
    if (!d || !m) return NVML_ERROR_INVALID_ARGUMENT;
    m->total = total_bytes();
    m->reserved = 0;
    m->used = used_bytes(d->index);
    m->free = m->total - m->used;
    return NVML_SUCCESS;
}

/* NVML's two-call protocol: with too small a buffer (or none), the count
 * and NVML_ERROR_INSUFFICIENT_SIZE; with room, the processes. */
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    nvmlProcessInfo_t procs[MAX_PROCS];
    if (!d || !count) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int n = gpu_processes(d->index, procs, MAX_PROCS);
    if (!infos || *count < n) {
        *count = n;
        return n == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    memcpy(infos, procs, n * sizeof *procs);
    *count = n;
    return NVML_SUCCESS;
}
