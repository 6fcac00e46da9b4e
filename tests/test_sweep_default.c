/* test_sweep_default.c — `finetune sweep --model DIR --data FILE` with no --config: the default sweep a
 * newcomer gets (tools/finetune/cmd_sweep.c default_config).
 *
 *   default_sweep_runs   4 trials on the embedded stories260K and a bundled dialogue set: every trial finishes
 *                        with a finite validation loss, the stored config is TPE over lr (full-fine-tuning range)
 *                        with ASHA over epochs 1..3, at least one configuration reaches the full budget, and the
 *                        summary names the best trial's model directory, which exists; the progress lines'
 *                        "best" counts only full-budget trials
 *   lora_range           --method lora moves the lr range to 5e-5..5e-3 (checked in the stored config)
 *   default_errors       --model without --data, an unknown --method, a missing --data file (before any trial) and
 *                        --config with --model give clear errors; a sweep whose every trial fails exits non-zero
 *                        and quotes a trial's error line */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "finetune/hpo.h"
#include "finetune/status.h"

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_sweep_default");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_tmp);
}

static const char *k_model = "models/stories260K";
static const char *k_data = "data/fundialogues/basketball_coach.json";

static void default_sweep_runs(void **state) {
    (void)state;
    char db[512], *out;
    snprintf(db, sizeof db, "%s/a/finetune.db", g_tmp);
    int rc = ft_test_finetune(&out, "sweep --model %s --data %s --db %s --name d1 --trials 4 --seq-len 64 --batch-size 4 --no-report",
                              k_model, k_data, db);
    assert_int_equal(rc, 0);
    /* the config it used is printed, and the summary ends with the best model's directory */
    assert_non_null(strstr(out, "the default sweep"));
    assert_non_null(strstr(out, "tpe, minimize, asha over epochs 1..3"));
    /* the progress lines' "best" is among full-budget trials only: the first trial is a 1-epoch probe */
    assert_non_null(strstr(out, "trial 0/4 (config 0, rung 0, budget 1) value "));
    assert_non_null(strstr(out, "(none at the full budget yet)"));
    assert_non_null(strstr(out, "(best at the full budget "));
    const char *bm = strstr(out, "best trial's model: ");
    assert_non_null(bm);
    char best[600];
    assert_int_equal(sscanf(bm + strlen("best trial's model: "), "%599s", best), 1);
    printf("  %s\n", best);
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/config.json", best);
    assert_int_equal(access(cfg, F_OK), 0);
    free(out);

    ft_hpo_spec *s;
    ft_hpo_trial *t;
    int n;
    ft_test_hpo_load(db, "d1", &s, &t, &n);
    assert_int_equal(s->strategy, FT_HPO_TPE);
    assert_int_equal(s->sched, FT_HPO_SCHED_ASHA);
    assert_string_equal(s->fidelity, "epochs");
    assert_true(s->min_resource == 1 && s->max_resource == 3);
    assert_int_equal(s->maximize, 0);
    assert_string_equal(s->metric, "val_loss");
    assert_int_equal(s->n_params, 1);
    assert_string_equal(s->params[0].name, "lr");
    assert_true(s->params[0].low == 1e-5 && s->params[0].high == 1e-3);
    /* the training options given on the command line reach every trial */
    cJSON *tr = cJSON_Parse(s->train_json);
    assert_non_null(tr);
    assert_string_equal(cJSON_GetObjectItem(tr, "model")->valuestring, k_model);
    assert_string_equal(cJSON_GetObjectItem(tr, "data")->valuestring, k_data);
    assert_int_equal(cJSON_GetObjectItem(tr, "seq_len")->valueint, 64);
    assert_int_equal(cJSON_GetObjectItem(tr, "batch_size")->valueint, 4);
    cJSON_Delete(tr);
    assert_int_equal(n, 4);
    int full = 0;
    for (int i = 0; i < n; i++) {
        printf("  trial %d: config %d, budget %g, lr %.4g, val_loss %.5f\n", i, t[i].config, t[i].budget, t[i].x[0], t[i].value);
        assert_int_equal(t[i].status, FT_HPO_FINISHED);
        assert_true(isfinite(t[i].value) && t[i].value > 0);
        assert_true(t[i].x[0] >= 1e-5 && t[i].x[0] <= 1e-3);
        full += t[i].budget == 3;
    }
    assert_true(full >= 1);
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);
}

static void lora_range(void **state) {
    (void)state;
    char db[512], *out;
    snprintf(db, sizeof db, "%s/b/finetune.db", g_tmp);
    /* one trial of one epoch (no scheduler then): only the stored config is checked */
    int rc = ft_test_finetune(&out, "sweep --model %s --data %s --db %s --name d2 --method lora --trials 1 --epochs 1 --seq-len 64 --batch-size 4 --no-report",
                              k_model, k_data, db);
    assert_int_equal(rc, 0);
    free(out);
    ft_hpo_spec *s;
    ft_hpo_trial *t;
    int n;
    ft_test_hpo_load(db, "d2", &s, &t, &n);
    assert_true(s->params[0].low == 5e-5 && s->params[0].high == 5e-3);
    assert_int_equal(s->sched, FT_HPO_SCHED_NONE);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].status, FT_HPO_FINISHED);
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);
}

static void default_errors(void **state) {
    (void)state;
    char *out;
    assert_int_not_equal(ft_test_finetune(&out, "sweep --model %s --db %s/c.db", k_model, g_tmp), 0);
    assert_non_null(strstr(out, "give both --model DIR and --data FILE"));
    free(out);
    assert_int_not_equal(ft_test_finetune(&out, "sweep --model %s --data %s --method prefix --db %s/c.db", k_model, k_data, g_tmp), 0);
    assert_non_null(strstr(out, "--method: full, lora or qlora"));
    free(out);
    /* a missing file is named before any trial starts */
    assert_int_not_equal(ft_test_finetune(&out, "sweep --model %s --data %s/nope.json --db %s/c.db", k_model, g_tmp, g_tmp), 0);
    assert_non_null(strstr(out, "nope.json: No such file or directory"));
    assert_null(strstr(out, "trial 0"));
    free(out);
    /* a sweep whose every trial fails exits non-zero and quotes a trial's error */
    {
        char cfg[600];
        snprintf(cfg, sizeof cfg, "%s/allfail.json", g_tmp);
        FILE *f = fopen(cfg, "w");
        assert_non_null(f);
        fprintf(f, "{\"name\": \"allfail\", \"strategy\": \"random\", \"budget\": {\"trials\": 2},"
                   " \"params\": {\"lr\": {\"type\": \"loguniform\", \"low\": 1e-4, \"high\": 1e-3}},"
                   " \"train\": {\"model\": \"%s\", \"data\": \"%s/gone.json\"}}", k_model, g_tmp);
        assert_int_equal(fclose(f), 0);
        assert_int_not_equal(ft_test_finetune(&out, "sweep --config %s --db %s/d.db --no-report --quiet", cfg, g_tmp), 0);
        assert_non_null(strstr(out, "0 finished, 2 failed"));
        assert_non_null(strstr(out, "every trial failed; trial 1's log "));
        assert_non_null(strstr(out, "gone.json: no such file or directory"));
        free(out);
    }
    assert_int_not_equal(ft_test_finetune(&out, "sweep --config x.json --model %s --data %s --db %s/c.db", k_model, k_data, g_tmp), 0);
    assert_non_null(strstr(out, "make the default sweep"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_sweep_runs),
        cmocka_unit_test(lora_range),
        cmocka_unit_test(default_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
