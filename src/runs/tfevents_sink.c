/* tfevents_sink.c — the train sink writing TensorBoard event files (tfevents.h): one event per
 * metrics.jsonl line, the numeric top-level fields but "step" as scalars "<type>/<field>". Like the
 * run-store sink it never stops a run: the first error is written once to warn and the sink goes quiet. */
#include "finetune/tfevents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "finetune/status.h"

#define MAX_SCALARS 64

typedef struct tb_sink {
    char        *dir;          /* NULL: <run dir>/tensorboard */
    FILE        *warn;
    ft_tfevents *w;
    int          disabled, started;
    int64_t      last_step;    /* the newest step of on_step: the position saved with a checkpoint */
    int64_t      resume_from;  /* rewind(): the checkpoint's step, -1 for a new run */
} tb_sink;

static void give_up(tb_sink *t, const char *why) {
    if (t->disabled) return;
    t->disabled = 1;
    if (t->warn) fprintf(t->warn, "finetune: warning: tensorboard: %s; training goes on without event files\n", why);
    ft_tfevents_close(t->w);
    t->w = NULL;
}

static int tb_start(void *u, const ft_train_config *cfg, const char *defaults_text) {
    (void)defaults_text;
    tb_sink *t = u;
    if (t->disabled || t->started) return FT_OK;
    t->started = 1;
    char dir[4200];
    if (t->dir && t->dir[0]) snprintf(dir, sizeof dir, "%s", t->dir);
    else snprintf(dir, sizeof dir, "%s/tensorboard", cfg->out[0] ? cfg->out : ".");
    int rc = ft_tfevents_open(dir, &t->w);
    /* a resumed run: TensorBoard drops what the earlier process logged after the checkpoint */
    if (rc == FT_OK && t->resume_from >= 0) rc = ft_tfevents_write_session_start(t->w, t->resume_from + 1, ft_tfevents_now());
    if (rc < 0) give_up(t, ft_last_error());
    return FT_OK;
}

/* one metrics line: its numeric top-level fields but "step", tagged "<type>/<field>", as one event */
static int tb_record(void *u, const char *json) {
    tb_sink *t = u;
    if (t->disabled || !t->w) return FT_OK;
    cJSON *j = cJSON_Parse(json);
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return FT_OK; }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type"), *sp = cJSON_GetObjectItemCaseSensitive(j, "step");
    const char *type = cJSON_IsString(ty) ? ty->valuestring : "record";
    /* sample generations are text: nothing to plot */
    if (strcmp(type, "sample") == 0 || !cJSON_IsNumber(sp)) { cJSON_Delete(j); return FT_OK; }
    char tags[MAX_SCALARS][128];
    ft_tfevents_scalar v[MAX_SCALARS];
    int n = 0;
    for (const cJSON *c = j->child; c && n < MAX_SCALARS; c = c->next) {
        if (!cJSON_IsNumber(c) || !c->string || strcmp(c->string, "step") == 0) continue;
        snprintf(tags[n], sizeof tags[n], "%s/%s", type, c->string);
        v[n].tag = tags[n];
        v[n].value = (float)c->valuedouble;
        n++;
    }
    int rc = n ? ft_tfevents_write_scalars(t->w, (int64_t)sp->valuedouble, ft_tfevents_now(), v, n) : FT_OK;
    cJSON_Delete(j);
    if (rc < 0) give_up(t, ft_last_error());
    return FT_OK;
}

static int tb_step(void *u, const ft_train_step_info *s) {
    tb_sink *t = u;
    t->last_step = s->step;
    if (!s->logged) return FT_OK;
    char line[512];
    if (ft_train_step_json(s, line, sizeof line) < 0) return FT_OK;
    return tb_record(u, line);
}

static int tb_eval(void *u, const ft_train_eval *e) { return tb_record(u, e->json); }

static int64_t tb_position(void *u) { return ((tb_sink *)u)->last_step; }

static int tb_rewind(void *u, int64_t pos) {
    ((tb_sink *)u)->resume_from = pos;
    return FT_OK;
}

static void tb_close(void *u) {
    tb_sink *t = u;
    ft_tfevents_close(t->w);
    free(t->dir);
    free(t);
}

int ft_train_sink_tensorboard(ft_train_sink *out, const char *dir, FILE *warn) {
    memset(out, 0, sizeof *out);
    tb_sink *t = calloc(1, sizeof *t);
    if (!t || (dir && *dir && !(t->dir = strdup(dir)))) {
        free(t);
        return ft_error(FT_ERR_NOMEM, "out of memory");
    }
    t->warn = warn;
    t->resume_from = -1;
    *out = (ft_train_sink){.name = "tensorboard", .user = t, .on_start = tb_start, .on_step = tb_step, .on_eval = tb_eval,
                           .on_record = tb_record, .position = tb_position, .rewind = tb_rewind, .close = tb_close};
    return FT_OK;
}
