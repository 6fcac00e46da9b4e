/* tfevents.c — TensorBoard event files: TFRecord framing around hand-encoded tensorflow.Event protocol
 * buffers (see tfevents.h for the format). Only the wire types needed here are written: varint (0),
 * 64-bit (1: double), length-delimited (2: strings, nested messages) and 32-bit (5: float), little endian. */
#include "finetune/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

struct ft_tfevents {
    FILE *f;
    char  path[4352];
    int   failed;        /* a write or flush failed: later calls return FT_ERR_IO */
};

/* ---- protobuf wire format ---- */

typedef struct pbuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} pbuf;

static void pb_bytes(pbuf *b, const void *data, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void pb_varint(pbuf *b, uint64_t v) {
    unsigned char t[10];
    int k = 0;
    do {
        t[k] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) t[k] |= 0x80;
        k++;
    } while (v);
    pb_bytes(b, t, (size_t)k);
}

static void pb_key(pbuf *b, unsigned field, unsigned wire) { pb_varint(b, (uint64_t)(field << 3 | wire)); }

static void pb_le(pbuf *b, uint64_t v, int bytes) {
    unsigned char t[8];
    for (int i = 0; i < bytes; i++) t[i] = (unsigned char)(v >> (8 * i));
    pb_bytes(b, t, (size_t)bytes);
}

static void pb_double(pbuf *b, unsigned field, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    pb_key(b, field, 1);
    pb_le(b, u, 8);
}

static void pb_float(pbuf *b, unsigned field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    pb_key(b, field, 5);
    pb_le(b, u, 4);
}

static void pb_len(pbuf *b, unsigned field, const void *data, size_t n) {
    pb_key(b, field, 2);
    pb_varint(b, n);
    pb_bytes(b, data, n);
}

/* ---- TFRecord ---- */

uint32_t ft_tfrecord_mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

void ft_tfrecord_frame(const void *data, size_t n, unsigned char *out) {
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)n >> (8 * i));
    uint32_t c = ft_tfrecord_mask_crc(ft__crc32c(0, out, 8));
    for (int i = 0; i < 4; i++) out[8 + i] = (unsigned char)(c >> (8 * i));
    memcpy(out + 12, data, n);
    c = ft_tfrecord_mask_crc(ft__crc32c(0, data, n));
    for (int i = 0; i < 4; i++) out[12 + n + i] = (unsigned char)(c >> (8 * i));
}

/* one Event (already encoded in e) framed, written and flushed */
static int write_event(ft_tfevents *w, pbuf *e) {
    if (e->oom) return ft_error(FT_ERR_NOMEM, "%s: out of memory", w->path);
    if (w->failed) return ft_error(FT_ERR_IO, "%s: an earlier write failed", w->path);
    unsigned char *rec = malloc(e->n + 16);
    if (!rec) return ft_error(FT_ERR_NOMEM, "%s: out of memory", w->path);
    ft_tfrecord_frame(e->p, e->n, rec);
    int ok = fwrite(rec, 1, e->n + 16, w->f) == e->n + 16 && fflush(w->f) == 0;
    free(rec);
    if (!ok) {
        w->failed = 1;
        return ft_error(FT_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    }
    return FT_OK;
}

double ft_tfevents_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

int ft_tfevents_open(const char *dir, ft_tfevents **out) {
    *out = NULL;
    if (!dir || !*dir) return ft_error(FT_ERR_INVALID, "tensorboard: no folder given");
    if (strlen(dir) > 4000) return ft_error(FT_ERR_RANGE, "%s: path too long", dir);
    FT_TRY(ft_mkdirs(dir));
    ft_tfevents *w = calloc(1, sizeof *w);
    if (!w) return ft_error(FT_ERR_NOMEM, "%s: out of memory", dir);
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    for (char *p = host; *p; p++) if (*p == '/') *p = '_';
    double now = ft_tfevents_now();
    int fd = -1;
    /* the name TensorFlow gives; a second file in the same second gets ".1", ".2", ... */
    for (int k = 0; fd < 0 && k < 1000; k++) {
        int len = k ? snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s.%d", dir, (long long)now, host, k)
                    : snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s", dir, (long long)now, host);
        if (len < 0 || (size_t)len >= sizeof w->path) { free(w); return ft_error(FT_ERR_RANGE, "%s: path too long", dir); }
        fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) {
            int e = errno;
            free(w);
            return ft_error(FT_ERR_IO, "%s: cannot create an event file: %s", dir, strerror(e));
        }
    }
    if (fd < 0 || !(w->f = fdopen(fd, "wb"))) {
        if (fd >= 0) close(fd);
        free(w);
        return ft_error(FT_ERR_IO, "%s: cannot create an event file", dir);
    }
    pbuf e = {0};
    pb_double(&e, 1, now);
    pb_key(&e, 2, 0);
    pb_varint(&e, 0);
    static const char version[] = "brain.Event:2";
    pb_len(&e, 3, version, sizeof version - 1);
    int rc = write_event(w, &e);
    free(e.p);
    if (rc < 0) { ft_tfevents_close(w); return rc; }
    *out = w;
    return FT_OK;
}

int ft_tfevents_write_scalars(ft_tfevents *w, int64_t step, double wall_time, const ft_tfevents_scalar *v, int n) {
    if (n < 1) return ft_error(FT_ERR_INVALID, "%s: an event needs at least one scalar", w->path);
    pbuf sum = {0}, val = {0}, e = {0};
    /* Summary { repeated Value value = 1 }, Value { string tag = 1; float simple_value = 2 } */
    for (int i = 0; i < n; i++) {
        val.n = 0;
        pb_len(&val, 1, v[i].tag, strlen(v[i].tag));
        pb_float(&val, 2, v[i].value);
        if (!val.oom) pb_len(&sum, 1, val.p, val.n);
        else sum.oom = 1;
    }
    /* Event { double wall_time = 1; int64 step = 2; Summary summary = 5 } */
    pb_double(&e, 1, wall_time);
    pb_key(&e, 2, 0);
    pb_varint(&e, (uint64_t)step);   /* int64: two's complement for a negative step, as protobuf does */
    if (!sum.oom) pb_len(&e, 5, sum.p, sum.n);
    else e.oom = 1;
    int rc = write_event(w, &e);
    free(sum.p);
    free(val.p);
    free(e.p);
    return rc;
}

int ft_tfevents_write_session_start(ft_tfevents *w, int64_t step, double wall_time) {
    /* Event { ...; SessionLog session_log = 7 }, SessionLog { SessionStatus status = 1 } with START = 1 */
    static const unsigned char start[] = {0x08, 0x01};
    pbuf e = {0};
    pb_double(&e, 1, wall_time);
    pb_key(&e, 2, 0);
    pb_varint(&e, (uint64_t)step);
    pb_len(&e, 7, start, sizeof start);
    int rc = write_event(w, &e);
    free(e.p);
    return rc;
}

const char *ft_tfevents_path(const ft_tfevents *w) { return w->path; }

int ft_tfevents_close(ft_tfevents *w) {
    if (!w) return FT_OK;
    int rc = w->failed ? ft_error(FT_ERR_IO, "%s: a write failed", w->path) : FT_OK;
    if (w->f && fclose(w->f) != 0 && rc == FT_OK) rc = ft_error(FT_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    free(w);
    return rc;
}
