/* ckpt_state.c — a checkpoint's state.json read back field by field (trainer_internal.h).
 *
 * A checksum guards a checkpoint against accidents, not against an edited file: every field is checked
 * against what the run can hold before any of it is used (a "metrics_bytes" of 1e12 once extended
 * metrics.jsonl to a 1 TB sparse file). A number is a JSON number or a hex-float string ("%a", exact). */
#include "trainer_internal.h"
#include "core/json_util.h"
#include "finetune/status.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* the value of key (or old_key, of older checkpoints) into *out: 1 found, 0 absent (an error if required) */
static int state_value(const cJSON *j, const char *key, const char *old_key, int required, double *out, const char *path) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v && old_key) v = cJSON_GetObjectItemCaseSensitive(j, old_key);
    *out = NAN;
    if (!v) return required ? ft_error(FT_ERR_FORMAT, "%s/state.json: no \"%s\"", path, key) : 0;
    if (cJSON_IsNumber(v)) { *out = v->valuedouble; return 1; }
    char *end = NULL;
    if (cJSON_IsString(v)) *out = strtod(v->valuestring, &end);
    if (!cJSON_IsString(v) || end == v->valuestring || *end)
        return ft_error(FT_ERR_FORMAT, "%s/state.json: \"%s\" is %s, not a number", path, key, ft__json_type_name(v));
    return 1;
}

/* an integer field in [lo, hi]; absent and not required: *out unchanged */
static int state_int(const cJSON *j, const char *key, const char *old_key, int required, int64_t lo, int64_t hi, int64_t *out,
                     const char *path) {
    double d;
    int rc = state_value(j, key, old_key, required, &d, path);
    if (rc <= 0) return rc;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return ft_error(FT_ERR_FORMAT, "%s/state.json: \"%s\" is %.17g; this run needs an integer in [%lld, %lld]", path, key, d,
                        (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return FT_OK;
}

/* a real field: finite, or also NaN / infinite where allowed; absent: NaN */
static int state_real(const cJSON *j, const char *key, const char *old_key, int allow_nan, int allow_inf, double *out, const char *path) {
    int rc = state_value(j, key, old_key, 0, out, path);
    if (rc <= 0) return rc;
    if ((isnan(*out) && !allow_nan) || (isinf(*out) && !allow_inf))
        return ft_error(FT_ERR_FORMAT, "%s/state.json: \"%s\" is %g; it must be a finite number", path, key, *out);
    return FT_OK;
}

int ft__train_state_parse(const cJSON *j, const ft__state_limits *lim, int64_t dir_step, ft__run_state *st, const char *path) {
    int64_t spe = lim->steps_per_epoch > 0 ? lim->steps_per_epoch : 1, pos;
    memset(st, 0, sizeof *st);
    if (!cJSON_IsObject(j)) return ft_error(FT_ERR_FORMAT, "%s/state.json: not a JSON object", path);
    FT_TRY(state_int(j, "step", NULL, 1, 0, lim->total_steps, &st->step, path));
    if (dir_step >= 0 && st->step != dir_step)
        return ft_error(FT_ERR_FORMAT, "%s/state.json: \"step\" is %lld in the checkpoint of step %lld", path, (long long)st->step,
                        (long long)dir_step);
    FT_TRY(state_int(j, "epoch", "iter_epoch", 1, 0, st->step / spe + 1, &st->epoch, path));
    FT_TRY(state_int(j, "cursor", "iter_cursor", 1, 0, lim->batches_per_epoch, &st->cursor, path));
    FT_TRY(state_int(j, "bad_evals", NULL, 0, 0, INT32_MAX, &st->bad_evals, path));
    FT_TRY(state_int(j, "last_eval_step", NULL, 0, 0, st->step, &st->last_eval_step, path));
    FT_TRY(state_int(j, "seen", NULL, 0, 0, (int64_t)1 << 62, &st->seen, path));
    FT_TRY(state_real(j, "best", "best_val", 0, 1, &st->best, path));
    if (isnan(st->best)) st->best = lim->higher_better ? -INFINITY : INFINITY;
    FT_TRY(state_real(j, "train_time", NULL, 1, 0, &st->train_time, path));
    if (isnan(st->train_time) || st->train_time < 0) st->train_time = 0;
    FT_TRY(state_real(j, "first_val", NULL, 1, 1, &st->first_val, path));
    FT_TRY(state_real(j, "last_val", NULL, 1, 1, &st->last_val, path));
    FT_TRY(state_real(j, "last_train", NULL, 1, 1, &st->last_train, path));
    FT_TRY(state_real(j, "first_main", NULL, 1, 1, &st->first_main, path));
    FT_TRY(state_real(j, "last_main", NULL, 1, 1, &st->last_main, path));
    FT_TRY(state_real(j, "best_main", NULL, 1, 1, &st->best_main, path));
    /* sink positions: "sinks" {name: bytes}, or the metrics position of older checkpoints */
    FT_TRY(state_int(j, "metrics_bytes", NULL, 0, 0, (int64_t)1 << 53, &pos, path));
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(j, "sinks");
    if (sk && !cJSON_IsObject(sk)) return ft_error(FT_ERR_FORMAT, "%s/state.json: \"sinks\" is %s, not an object", path, ft__json_type_name(sk));
    for (const cJSON *p = sk ? sk->child : NULL; p; p = p->next)
        FT_TRY(state_int(sk, p->string, NULL, 1, 0, (int64_t)1 << 53, &pos, path));
    return FT_OK;
}
