/* cmd_sweep.c — `finetune sweep`: hyperparameter search over an objective command (hpo.h).
 *
 *   finetune sweep --config sweep.json --objective-cmd CMD [--db runs/finetune.db] [--jobs N]
 *   finetune sweep --config sweep.json                (a "train" section: each trial runs `finetune train`)
 *   finetune sweep --resume NAME [--db FILE]        continue a stopped or killed sweep (its stored config)
 *   finetune sweep --show [NAME] [--db FILE]        the summary (and report) of a stored sweep
 *   finetune sweep --model DIR --data FILE [...]    no config: the default sweep of a training run (lr, TPE,
 *                                                   ASHA over epochs; default_config below)
 * Progress goes to stderr (one line per trial); the summary (best trial, its parameters, the history,
 * parameter importance) to stdout; the HTML report next to the database (or --report FILE). */
#include "cli.h"
#include "finetune/fileio.h"
#include "finetune/hpo.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *k_strategy[] = {"grid", "random", "bayes", "tpe"};
static const char *k_sched[] = {"none", "successive-halving", "hyperband", "asha"};

typedef struct progress {
    int    total;      /* budget.trials or 0 */
    int    seen;
    double best;       /* best loss so far among full-budget trials (every trial without a scheduler) */
} progress;

static void print_params(FILE *f, const ft_hpo_spec *s, const double *x) {
    char *args = ft_hpo_params_args(s, x);
    /* "--name 'v' ..." reads well enough; show it without the quotes */
    for (const char *p = args ? args : ""; *p; p++) if (*p != '\'') fputc(*p, f);
    free(args);
}

static void on_trial(void *ud, const ft_hpo_spec *s, const ft_hpo_trial *t) {
    progress *pg = ud;
    pg->seen++;
    double loss = t->status == FT_HPO_FINISHED ? (s->maximize ? -t->value : t->value) : INFINITY;
    /* with a scheduler, "best" is among the trials at the full budget (as the summary's): a low-fidelity value
     * is a probe, not an answer of the sweep */
    int full = s->sched == FT_HPO_SCHED_NONE || t->budget >= s->max_resource * (1 - 1e-9);
    if (full && loss < pg->best) pg->best = loss;
    fprintf(stderr, "sweep %s: trial %d", s->name, t->idx);
    if (pg->total) fprintf(stderr, "/%d", pg->total);
    if (s->sched != FT_HPO_SCHED_NONE) fprintf(stderr, " (config %d, rung %d, budget %g)", t->config, t->rung, t->budget);
    if (t->status == FT_HPO_FINISHED) {
        if (isfinite(pg->best)) fprintf(stderr, " value %.6g (best%s %.6g):", t->value, s->sched != FT_HPO_SCHED_NONE ? " at the full budget" : "",
                                        s->maximize ? -pg->best : pg->best);
        else fprintf(stderr, " value %.6g (none at the full budget yet):", t->value);
    } else {
        fprintf(stderr, " failed:");
    }
    print_params(stderr, s, t->x);
    fputc('\n', stderr);
}

static void summary(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, const char *db_path, const char *report, const char *runs_dir) {
    int fin = 0, fail = 0, other = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].status == FT_HPO_FINISHED) fin++;
        else if (t[i].status == FT_HPO_FAILED) fail++;
        else other++;
    }
    printf("sweep %s: %s, %s", s->name, k_strategy[s->strategy], s->maximize ? "maximize" : "minimize");
    if (s->sched != FT_HPO_SCHED_NONE) printf(", %s over %s %g..%g (eta %g)", k_sched[s->sched], s->fidelity, s->min_resource, s->max_resource, s->eta);
    printf("; %d trials: %d finished, %d failed", n, fin, fail);
    if (other) printf(", %d not ended", other);
    printf(" (%s)\n", db_path);
    if (s->sched != FT_HPO_SCHED_NONE || s->max_resource > 0) {
        /* compute: the resource the trials trained (a continued trial counts what it added to its parent) */
        double cost = 0, budget = 0;
        for (int i = 0; i < n; i++) { cost += t[i].cost; budget += t[i].budget; }
        printf("compute: %g %s trained", cost, s->fidelity);
        if (cost != budget) printf(" (%g had every trial trained from the start)", budget);
        putchar('\n');
    }
    int b = ft_hpo_best(s, t, n);
    if (b < 0) {
        printf("no finished trial\n");
        /* the reason is in the trials' logs (train sweeps): name the last failed one and its error line */
        for (int i = n - 1; runs_dir && s->train_json && i >= 0; i--) {
            if (t[i].status != FT_HPO_FAILED) continue;
            char log[4500], *line = NULL, last[512] = "";
            size_t cap = 0;
            snprintf(log, sizeof log, "%s/trial-%d.log", runs_dir, t[i].idx);
            FILE *f = fopen(log, "r");
            if (!f) break;
            while (getline(&line, &cap, f) >= 0)
                if (strstr(line, "error")) snprintf(last, sizeof last, "%s", line);
            free(line);
            fclose(f);
            fprintf(stderr, "finetune sweep: every trial failed; trial %d's log %s%s%s", t[i].idx, log, last[0] ? " says: " : "\n", last);
            break;
        }
        return;
    }
    printf("best: trial %d, value %.10g", t[b].idx, t[b].value);
    if (t[b].budget > 0) printf(" at budget %g", t[b].budget);
    printf("\n  params:");
    print_params(stdout, s, t[b].x);
    printf("\nhistory (trial: value, best so far%s):\n", s->sched != FT_HPO_SCHED_NONE ? " at the full budget" : "");
    double best = INFINITY;
    double top = t[b].budget;
    for (int i = 0; i < n; i++) {
        double loss = t[i].status == FT_HPO_FINISHED ? (s->maximize ? -t[i].value : t[i].value) : INFINITY;
        if (t[i].budget == top && loss < best) best = loss;
        printf("  %4d:", t[i].idx);
        if (s->sched != FT_HPO_SCHED_NONE) printf(" [c%d r%d b%g]", t[i].config, t[i].rung, t[i].budget);
        if (t[i].parent >= 0) printf(" <- %d", t[i].parent);
        if (t[i].status == FT_HPO_FINISHED) printf(" %12.6g", t[i].value);
        else printf(" %12s", t[i].status == FT_HPO_FAILED ? "failed" : "-");
        if (isfinite(best)) printf("  %12.6g", s->maximize ? -best : best);
        putchar('\n');
    }
    double *imp = calloc((size_t)s->n_params, sizeof *imp);
    if (imp && ft_hpo_importance(s, t, n, imp) == FT_OK) {
        printf("importance (|Spearman| / correlation ratio, normalised):");
        for (int j = 0; j < s->n_params; j++) printf(" %s %.2f", s->params[j].name, imp[j]);
        putchar('\n');
    }
    free(imp);
    if (runs_dir && s->train_json) {  /* where the best trial's model is, for the next command */
        char dir[4500], bdir[4600];
        snprintf(dir, sizeof dir, "%s/trial-%d", runs_dir, t[b].idx);
        snprintf(bdir, sizeof bdir, "%s/best", dir);
        if (access(bdir, F_OK) == 0) printf("best trial's model: %s (run %s)\n", bdir, dir);
    }
    if (report) printf("report: %s\n", report);
}

/* name with every byte outside [A-Za-z0-9._-] as '_' (a file name) */
static void safe_name(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s", name);
    for (char *p = out; *p; p++) if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p)) *p = '_';
}

/* <dir of the database>/<prefix><name as a file name><suffix>, in buf */
static const char *beside_db(char *buf, size_t cap, const char *db, const char *prefix, const char *name, const char *suffix) {
    char d[4096], safe[128];
    snprintf(d, sizeof d, "%s", db);
    safe_name(safe, sizeof safe, name);
    snprintf(buf, cap, "%s/%s%s%s", dirname(d), prefix, safe, suffix);
    return buf;
}

/* the report path: --report, else <dir of db>/sweep-<name>.html */
static const char *report_path(const char *opt, const char *db, const char *name, char *buf, size_t cap) {
    return opt ? opt : beside_db(buf, cap, db, "sweep-", name, ".html");
}

/* the trials' run directories: --runs-dir, else <dir of db>/sweeps/<name> */
static const char *runs_path(const char *opt, const char *db, const char *name, char *buf, size_t cap) {
    return opt ? opt : beside_db(buf, cap, db, "sweeps/", name, "");
}

/* the config text with the command-line overrides applied */
static int apply_overrides(const char *text, const char *path, const ft_opt *opts, char **out) {
    *out = NULL;
    cJSON *root = cJSON_Parse(text);
    if (!root) return ft_error(FT_ERR_FORMAT, "%s: invalid JSON", path);
    const char *name = ft_opt_str(opts, "name", NULL), *strategy = ft_opt_str(opts, "strategy", NULL);
    long seed = -1, trials = -1;
    if (ft_opt_int(opts, "seed", -1, &seed) < 0 || ft_opt_int(opts, "trials", -1, &trials) < 0) { cJSON_Delete(root); return FT_ERR_INVALID; }
    if (cJSON_IsObject(root)) {
        if (name) { cJSON_DeleteItemFromObject(root, "name"); cJSON_AddStringToObject(root, "name", name); }
        if (strategy) { cJSON_DeleteItemFromObject(root, "strategy"); cJSON_AddStringToObject(root, "strategy", strategy); }
        if (seed >= 0) { cJSON_DeleteItemFromObject(root, "seed"); cJSON_AddNumberToObject(root, "seed", (double)seed); }
        if (trials >= 0) {
            cJSON *b = cJSON_GetObjectItem(root, "budget");
            if (!cJSON_IsObject(b)) { cJSON_DeleteItemFromObject(root, "budget"); b = cJSON_AddObjectToObject(root, "budget"); }
            cJSON_DeleteItemFromObject(b, "trials");
            cJSON_AddNumberToObject(b, "trials", (double)trials);
        }
    }
    *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return *out ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
}

static int load_config(const char *path, const ft_opt *opts, char **out) {
    char *text;
    size_t len;
    *out = NULL;
    FT_TRY(ft_file_read_all(path, &text, &len));
    int rc = apply_overrides(text, path, opts, out);
    free(text);
    return rc;
}

/* The sweep a newcomer gets from `finetune sweep --model DIR --data FILE` (no --config): the learning rate,
 * log-uniform around the trainer's defaults (full fine-tuning 1e-5..1e-3, LoRA/QLoRA 5e-5..5e-3), searched by TPE
 * (5 random start-up trials), with ASHA over epochs (1 -> --epochs, eta 3: a configuration that is not in the
 * top third after one epoch stops there; continued ones resume their checkpoint), 12 trials, objective the
 * validation loss of the last evaluation (--metric / --direction to change). The training options given here
 * go into the "train" section; every other training option keeps `finetune train`'s default. The config is
 * printed (stderr) and stored with the sweep, so --resume NAME and --show work as for a config file. */
static int default_config(const ft_opt *opts, char **out) {
    *out = NULL;
    const char *model = ft_opt_str(opts, "model", NULL), *data = ft_opt_str(opts, "data", NULL);
    if (!model || !data) return ft_error(FT_ERR_INVALID, "without --config, give both --model DIR and --data FILE (a default sweep of the learning rate)");
    static const char *const paths[] = {"model", "data", "val-data", NULL};
    for (const char *const *k = paths; *k; k++) {
        const char *v = ft_opt_str(opts, *k, NULL);
        if (v && access(v, R_OK) != 0) return ft_error(FT_ERR_IO, "--%s %s: %s", *k, v, strerror(errno));
    }
    const char *method = ft_opt_str(opts, "method", "full");
    int adapters = strcmp(method, "lora") == 0 || strcmp(method, "qlora") == 0;
    if (!adapters && strcmp(method, "full") != 0) return ft_error(FT_ERR_INVALID, "--method: full, lora or qlora (got \"%s\")", method);
    long epochs = 3, trials = 12;
    if (ft_opt_int(opts, "epochs", 3, &epochs) < 0 || ft_opt_int(opts, "trials", 12, &trials) < 0) return FT_ERR_INVALID;
    if (epochs < 1 || epochs > 1000) return ft_error(FT_ERR_INVALID, "--epochs must be in 1..1000");
    const char *metric = ft_opt_str(opts, "metric", "val_loss");
    const char *dir = ft_opt_str(opts, "direction", NULL);
    if (!dir) dir = strcmp(metric, "val_loss") == 0 || strcmp(metric, "mse") == 0 || strcmp(metric, "perplexity") == 0 ? "minimize" : "maximize";
    char name[160], mb[128], db[128];
    if (ft_opt_str(opts, "name", NULL)) snprintf(name, sizeof name, "%s", ft_opt_str(opts, "name", NULL));
    else {
        char m[4096], d[4096];
        snprintf(m, sizeof m, "%s", model);
        snprintf(d, sizeof d, "%s", data);
        size_t ml = strlen(m);
        while (ml > 1 && m[ml - 1] == '/') m[--ml] = 0;
        safe_name(mb, sizeof mb, basename(m));
        safe_name(db, sizeof db, basename(d));
        time_t now = time(NULL);
        struct tm tmv;
        char ts[32];
        strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", gmtime_r(&now, &tmv));
        snprintf(name, sizeof name, "%.40s-%.40s-%s", mb, db, ts);
    }
    cJSON *root = cJSON_CreateObject(), *p, *lr, *sc, *tr, *tp, *b;
    if (!root) return ft_error(FT_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(root, "name", name);
    cJSON_AddStringToObject(root, "strategy", "tpe");
    cJSON_AddStringToObject(root, "direction", dir);
    cJSON_AddNumberToObject(root, "seed", 0);
    b = cJSON_AddObjectToObject(root, "budget");
    cJSON_AddNumberToObject(b, "trials", (double)trials);
    p = cJSON_AddObjectToObject(root, "params");
    lr = cJSON_AddObjectToObject(p, "lr");
    cJSON_AddStringToObject(lr, "type", "loguniform");
    cJSON_AddNumberToObject(lr, "low", adapters ? 5e-5 : 1e-5);
    cJSON_AddNumberToObject(lr, "high", adapters ? 5e-3 : 1e-3);
    tp = cJSON_AddObjectToObject(root, "tpe");
    cJSON_AddNumberToObject(tp, "n_startup_trials", 5);
    sc = cJSON_AddObjectToObject(root, "scheduler");
    if (epochs > 1) {
        cJSON_AddStringToObject(sc, "type", "asha");
        cJSON_AddStringToObject(sc, "fidelity", "epochs");
        cJSON_AddNumberToObject(sc, "min_resource", 1);
        cJSON_AddNumberToObject(sc, "max_resource", (double)epochs);
        cJSON_AddNumberToObject(sc, "eta", 3);
    } else {
        cJSON_AddStringToObject(sc, "type", "none");
    }
    cJSON_AddStringToObject(root, "metric", metric);
    tr = cJSON_AddObjectToObject(root, "train");
    /* the training options this command passes on, by their train.json names */
    static const char *const pass[] = {"model", "data", "val-data", "task", "method", "text-column", "label-column",
                                       "seq-len", "precision", "threads", "batch-size", NULL};
    for (const char *const *k = pass; *k; k++) {
        const char *v = ft_opt_str(opts, *k, NULL);
        if (!v) continue;
        char key[64];
        snprintf(key, sizeof key, "%s", *k);
        for (char *q = key; *q; q++) if (*q == '-') *q = '_';
        long iv;
        char *end;
        iv = strtol(v, &end, 10);
        if ((strcmp(*k, "seq-len") == 0 || strcmp(*k, "threads") == 0 || strcmp(*k, "batch-size") == 0) && *v && !*end)
            cJSON_AddNumberToObject(tr, key, (double)iv);
        else
            cJSON_AddStringToObject(tr, key, v);
    }
    if (epochs == 1) cJSON_AddNumberToObject(tr, "epochs", 1);
    *out = cJSON_Print(root);
    cJSON_Delete(root);
    return *out ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
}

int ft_cmd_sweep(int argc, char **argv) {
    ft_opt opts[] = {
        {"config", 1, "sweep.json: search space, strategy, budget, scheduler (see the README)", NULL},
        {"objective-cmd", 1, "command evaluating a trial: gets --name value per parameter, FT_TRIAL_ID and FT_BUDGET; prints the objective last on stdout", NULL},
        {"db", 1, "SQLite database holding sweeps and trials (default runs/finetune.db)", NULL},
        {"jobs", 1, "trials run in parallel (default 1, or the resumed sweep's)", NULL},
        {"resume", 1, "continue the stored sweep NAME (its stored config)", NULL},
        {"show", 0, "print the summary of a stored sweep (--name NAME, default the newest) and write its report", NULL},
        {"name", 1, "sweep name (overrides the config's \"name\")", NULL},
        {"strategy", 1, "grid | random | bayes | tpe (overrides the config)", NULL},
        {"seed", 1, "sweep seed (overrides the config)", NULL},
        {"trials", 1, "budget in trials (overrides the config; with --resume, a larger one extends the sweep)", NULL},
        {"runs-dir", 1, "with a \"train\" section: folder of the trials' run directories (default: sweeps/NAME next to the database)", NULL},
        {"tensorboard", FT_OPT_OPTIONAL_VALUE, "with a \"train\" section: TensorBoard event files of every trial, in its RUN/tensorboard or in DIR/trial-<idx>", NULL},
        {"report", 1, "HTML report path (default: sweep-NAME.html next to the database)", NULL},
        {"no-report", 0, "do not write the HTML report", NULL},
        {"quiet", 0, "no per-trial lines on stderr", NULL},
        {"model", 1, "without --config: the model to tune (the default sweep: lr by TPE, ASHA over epochs, 12 trials)", NULL},
        {"data", 1, "without --config: the training data", NULL},
        {"val-data", 1, "without --config: validation data (default: finetune train's --val-split)", NULL},
        {"task", 1, "without --config: finetune train's --task", NULL},
        {"method", 1, "without --config: full, lora or qlora (the lr range follows it)", NULL},
        {"text-column", 1, "without --config: finetune train's --text-column", NULL},
        {"label-column", 1, "without --config: finetune train's --label-column", NULL},
        {"seq-len", 1, "without --config: finetune train's --seq-len", NULL},
        {"batch-size", 1, "without --config: finetune train's --batch-size", NULL},
        {"precision", 1, "without --config: finetune train's --precision", NULL},
        {"threads", 1, "without --config: finetune train's --threads (per trial)", NULL},
        {"epochs", 1, "without --config: the full budget of a trial in epochs (default 3; ASHA starts at 1)", NULL},
        {"metric", 1, "without --config: the objective, a key of the trials' evaluations (default val_loss)", NULL},
        {"direction", 1, "without --config: minimize or maximize (default: minimize for val_loss, mse, perplexity)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts,
                            "usage: finetune sweep --config sweep.json [--objective-cmd CMD] [--db FILE] [--jobs N]\n"
                            "       finetune sweep --model DIR --data FILE [--method M] [--task T] [--trials 12] [--epochs 3] [--jobs N]\n"
                            "       finetune sweep --resume NAME [--db FILE] [--jobs N]\n"
                            "       finetune sweep --show [--name NAME] [--db FILE]");
    if (prc) return prc == 1 ? 0 : prc;
    const char *db_path = ft_opt_str(opts, "db", "runs/finetune.db");
    const char *cfg_path = ft_opt_str(opts, "config", NULL), *resume = ft_opt_str(opts, "resume", NULL);
    int show = ft_opt_flag(opts, "show");
    long jobs = 0;
    if (ft_opt_int(opts, "jobs", 0, &jobs) < 0) return 2;
    if (jobs < 0 || jobs > 256) { fprintf(stderr, "finetune sweep: --jobs must be in 1..256\n"); return 2; }
    int defaults = ft_opt_str(opts, "model", NULL) || ft_opt_str(opts, "data", NULL);
    if (defaults && (cfg_path || resume || show)) {
        fprintf(stderr, "finetune sweep: --model / --data make the default sweep; with --config, --resume or --show put them in the config's \"train\" section\n");
        return 2;
    }
    if (!!cfg_path + !!resume + show + defaults != 1) {
        fprintf(stderr, "finetune sweep: give one of --config FILE, --resume NAME, --show, or --model DIR --data FILE (see --help)\n");
        return 2;
    }
    char *default_text = NULL;
    if (defaults) {
        int drc = default_config(opts, &default_text);
        if (drc < 0) return ft_cli_fail("sweep", drc);
        fprintf(stderr, "finetune sweep: no --config: the default sweep (give --config FILE for another search space):\n%s\n", default_text);
    }
    ft_hpo_db *db;
    int rc = ft_hpo_db_open(db_path, &db);
    if (rc < 0) { free(default_text); return ft_cli_fail("sweep", rc); }
    ft_hpo_spec *s = NULL;
    ft_hpo_trial *t = NULL;
    int n = 0;
    char runs[4400];  /* runs_path's buffer */
    if (!show) {
        char *text = NULL;
        if (default_text) {
            rc = apply_overrides(default_text, "the default sweep", opts, &text);
            if (rc == FT_OK) rc = ft_hpo_spec_parse(text, "the default sweep", &s);
        } else if (cfg_path) {
            rc = load_config(cfg_path, opts, &text);
            if (rc == FT_OK) rc = ft_hpo_spec_parse(text, cfg_path, &s);
        } else {
            ft_hpo_trial *old;
            int nold;
            ft_hpo_spec *stored = NULL;
            rc = ft_hpo_sweep_load(db, resume, &stored, &old, &nold);
            if (rc == FT_OK) ft_hpo_trials_free(old, nold);
            /* --trials / --seed / ... apply to the stored config too (a larger budget extends the sweep) */
            if (rc == FT_OK) rc = apply_overrides(stored->json, resume, opts, &text);
            if (rc == FT_OK) rc = ft_hpo_spec_parse(text, resume, &s);
            ft_hpo_spec_free(stored);
        }
        free(text);
        free(default_text);
        default_text = NULL;
        if (rc == FT_OK) {
            progress pg = {s->max_trials, 0, INFINITY};
            /* "train" sweeps: this program trains each trial in <dir of the database>/sweeps/<name>/trial-<idx> */
            char exe[4096] = "";
            ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
            exe[el > 0 ? el : 0] = 0;
            ft_hpo_run_opts ro = {.train_exe = exe[0] ? exe : "finetune",
                                  .runs_dir = runs_path(ft_opt_str(opts, "runs-dir", NULL), db_path, s->name, runs, sizeof runs), .train_db = db_path,
                                  .tensorboard = ft_opt_str(opts, "tensorboard", NULL),
                                  .jobs = (int)jobs, .objective_cmd = ft_opt_str(opts, "objective-cmd", NULL),
                                  .quiet = ft_opt_flag(opts, "quiet"), .on_trial = ft_opt_flag(opts, "quiet") ? NULL : on_trial, .ud = &pg};
            rc = ft_hpo_sweep_run(db, s, &ro);
            if (rc < 0) fprintf(stderr, "finetune sweep: %s\n", ft_last_error());
        }
        if (s && rc != FT_ERR_NOMEM) {
            char name[128];
            snprintf(name, sizeof name, "%s", s->name);
            ft_hpo_spec_free(s);
            s = NULL;
            int lrc = ft_hpo_sweep_load(db, name, &s, &t, &n);
            if (lrc < 0 && rc == FT_OK) rc = lrc;
        } else if (rc < 0) {
            ft_hpo_db_close(db);
            ft_hpo_spec_free(s);
            return ft_cli_fail("sweep", rc);
        }
    } else {
        rc = ft_hpo_sweep_load(db, ft_opt_str(opts, "name", NULL), &s, &t, &n);
    }
    int exit_code = rc < 0 ? 1 : 0;
    if (s) {
        char buf[4200];
        const char *rep = ft_opt_flag(opts, "no-report") ? NULL : report_path(ft_opt_str(opts, "report", NULL), db_path, s->name, buf, sizeof buf);
        if (rep && ft_hpo_report_write(rep, s, t, n) < 0) {
            fprintf(stderr, "finetune sweep: report: %s\n", ft_last_error());
            rep = NULL;
            exit_code = 1;
        }
        if (n > 0 && ft_hpo_best(s, t, n) < 0) exit_code = 1;
        summary(s, t, n, db_path, rep, runs_path(ft_opt_str(opts, "runs-dir", NULL), db_path, s->name, runs, sizeof runs));
    } else if (rc < 0) {
        fprintf(stderr, "finetune sweep: %s\n", ft_last_error());
    }
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);
    ft_hpo_db_close(db);
    return fflush(stdout) == 0 ? exit_code : 1;
}
