/* test_tensorboard.c — TensorBoard event files (tfevents.h, `finetune train --tensorboard`):
 *   frame_and_crc           the TFRecord frame and the masked CRC-32C against a bitwise CRC-32C written here
 *                           (crc32c("123456789") = 0xE3069283); a file written by the writer read back by the
 *                           reader of this file: every record's two CRCs, file_version first, wall times,
 *                           steps, tags and float values; one flipped byte is caught
 *   tensorboard_reads_file  the same file through TensorBoard's own reader (tests/tensorboard_read.py, PyPI
 *                           tensorboard: record reader with CRC checks, EventAccumulator): the scalars, and a
 *                           SessionLog START dropping the later steps written before it
 *   train_writes_events     a 3-step `finetune train --tensorboard` of the embedded stories260K: RUN/tensorboard
 *                           holds train/loss, train/lr, train/grad_norm, train/tokens_per_s at steps 1..3 and
 *                           eval/val_loss at 0 and 3, equal (as floats) to metrics.jsonl — C reader and TensorBoard
 *   killed_then_resumed     a training killed with kill -9 leaves a file whose every record is whole and valid;
 *                           `train --resume --tensorboard=DIR` adds a second file starting with a SessionLog
 *                           START after the checkpoint, and TensorBoard then shows train/loss once per step
 *                           1..40, equal to the resumed run's metrics.jsonl
 * The TensorBoard checks skip with a message when python3 cannot import tensorboard (scripts/setup.sh
 * installs it); the C-side checks always run. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "finetune/fileio.h"
#include "finetune/status.h"
#include "finetune/tfevents.h"

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_tensorboard");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_tmp);
}

/* ---- an independent reference: bitwise CRC-32C (reflected 0x82F63B78) and TensorFlow's mask ---- */

static uint32_t ref_crc32c(const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static uint32_t ref_mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

static uint64_t le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* ---- a small reader of event files: TFRecords, then the few Event fields the writer uses ---- */

#define MAX_EV 4096
typedef struct event {
    double  wall_time;
    int64_t step;
    char    file_version[32];
    int     session_start;
    int     n;                 /* scalars */
    char    tag[16][64];
    float   value[16];
} event;

static uint64_t varint(const unsigned char *p, size_t n, size_t *at) {
    uint64_t v = 0;
    for (int s = 0; *at < n && s < 64; s += 7) {
        unsigned char b = p[(*at)++];
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) return v;
    }
    fail_msg("truncated varint");
    return 0;
}

/* one protobuf message: calls back each field (number, wire type, value / bytes) */
typedef void (*field_fn)(void *ud, unsigned field, unsigned wire, uint64_t v, const unsigned char *b, size_t len);
static void walk(const unsigned char *p, size_t n, field_fn fn, void *ud) {
    size_t at = 0;
    while (at < n) {
        uint64_t key = varint(p, n, &at);
        unsigned field = (unsigned)(key >> 3), wire = (unsigned)(key & 7);
        if (wire == 0) fn(ud, field, 0, varint(p, n, &at), NULL, 0);
        else if (wire == 1) { assert_true(at + 8 <= n); fn(ud, field, 1, le(p + at, 8), NULL, 0); at += 8; }
        else if (wire == 5) { assert_true(at + 4 <= n); fn(ud, field, 5, le(p + at, 4), NULL, 0); at += 4; }
        else if (wire == 2) {
            uint64_t len = varint(p, n, &at);
            assert_true(at + len <= n);
            fn(ud, field, 2, 0, p + at, (size_t)len);
            at += (size_t)len;
        } else fail_msg("wire type %u", wire);
    }
}

static void value_field(void *ud, unsigned field, unsigned wire, uint64_t v, const unsigned char *b, size_t len) {
    event *e = ud;
    if (field == 1 && wire == 2) { assert_true(len < 64); memcpy(e->tag[e->n], b, len); e->tag[e->n][len] = 0; }
    if (field == 2 && wire == 5) { uint32_t u = (uint32_t)v; memcpy(&e->value[e->n], &u, 4); }
}

static void summary_field(void *ud, unsigned field, unsigned wire, uint64_t v, const unsigned char *b, size_t len) {
    (void)v;
    event *e = ud;
    assert_int_equal(field, 1);
    assert_int_equal(wire, 2);
    assert_true(e->n < 16);
    walk(b, len, value_field, e);
    e->n++;
}

static void session_field(void *ud, unsigned field, unsigned wire, uint64_t v, const unsigned char *b, size_t len) {
    (void)b; (void)len;
    if (field == 1 && wire == 0 && v == 1) ((event *)ud)->session_start = 1;
}

static void event_field(void *ud, unsigned field, unsigned wire, uint64_t v, const unsigned char *b, size_t len) {
    event *e = ud;
    if (field == 1) { assert_int_equal(wire, 1); memcpy(&e->wall_time, &v, 8); }
    else if (field == 2) { assert_int_equal(wire, 0); e->step = (int64_t)v; }
    else if (field == 3) { assert_int_equal(wire, 2); assert_true(len < 32); memcpy(e->file_version, b, len); e->file_version[len] = 0; }
    else if (field == 5) { assert_int_equal(wire, 2); walk(b, len, summary_field, e); }
    else if (field == 7) { assert_int_equal(wire, 2); walk(b, len, session_field, e); }
    else fail_msg("unexpected Event field %u", field);
}

/* reads the event file at path into ev[]; returns the count, or -1 at the first CRC mismatch or
 * truncated record */
static int read_events(const char *path, event *ev, int cap) {
    char *text;
    size_t n;
    assert_int_equal(ft_file_read_all(path, &text, &n), FT_OK);
    const unsigned char *p = (const unsigned char *)text;
    size_t at = 0;
    int k = 0;
    while (at < n) {
        if (at + 12 > n) { k = -1; break; }
        uint64_t len = le(p + at, 8);
        if ((uint32_t)le(p + at + 8, 4) != ref_mask(ref_crc32c(p + at, 8)) || at + 16 + len > n) { k = -1; break; }
        if ((uint32_t)le(p + at + 12 + len, 4) != ref_mask(ref_crc32c(p + at + 12, (size_t)len))) { k = -1; break; }
        assert_true(k < cap);
        memset(&ev[k], 0, sizeof ev[k]);
        walk(p + at + 12, (size_t)len, event_field, &ev[k]);
        k++;
        at += 16 + (size_t)len;
    }
    free(text);
    return k;
}

/* the path of the only (or the first, by name) event file in dir */
static int event_files(const char *dir, char paths[][600], int cap) {
    struct dirent **e;
    int n = scandir(dir, &e, NULL, alphasort), k = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(e[i]->d_name, "events.out.tfevents.", 20) == 0 && k < cap) snprintf(paths[k++], 600, "%s/%s", dir, e[i]->d_name);
        free(e[i]);
    }
    if (n >= 0) free(e);
    return k;
}

/* the value of tag at step in ev[0..n) (NAN when absent; fails when present twice) */
static double find_scalar(const event *ev, int n, const char *tag, int64_t step) {
    double v = NAN;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ev[i].n; j++)
            if (ev[i].step == step && strcmp(ev[i].tag[j], tag) == 0) {
                assert_true(isnan(v));
                v = ev[i].value[j];
            }
    return v;
}

/* tests/tensorboard_read.py on dir: the parsed JSON, or NULL when tensorboard is not importable (skip) */
static cJSON *tb_read(const char *dir) {
    char cmd[800], *out = NULL;
    snprintf(cmd, sizeof cmd, "python3 tests/tensorboard_read.py '%s' 2>&1", dir);
    int rc = ft_test_run(cmd, &out);
    if (rc == 3) {
        printf("SKIP: TensorBoard's reader: python3 cannot import tensorboard (pip install tensorboard; scripts/setup.sh does): %s\n",
               out ? out : "");
        free(out);
        return NULL;
    }
    if (rc != 0) printf("%s\nexit %d: %s\n", cmd, rc, out ? out : "");
    assert_int_equal(rc, 0);
    /* the JSON is the last line (anything the libraries logged comes before it) */
    char *last = out;
    for (char *p = out; *p; p++) if (*p == '\n' && p[1] && p[1] != '\n') last = p + 1;
    cJSON *j = cJSON_Parse(last);
    if (!j) printf("not JSON: %s\n", out);
    free(out);
    assert_non_null(j);
    return j;
}

/* TensorBoard's points of tag: steps[] and values[] (at most cap); returns the count */
static int tb_scalars(const cJSON *j, const char *tag, int64_t *steps, double *values, int cap) {
    const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "scalars"), tag);
    if (!cJSON_IsArray(a)) return 0;
    int n = 0;
    for (const cJSON *c = a->child; c && n < cap; c = c->next, n++) {
        steps[n] = (int64_t)cJSON_GetArrayItem(c, 0)->valuedouble;
        values[n] = cJSON_GetArrayItem(c, 1)->valuedouble;
    }
    return n;
}

/* ---- tests ---- */

static void frame_and_crc(void **state) {
    (void)state;
    assert_int_equal(ref_crc32c("123456789", 9), 0xe3069283u);
    assert_int_equal(ft_tfrecord_mask_crc(0xe3069283u), ref_mask(0xe3069283u));
    unsigned char rec[5 + 16];
    ft_tfrecord_frame("hello", 5, rec);
    assert_int_equal(le(rec, 8), 5);
    assert_int_equal((uint32_t)le(rec + 8, 4), ref_mask(ref_crc32c(rec, 8)));
    assert_memory_equal(rec + 12, "hello", 5);
    assert_int_equal((uint32_t)le(rec + 17, 4), ref_mask(ref_crc32c("hello", 5)));

    char dir[512];
    snprintf(dir, sizeof dir, "%s/w/tb", g_tmp);
    ft_tfevents *w;
    double t0 = ft_tfevents_now();
    assert_int_equal(ft_tfevents_open(dir, &w), FT_OK);
    ft_tfevents_scalar a[] = {{"a", 1.5f}, {"b/c", -2.25f}}, b[] = {{"a", 3.0f}}, c[] = {{"a", 4.0f}};
    assert_int_equal(ft_tfevents_write_scalars(w, 1, t0 + 1, a, 2), FT_OK);
    assert_int_equal(ft_tfevents_write_scalars(w, 7, t0 + 2, b, 1), FT_OK);
    assert_int_equal(ft_tfevents_write_session_start(w, 5, t0 + 3), FT_OK);
    assert_int_equal(ft_tfevents_write_scalars(w, 5, t0 + 4, c, 1), FT_OK);
    assert_true(ft_tfevents_write_scalars(w, 9, t0, a, 0) < 0);   /* an event needs a scalar */
    char path[600];
    snprintf(path, sizeof path, "%s", ft_tfevents_path(w));
    assert_int_equal(ft_tfevents_close(w), FT_OK);
    char files[2][600];
    assert_int_equal(event_files(dir, files, 2), 1);
    assert_string_equal(files[0], path);
    char host[256] = "";
    gethostname(host, sizeof host);
    assert_non_null(strstr(path, "/events.out.tfevents."));
    assert_non_null(strstr(path, host));

    static event ev[16];
    assert_int_equal(read_events(path, ev, 16), 5);
    assert_string_equal(ev[0].file_version, "brain.Event:2");
    assert_true(fabs(ev[0].wall_time - t0) < 60);
    assert_int_equal(ev[1].step, 1);
    assert_int_equal(ev[1].n, 2);
    assert_string_equal(ev[1].tag[0], "a");
    assert_true(ev[1].value[0] == 1.5f);
    assert_string_equal(ev[1].tag[1], "b/c");
    assert_true(ev[1].value[1] == -2.25f);
    assert_true(ev[1].wall_time == t0 + 1);
    assert_int_equal(ev[2].step, 7);
    assert_true(ev[3].session_start && ev[3].step == 5 && ev[3].n == 0);
    assert_true(ev[4].step == 5 && ev[4].value[0] == 4.0f);

    /* one flipped byte anywhere in a record fails its CRC */
    char *text;
    size_t n;
    assert_int_equal(ft_file_read_all(path, &text, &n), FT_OK);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.tfevents", g_tmp);
    for (size_t at = 0; at < n; at += 7) {
        text[at] ^= 0x10;
        assert_int_equal(ft_file_write_atomic(bad, text, n), FT_OK);
        assert_int_equal(read_events(bad, ev, 16), -1);
        text[at] ^= 0x10;
    }
    free(text);
}

static void tensorboard_reads_file(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/w/tb", g_tmp);   /* written by frame_and_crc */
    cJSON *j = tb_read(dir);
    if (!j) skip();
    assert_int_equal(cJSON_GetObjectItem(j, "files")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(j, "records")->valueint, 5);
    assert_string_equal(cJSON_GetObjectItem(j, "file_version")->valuestring, "brain.Event:2");
    int64_t st[8];
    double v[8];
    /* step 7 was written before the SessionLog START at 5: TensorBoard drops it */
    assert_int_equal(tb_scalars(j, "a", st, v, 8), 2);
    assert_true(st[0] == 1 && v[0] == 1.5 && st[1] == 5 && v[1] == 4.0);
    assert_int_equal(tb_scalars(j, "b/c", st, v, 8), 1);
    assert_true(st[0] == 1 && v[0] == -2.25);
    cJSON_Delete(j);
}

/* the numeric field of every metrics.jsonl line of type `type` at step (NAN when absent) */
static double jsonl_value(const char *run, const char *type, const char *field, int64_t step) {
    char path[700], *text;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    assert_int_equal(ft_file_read_all(path, &text, NULL), FT_OK);
    double v = NAN;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *ty = cJSON_GetObjectItem(o, "type"), *sp = cJSON_GetObjectItem(o, "step"), *f = cJSON_GetObjectItem(o, field);
        if (cJSON_IsString(ty) && !strcmp(ty->valuestring, type) && cJSON_IsNumber(sp) && (int64_t)sp->valuedouble == step && cJSON_IsNumber(f))
            v = f->valuedouble;
        cJSON_Delete(o);
    }
    free(text);
    return v;
}

static void train_writes_events(void **state) {
    (void)state;
    char run[512], tb[600], *out;
    snprintf(run, sizeof run, "%s/t/run", g_tmp);
    assert_int_equal(ft_test_finetune(&out, "train --out %s --max-steps 3 --seq-len 64 --batch-size 4 --samples 0 --no-db --tensorboard", run), 0);
    free(out);
    snprintf(tb, sizeof tb, "%s/tensorboard", run);
    char files[2][600];
    assert_int_equal(event_files(tb, files, 2), 1);
    static event ev[64];
    int n = read_events(files[0], ev, 64);
    assert_true(n >= 6);
    assert_string_equal(ev[0].file_version, "brain.Event:2");
    const char *train_tags[] = {"loss", "lr", "grad_norm", "tokens_per_s"};
    for (int s = 1; s <= 3; s++)
        for (int k = 0; k < 4; k++) {
            char tag[64];
            snprintf(tag, sizeof tag, "train/%s", train_tags[k]);
            double want = jsonl_value(run, "train", train_tags[k], s), got = find_scalar(ev, n, tag, s);
            assert_false(isnan(want));
            assert_true(got == (float)want);
        }
    for (int s = 0; s <= 3; s += 3) {
        double want = jsonl_value(run, "eval", "val_loss", s);
        assert_false(isnan(want));
        assert_true(find_scalar(ev, n, "eval/val_loss", s) == (float)want);
    }
    assert_true(isnan(find_scalar(ev, n, "eval/val_loss", 1)));
    cJSON *j = tb_read(tb);
    if (!j) return;
    int64_t st[8];
    double v[8];
    assert_int_equal(tb_scalars(j, "train/loss", st, v, 8), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(st[i], i + 1);
        assert_true(v[i] == (float)jsonl_value(run, "train", "loss", i + 1));
    }
    assert_int_equal(tb_scalars(j, "eval/val_loss", st, v, 8), 2);
    assert_true(st[0] == 0 && st[1] == 3);
    assert_int_equal(tb_scalars(j, "train/tokens_per_s", st, v, 8), 3);
    cJSON_Delete(j);
}

static void killed_then_resumed(void **state) {
    (void)state;
    char run[512], tb[512], bin[512], flag[600];
    snprintf(run, sizeof run, "%s/k/victim", g_tmp);
    snprintf(tb, sizeof tb, "%s/k/tb", g_tmp);
    snprintf(flag, sizeof flag, "--tensorboard=%s", tb);
    snprintf(bin, sizeof bin, "%s/finetune", getenv("BUILD") ? getenv("BUILD") : "build");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(bin, bin, "train", "--out", run, "--no-db", "--max-steps", "40", "--seq-len", "64", "--batch-size", "4", "--samples", "0",
              "--log-every", "1", "--save-every", "10", flag, (char *)NULL);
        _exit(127);
    }
    /* wait for train/loss at step 15 (a checkpoint at step 10 exists), then kill -9 */
    static event ev[MAX_EV];
    char files[4][600];
    int done = 0;
    /* up to 15 minutes: the shared test machine can be very slow */
    time_t t_end = time(NULL) + 900;
    while (!done && time(NULL) < t_end) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (event_files(tb, files, 4) == 1) {
            int n = read_events(files[0], ev, MAX_EV);
            done = n > 0 && !isnan(find_scalar(ev, n, "train/loss", 15));
        }
        if (!done && waitpid(pid, NULL, WNOHANG) == pid) fail_msg("the training ended (or did not start) before it was killed");
    }
    assert_true(done);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    /* every record written before the kill is whole, CRCs valid */
    int n = read_events(files[0], ev, MAX_EV);
    assert_true(n > 15);
    int64_t last = 0;
    for (int i = 0; i < n; i++) if (ev[i].step > last) last = ev[i].step;
    printf("  killed after step %lld; %d events in %s\n", (long long)last, n, files[0]);
    assert_true(last < 40);
    char *out;
    assert_int_equal(ft_test_finetune(&out, "train --resume %s --no-db %s", run, flag), 0);
    free(out);
    assert_int_equal(event_files(tb, files, 4), 2);
    int n2 = read_events(files[1], ev, MAX_EV);
    assert_true(n2 > 2);
    assert_string_equal(ev[0].file_version, "brain.Event:2");
    assert_true(ev[1].session_start);
    int64_t start = ev[1].step;
    printf("  resumed: SessionLog START at step %lld\n", (long long)start);
    assert_true(start >= 11 && start <= last + 1 && (start - 1) % 10 == 0);
    cJSON *j = tb_read(tb);
    if (!j) return;
    static int64_t st[256];
    static double v[256];
    assert_int_equal(tb_scalars(j, "train/loss", st, v, 256), 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(st[i], i + 1);
        assert_true(v[i] == (float)jsonl_value(run, "train", "loss", i + 1));
    }
    const cJSON *ss = cJSON_GetObjectItem(j, "session_starts");
    assert_int_equal(cJSON_GetArraySize(ss), 1);
    assert_int_equal((int64_t)cJSON_GetArrayItem(ss, 0)->valuedouble, start);
    cJSON_Delete(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_and_crc),
        cmocka_unit_test(tensorboard_reads_file),
        cmocka_unit_test(train_writes_events),
        cmocka_unit_test(killed_then_resumed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
