/* wattui.sources._ticker: the sampler's light ticks in a native thread.
 *
 * Each tick is one call of nvmlDeviceGetFieldValues per GPU (power and the energy
 * counter), at a uniformly random moment in each slot of the schedule (the dithered
 * schedule of wattui/sampler.py). The results go to a ring that Python drains about once
 * a second; the thread writes a byte to a pipe when a tick passes the time Python asked
 * to be woken at, so the Python thread wakes once a second instead of at every tick.
 * A wake-up of this thread costs about two thirds of a Python thread's (docs/measurement.md).
 *
 * Optional: built where a C compiler is found (pip install), and wattui falls back to
 * Python ticks without it. It takes NVML's function by address from the ctypes binding,
 * so it links nothing and never loads NVML itself.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

typedef int (*field_fn)(void *device, int count, void *values);

typedef struct {
    void *device;
    int count;       /* fields in this GPU's call */
    size_t offset;   /* where its fields start in the tick's buffer */
} call_t;

typedef struct {
    PyObject_HEAD
    pthread_t thread;
    int started;           /* under join_mu */
    int running;           /* 1 from start() until the thread ends; read atomically */
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* signalled by stop: ends the thread's wait for its next tick */
    pthread_mutex_t join_mu; /* one joiner at a time: a second stop() waits for the first */
    /* fixed at construction */
    field_fn fn;
    int ncalls;
    call_t *calls;
    size_t bufsize;
    unsigned char *tmpl;   /* the buffer with its field ids set: copied before each tick */
    double t0, slot_s;
    long long slot;        /* the slot of the last tick (thread only) */
    uint64_t rng;
    int wake_fd;
    /* the ring, under mu */
    int cap, head, count;
    unsigned long long dropped, ticks;
    double *t_mono, *t_wall;
    int *rcs;
    unsigned char *bufs;
    double wake_at;        /* write to wake_fd at the first tick at or after this */
    int stop;              /* set under mu; the thread also reads it atomically */
} Ticker;

static int stopping(Ticker *t) { return __atomic_load_n(&t->stop, __ATOMIC_ACQUIRE); }

static double clock_s(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* xorshift64*: a uniform double in [0, 1) */
static double uniform(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}

static void *run_ticks(Ticker *t) {
#ifdef __linux__
    prctl(PR_SET_NAME, "wattui-ticker", 0, 0, 0); /* as top -H and /proc show it */
#endif
    unsigned char *scratch = malloc(t->bufsize ? t->bufsize : 1);
    int *rcs = malloc(sizeof(int) * (size_t)(t->ncalls ? t->ncalls : 1));
    if (!scratch || !rcs) {
        free(scratch);
        free(rcs);
        return NULL;
    }
    while (!stopping(t)) {
        /* the next slot; one that fell behind by whole slots resumes in the current one */
        double now = clock_s(CLOCK_MONOTONIC);
        long long k = t->slot + 1;
        long long current = (long long)floor((now - t->t0) / t->slot_s);
        if (current > k) k = current;
        t->slot = k;
        double at = t->t0 + ((double)k + uniform(&t->rng)) * t->slot_s;
        if (at > now) {
            struct timespec ts;
            ts.tv_sec = (time_t)at;
            ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec += 1;
                ts.tv_nsec -= 1000000000L;
            }
            /* a timed wait that stop() ends at once (a sleep would hold stop() up to a
             * slot: seconds at a long --period) */
            pthread_mutex_lock(&t->mu);
            while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT) {
            }
            pthread_mutex_unlock(&t->mu);
        }
        if (stopping(t)) break;
        double tm = clock_s(CLOCK_MONOTONIC);
        double tw = clock_s(CLOCK_REALTIME);
        memcpy(scratch, t->tmpl, t->bufsize);
        for (int i = 0; i < t->ncalls; i++)
            rcs[i] = t->fn(t->calls[i].device, t->calls[i].count, scratch + t->calls[i].offset);
        int wake = 0;
        pthread_mutex_lock(&t->mu);
        int slot;
        if (t->count == t->cap) { /* Python has not drained for a long while: drop the oldest */
            slot = t->head;
            t->head = (t->head + 1) % t->cap;
            t->dropped++;
        } else {
            slot = (t->head + t->count) % t->cap;
            t->count++;
        }
        t->t_mono[slot] = tm;
        t->t_wall[slot] = tw;
        memcpy(t->rcs + (size_t)slot * t->ncalls, rcs, sizeof(int) * (size_t)t->ncalls);
        memcpy(t->bufs + (size_t)slot * t->bufsize, scratch, t->bufsize);
        t->ticks++;
        if (tm >= t->wake_at) {
            t->wake_at = INFINITY;
            wake = 1;
        }
        pthread_mutex_unlock(&t->mu);
        if (wake) {
            char b = 1;
            ssize_t r = write(t->wake_fd, &b, 1); /* a full pipe already wakes the reader */
            (void)r;
        }
    }
    free(scratch);
    free(rcs);
    return NULL;
}

/* The thread: its ticks, then a flag that says it ended (by stop() or on its own: a
 * failed allocation), so the sampler can take the ticks itself again. */
static void *run(void *arg) {
    Ticker *t = (Ticker *)arg;
    run_ticks(t);
    __atomic_store_n(&t->running, 0, __ATOMIC_RELEASE);
    return NULL;
}

static void ticker_free_buffers(Ticker *t) {
    PyMem_Free(t->calls);
    PyMem_Free(t->tmpl);
    PyMem_Free(t->t_mono);
    PyMem_Free(t->t_wall);
    PyMem_Free(t->rcs);
    PyMem_Free(t->bufs);
    t->calls = NULL;
    t->tmpl = NULL;
    t->t_mono = t->t_wall = NULL;
    t->rcs = NULL;
    t->bufs = NULL;
}

static void signal_stop(Ticker *t) {
    pthread_mutex_lock(&t->mu);
    __atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Stop the thread and wait for it. Two threads may call this at once (the sampler's
 * thread and NvmlSource.close()): both return only once the thread has ended, and it is
 * joined once (a second pthread_join of one thread is undefined: glibc hangs). */
static void join_thread(Ticker *t) {
    signal_stop(t);
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&t->join_mu);
    if (t->started) {
        pthread_join(t->thread, NULL);
        t->started = 0;
    }
    pthread_mutex_unlock(&t->join_mu);
    Py_END_ALLOW_THREADS
}

static int Ticker_init(Ticker *t, PyObject *args, PyObject *kw) {
    static char *names[] = {"fn", "calls", "template", "t0", "slot_s", "seed", "wake_fd", "field_size",
                            "capacity", NULL};
    unsigned long long fn, seed;
    PyObject *calls;
    Py_buffer tmpl;
    double t0, slot_s;
    int wake_fd, cap = 512;
    Py_ssize_t field_size;
    if (t->started || t->calls) {
        PyErr_SetString(PyExc_RuntimeError, "a ticker is set up once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KOy*ddKin|i", names, &fn, &calls, &tmpl, &t0,
                                     &slot_s, &seed, &wake_fd, &field_size, &cap))
        return -1;
    int ok = 0;
    PyObject *seq = NULL;
    if (!fn || !(slot_s > 0.0) || cap < 2 || wake_fd < 0 || field_size < 8 || field_size > 4096) {
        PyErr_SetString(PyExc_ValueError, "ticker: bad function, slot, capacity, descriptor or field size");
        goto done;
    }
    seq = PySequence_Fast(calls, "calls: a sequence of (device, count, offset)");
    if (!seq) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n < 1 || n > 4096) {
        PyErr_SetString(PyExc_ValueError, "ticker: 1 to 4096 calls");
        goto done;
    }
    t->calls = PyMem_Calloc((size_t)n, sizeof(call_t));
    if (!t->calls) {
        PyErr_NoMemory();
        goto done;
    }
    t->ncalls = (int)n;
    t->bufsize = (size_t)tmpl.len;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long dev;
        int count;
        Py_ssize_t off;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "Kin", &dev, &count, &off)) goto done;
        /* NVML writes count whole field structs (field_size bytes each) from off */
        if (count < 1 || count > 4096 || off < 0 || (size_t)off > t->bufsize ||
            (size_t)count * (size_t)field_size > t->bufsize - (size_t)off) {
            PyErr_SetString(PyExc_ValueError, "ticker: a call's fields lie outside the buffer");
            goto done;
        }
        t->calls[i].device = (void *)(uintptr_t)dev;
        t->calls[i].count = count;
        t->calls[i].offset = (size_t)off;
    }
    t->tmpl = PyMem_Malloc(t->bufsize ? t->bufsize : 1);
    t->t_mono = PyMem_Calloc((size_t)cap, sizeof(double));
    t->t_wall = PyMem_Calloc((size_t)cap, sizeof(double));
    t->rcs = PyMem_Calloc((size_t)cap * (size_t)n, sizeof(int));
    t->bufs = PyMem_Calloc((size_t)cap, t->bufsize ? t->bufsize : 1);
    if (!t->tmpl || !t->t_mono || !t->t_wall || !t->rcs || !t->bufs) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(t->tmpl, tmpl.buf, t->bufsize);
    t->fn = (field_fn)(uintptr_t)fn;
    t->t0 = t0;
    t->slot_s = slot_s;
    t->slot = -1;
    t->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
    t->wake_fd = wake_fd;
    t->cap = cap;
    t->head = t->count = 0;
    t->dropped = t->ticks = 0;
    t->wake_at = INFINITY;
    t->stop = 0;
    ok = 1;
done:
    Py_XDECREF(seq);
    PyBuffer_Release(&tmpl);
    if (!ok) {
        ticker_free_buffers(t);
        return -1;
    }
    return 0;
}

static PyObject *Ticker_start(Ticker *t, PyObject *Py_UNUSED(ignored)) {
    if (!t->calls) {
        PyErr_SetString(PyExc_RuntimeError, "ticker not set up");
        return NULL;
    }
    if (t->started || t->stop) {
        PyErr_SetString(PyExc_RuntimeError, "a ticker starts once");
        return NULL;
    }
    /* the thread takes no signals: they go to Python's threads, and none interrupts its
     * NVML calls (Python's handlers are installed without SA_RESTART) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    __atomic_store_n(&t->running, 1, __ATOMIC_RELEASE);
    int rc = pthread_create(&t->thread, NULL, run, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        __atomic_store_n(&t->running, 0, __ATOMIC_RELEASE);
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    t->started = 1;
    Py_RETURN_NONE;
}

static PyObject *Ticker_stop(Ticker *t, PyObject *Py_UNUSED(ignored)) {
    join_thread(t);
    Py_RETURN_NONE;
}

static PyObject *Ticker_wake_at(Ticker *t, PyObject *arg) {
    double at = PyFloat_AsDouble(arg);
    if (at == -1.0 && PyErr_Occurred()) return NULL;
    pthread_mutex_lock(&t->mu);
    t->wake_at = at;
    pthread_mutex_unlock(&t->mu);
    Py_RETURN_NONE;
}

/* [(t_mono, t_wall, (rc, ...), bytes of the fields), ...], oldest first; empties the ring */
static PyObject *Ticker_drain(Ticker *t, PyObject *Py_UNUSED(ignored)) {
    if (!t->calls) return PyList_New(0);
    pthread_mutex_lock(&t->mu);
    int n = t->count, head = t->head;
    size_t bs = t->bufsize;
    int nc = t->ncalls;
    /* copy out under the lock (a few kB), build the objects after */
    double *tm = PyMem_Malloc(sizeof(double) * (size_t)(n ? n : 1));
    double *tw = PyMem_Malloc(sizeof(double) * (size_t)(n ? n : 1));
    int *rcs = PyMem_Malloc(sizeof(int) * (size_t)(n ? n : 1) * (size_t)nc);
    unsigned char *bufs = PyMem_Malloc((size_t)(n ? n : 1) * (bs ? bs : 1));
    if (!tm || !tw || !rcs || !bufs) {
        pthread_mutex_unlock(&t->mu);
        PyMem_Free(tm);
        PyMem_Free(tw);
        PyMem_Free(rcs);
        PyMem_Free(bufs);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < n; i++) {
        int s = (head + i) % t->cap;
        tm[i] = t->t_mono[s];
        tw[i] = t->t_wall[s];
        memcpy(rcs + (size_t)i * nc, t->rcs + (size_t)s * nc, sizeof(int) * (size_t)nc);
        memcpy(bufs + (size_t)i * bs, t->bufs + (size_t)s * bs, bs);
    }
    t->head = (head + n) % t->cap;
    t->count = 0;
    pthread_mutex_unlock(&t->mu);
    PyObject *out = PyList_New(n);
    for (int i = 0; out && i < n; i++) {
        PyObject *codes = PyList_New(nc);
        if (!codes) {
            Py_CLEAR(out);
            break;
        }
        for (int j = 0; j < nc; j++) PyList_SET_ITEM(codes, j, PyLong_FromLong(rcs[(size_t)i * nc + j]));
        PyObject *item = Py_BuildValue("(ddNy#)", tm[i], tw[i], codes, (const char *)(bufs + (size_t)i * bs),
                                       (Py_ssize_t)bs);
        if (!item) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, item);
    }
    PyMem_Free(tm);
    PyMem_Free(tw);
    PyMem_Free(rcs);
    PyMem_Free(bufs);
    return out;
}

static PyObject *Ticker_running(Ticker *t, PyObject *Py_UNUSED(ignored)) {
    return PyBool_FromLong(__atomic_load_n(&t->running, __ATOMIC_ACQUIRE));
}

static PyObject *Ticker_stats(Ticker *t, PyObject *Py_UNUSED(ignored)) {
    pthread_mutex_lock(&t->mu);
    unsigned long long ticks = t->ticks, dropped = t->dropped;
    pthread_mutex_unlock(&t->mu);
    return Py_BuildValue("(KK)", ticks, dropped);
}

static PyObject *Ticker_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kw)) {
    Ticker *t = (Ticker *)type->tp_alloc(type, 0);
    if (!t) return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the ticks' times are monotonic */
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->join_mu, NULL);
    return (PyObject *)t;
}

static void Ticker_dealloc(Ticker *t) {
    join_thread(t);
    ticker_free_buffers(t);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->join_mu);
    pthread_cond_destroy(&t->cv);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static PyMethodDef Ticker_methods[] = {
    {"start", (PyCFunction)Ticker_start, METH_NOARGS, "Start the thread."},
    {"stop", (PyCFunction)Ticker_stop, METH_NOARGS, "Stop the thread and wait for it (at most one slot)."},
    {"wake_at", (PyCFunction)Ticker_wake_at, METH_O, "Write a byte to wake_fd at the first tick at or after this monotonic time."},
    {"drain", (PyCFunction)Ticker_drain, METH_NOARGS, "The ticks taken since the last drain, oldest first."},
    {"running", (PyCFunction)Ticker_running, METH_NOARGS, "Whether the thread is taking ticks (False once it ended)."},
    {"stats", (PyCFunction)Ticker_stats, METH_NOARGS, "(ticks taken, ticks dropped from a full ring)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TickerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wattui.sources._ticker.Ticker",
    .tp_basicsize = sizeof(Ticker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Field-value calls at the dithered schedule's ticks, in a native thread.",
    .tp_new = Ticker_new,
    .tp_init = (initproc)Ticker_init,
    .tp_dealloc = (destructor)Ticker_dealloc,
    .tp_methods = Ticker_methods,
};

static struct PyModuleDef ticker_module = {
    PyModuleDef_HEAD_INIT, "_ticker", "The sampler's light ticks in a native thread.", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ticker(void) {
    if (PyType_Ready(&TickerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&ticker_module);
    if (!m) return NULL;
    Py_INCREF(&TickerType);
    if (PyModule_AddObject(m, "Ticker", (PyObject *)&TickerType) < 0) {
        Py_DECREF(&TickerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
