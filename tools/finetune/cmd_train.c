/* cmd_train.c — `finetune train`: fine-tune a model on a dataset (see train.h). Every option of
 * the table in src/train/train_config.c is a flag here and a key of --config FILE. */
#include "cli.h"
#include "finetune/fileio.h"
#include "finetune/runs.h"
#include "finetune/status.h"
#include "finetune/tfevents.h"

#include <cjson/cJSON.h>
#include "finetune/train.h"
#include "train/dist.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* the sample generations of the last epoch, from RUN_DIR/metrics.jsonl, to stdout */
static void print_samples(const char *run_dir) {
    char path[4096], *text;
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    if (ft_file_read_all(path, &text, NULL) < 0) return;
    cJSON *last[16];
    int n = 0;
    double last_epoch = -1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *ty = j ? cJSON_GetObjectItem(j, "type") : NULL;
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "sample") != 0) { cJSON_Delete(j); continue; }
        double ep = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "epoch"));
        if (ep != last_epoch) { for (int i = 0; i < n; i++) cJSON_Delete(last[i]); n = 0; last_epoch = ep; }
        if (n < 16) last[n++] = j; else cJSON_Delete(j);
    }
    free(text);
    if (n) printf("sample generations after epoch %.0f (prompt, then the model's continuation):\n", last_epoch);
    for (int i = 0; i < n; i++) {
        const cJSON *p = cJSON_GetObjectItem(last[i], "prompt"), *t = cJSON_GetObjectItem(last[i], "text");
        printf("--- %d ---\n%s%s\n", i + 1, cJSON_IsString(p) ? p->valuestring : "", cJSON_IsString(t) ? t->valuestring : "");
        cJSON_Delete(last[i]);
    }
    printf("report: %s/report.html\n", run_dir);
}

/* Ctrl-C, SIGTERM (one process) or SIGUSR1 (under mpirun): the trainer checkpoints and returns FT_ERR_INTERRUPTED; a
 * second one kills at once. Installed without SA_RESTART, so that a --stream run waiting on stdin wakes up (EINTR)
 * and stops too. */
static volatile sig_atomic_t g_stop = 0;
static void on_sigint(int sig) { g_stop = 1; signal(sig, SIG_DFL); }
static void catch_stop(int sig, struct sigaction *old) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, old);
}

/* --dry-run: the plan on stdout */
/* the run store of a run directory: --db, else finetune.db in the folder holding the run directory
 * (runs/finetune.db for the default runs/YYYYMMDD-HHMMSS, the file `finetune sweep` uses by default) */
static void db_path_for(const char *db, const char *run_dir, char *buf, size_t cap) {
    if (db) { snprintf(buf, cap, "%s", db); return; }
    char d[4096];
    snprintf(d, sizeof d, "%s", run_dir);
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/') d[--n] = 0;
    char *slash = strrchr(d, '/');
    if (!slash) snprintf(buf, cap, "finetune.db");
    else if (slash == d) snprintf(buf, cap, "/finetune.db");
    else { *slash = 0; snprintf(buf, cap, "%s/finetune.db", d); }
}

/* the command line as one string, arguments with a space or quote single-quoted */
static char *command_line(int argc, char **argv) {
    size_t cap = 16;
    for (int i = 0; i < argc; i++) cap += 4 * strlen(argv[i]) + 3;
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    p += sprintf(p, "finetune");
    for (int i = 0; i < argc; i++) {
        *p++ = ' ';
        int quote = !argv[i][0] || strpbrk(argv[i], " \t'\"$\\;&|<>*?") != NULL;
        if (quote) *p++ = '\'';
        for (const char *a = argv[i]; *a; a++) {
            if (*a == '\'') { memcpy(p, "'\\''", 4); p += 4; }
            else *p++ = *a;
        }
        if (quote) *p++ = '\'';
    }
    *p = 0;
    return s;
}

static int dry_run(const ft_train_config *cfg, const ft_train_sink *con) {
    ft_trainer *t;
    FT_TRY(ft_trainer_create(&t, cfg, NULL, con, 1, NULL));
    char plan[2048];
    int rc = ft_trainer_plan(t, plan, sizeof plan);
    if (rc == FT_OK && ft__dist_get()->rank == 0) printf("%s\n", plan);
    ft_trainer_close(t);
    return rc;
}

static int cmd_train(int argc, char **argv);

/* under mpirun (a build with MPI): every rank runs the same command; rank 0 writes the run directory, the
 * run store and the output, the others only compute (README "Several processes") */
int ft_cmd_train(int argc, char **argv) {
    /* a head on frozen features (embeddings files) has its own trainer and options (one process) */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--features")) return ft_cmd_train_features(argc, argv);
#ifdef FT_HAVE_MPI
    ft__dist_mpi_start();
#endif
    int status = cmd_train(argc, argv);
#ifdef FT_HAVE_MPI
    ft__dist_mpi_stop(status == 130 ? 0 : status);
#endif
    return status;
}

static int cmd_train(int argc, char **argv) {
    int n = ft_train_option_count;
    int root = ft__dist_get()->rank == 0;
    /* every option, then --no-X for each boolean X, then --config and --resume */
    ft_opt *opts = calloc((size_t)(2 * n) + 6, sizeof *opts);
    char (*helps)[400] = calloc((size_t)n, sizeof *helps), (*negs)[160] = calloc((size_t)n, sizeof *negs);
    int *neg_of = calloc((size_t)n, sizeof *neg_of);
    if (!opts || !helps || !negs || !neg_of) { free(opts); free(helps); free(negs); free(neg_of); fprintf(stderr, "out of memory\n"); return 1; }
    int nn = n;
    for (int i = 0; i < n; i++) {
        const ft_train_option *o = &ft_train_options[i];
        snprintf(helps[i], sizeof helps[i], "%s (default: %s)", o->help,
                 o->type == FT_OPTV_BOOL ? (!strcmp(o->def, "1") ? "on" : "off") : o->def[0] ? o->def : "none");
        opts[i].name = o->name;
        opts[i].has_value = o->type != FT_OPTV_BOOL;
        opts[i].help = helps[i];
        if (o->type == FT_OPTV_BOOL) {
            /* negs[i]: the flag name, then its help text after the NUL */
            int len = snprintf(negs[i], sizeof negs[i], "no-%s", o->name);
            snprintf(negs[i] + len + 1, sizeof negs[i] - (size_t)len - 1, "turns --%s off", o->name);
            neg_of[nn - n] = i;
            opts[nn++] = (ft_opt){negs[i], 0, negs[i] + len + 1, NULL};
        }
    }
    opts[nn] = (ft_opt){"config", 1, "JSON file of options (keys as the flags, '-' or '_'); flags given here override it", NULL};
    opts[nn + 1] = (ft_opt){"resume", 1, "continue the run in RUN_DIR from its newest checkpoint (bit-exact)", NULL};
    opts[nn + 2] = (ft_opt){"db", 1, "run store (SQLite) recording the run (default: finetune.db in the folder holding the run directory)", NULL};
    opts[nn + 3] = (ft_opt){"no-db", 0, "do not record the run in a run store", NULL};
    opts[nn + 4] = (ft_opt){"tensorboard", FT_OPT_OPTIONAL_VALUE,
                            "write TensorBoard event files into DIR (default: RUN_DIR/tensorboard); view with tensorboard --logdir", NULL};
    int prc = ft_parse_opts(argc, argv, opts,
        "usage: finetune train [--model DIR] [--data FILE] [--out RUN_DIR] [--tensorboard [DIR]] [options]\n"
        "       finetune train --config config.json\n"
        "       finetune train --resume RUN_DIR [--stop-at-epoch N | --stop-at-step N] [--precision P]\n\n"
        "Fine-tunes a model; with no --model / --data it fine-tunes the embedded stories260K on the bundled\n"
        "fun-dialogues set. Writes RUN_DIR/config.json, metrics.jsonl, checkpoints/, best/, final/, report.html.");
    int status = 0;
    ft_train_sink con = {0}, sinks[3], store = {0}, tboard = {0};
    char db_path[4096];
    int n_sinks = 1;
    struct sigaction old_int, old_term;
    int caught = 0;
    if (prc) { status = prc == 1 ? 0 : prc; goto out; }
    if (ft_train_sink_console(&con) < 0) { status = ft_cli_fail("train", FT_ERR_NOMEM); goto out; }
    ft_train_result res;
    int rc;
    char out_dir[1024] = "";
    int auto_out = 0; /* the run directory name was made here (runs/DATE-TIME): removed again if a failure leaves it empty */
    const char *resume = ft_opt_str(opts, "resume", NULL);
    g_stop = 0;
    catch_stop(SIGINT, &old_int);
    caught = 1;
    /* under mpirun, Ctrl-C ends every rank at once (resume from the last checkpoint); SIGUSR1, which mpirun
     * forwards to the ranks (kill -USR1 <mpirun's pid>), stops them all at the same step with a checkpoint.
     * One process: SIGTERM stops it with a checkpoint too (a --stream run fed by a service). */
    if (ft__dist_get()->world > 1) signal(SIGUSR1, on_sigint);
    else { catch_stop(SIGTERM, &old_term); caught = 2; }
    sinks[0] = con;
    char *cmdline = command_line(argc, argv);
    const char *tb_dir = ft_opt_str(opts, "tensorboard", NULL);
    if (tb_dir && root && ft_train_sink_tensorboard(&tboard, tb_dir, stderr) == FT_OK) sinks[n_sinks++] = tboard;   /* rank 0 under mpirun */
    if (resume) {
        if (!ft_opt_flag(opts, "no-db") && root) {
            db_path_for(ft_opt_str(opts, "db", NULL), resume, db_path, sizeof db_path);
            if (ft_train_sink_runstore(&store, db_path, cmdline, 1, stderr) == FT_OK) sinks[n_sinks++] = store;
        }
        free(cmdline);
        /* --resume RUN --precision P: the run goes on in precision P (checkpoints are f32 either way);
         * --stop-at-epoch / --stop-at-step N: it goes on to another stopping point (0: to the end). Rank 0
         * rewrites config.json under the run's lock, the other ranks get it from rank 0 */
        static const char *const resume_opts[] = {"precision", "stop-at-epoch", "stop-at-step"};
        rc = FT_OK;
        int any = 0;
        for (size_t i = 0; i < sizeof resume_opts / sizeof *resume_opts; i++) {
            const char *v = ft_opt_str(opts, resume_opts[i], NULL);
            if (!v) continue;
            any = 1;
            if (rc == FT_OK && root) rc = ft_train_run_set_option(resume, resume_opts[i], v);
        }
        if (any) rc = ft__dist_agree(ft__dist_get(), rc);
        if (rc == FT_OK) rc = ft_train_ex(NULL, resume, sinks, n_sinks, &g_stop, &res);
    } else {
        ft_train_config cfg;
        ft_train_config_defaults(&cfg);
        const char *cfile = ft_opt_str(opts, "config", NULL);
        if (cfile && (rc = ft_train_config_load_json(&cfg, cfile)) < 0) { free(cmdline); status = ft_cli_fail("train", rc); goto out; }
        for (int i = 0; i < n; i++)
            if (opts[i].value && (rc = ft_train_config_set(&cfg, opts[i].name, opts[i].value)) < 0) {
                fprintf(stderr, "finetune train: %s\n", ft_last_error());
                free(cmdline);
                status = 2;
                goto out;
            }
        for (int k = n; k < nn; k++)
            if (opts[k].value) ft_train_config_set(&cfg, ft_train_options[neg_of[k - n]].name, "0");
        if (!cfg.model[0]) snprintf(cfg.model, sizeof cfg.model, "%s", ft_default_model_dir());
        if (!cfg.data[0]) snprintf(cfg.data, sizeof cfg.data, "%s", cfg.stream ? "-" : ft_default_data_path());   /* --stream: stdin */
        if (!cfg.out[0]) { /* a new run directory each time: runs/20261125-043000 */
            time_t now = time(NULL);
            struct tm tmv;
            localtime_r(&now, &tmv);
            strftime(cfg.out, sizeof cfg.out, "runs/%Y%m%d-%H%M%S", &tmv);
            if (root) fprintf(stderr, "run directory: %s\n", cfg.out);
            auto_out = 1;
        }
        snprintf(out_dir, sizeof out_dir, "%s", cfg.out);
        if (cfg.dry_run) {
            free(cmdline);
            if ((rc = dry_run(&cfg, &con)) < 0) status = ft_cli_fail("train", rc);
            goto out;
        }
        /* several ranks: rank 0 cleans; the others get the cleaned files' paths with its configuration */
        if (cfg.clean[0] && root && (rc = ft_cli_train_clean(&cfg)) < 0) { free(cmdline); status = ft_cli_fail("train", rc); goto out; }
        if (!ft_opt_flag(opts, "no-db") && root) {
            db_path_for(ft_opt_str(opts, "db", NULL), cfg.out, db_path, sizeof db_path);
            if (ft_train_sink_runstore(&store, db_path, cmdline, 0, stderr) == FT_OK) sinks[n_sinks++] = store;
        }
        free(cmdline);
        rc = ft_train_ex(&cfg, NULL, sinks, n_sinks, &g_stop, &res);
    }
    if (rc < 0 && rc != FT_ERR_INTERRUPTED) {
        /* a failure every rank agreed on is rank 0's to report */
        status = !root && ft__dist_agreed_failure() ? 1 : ft_cli_fail("train", rc);
        if (auto_out && root) rmdir(out_dir);   /* only if empty: a bad option leaves no empty run directory behind */
        goto out;
    }
    if (rc == FT_ERR_INTERRUPTED) { if (root) fprintf(stderr, "finetune train: %s\n", ft_last_error()); status = 130; goto out; }
    if (!root) goto out;   /* the other ranks of an mpirun run: rank 0 reports */
    printf("trained %lld steps", (long long)res.steps);
    if (res.stopped_early) printf(" (stopped early)");
    printf("; final training loss %.4f\n", res.final_train_loss);
    if (res.metric_name[0]) {
        if (isfinite(res.first_metric) && isfinite(res.final_metric))
            printf("validation %s: before %.4f -> after %.4f (best %.4f)\n", res.metric_name, res.first_metric, res.final_metric, res.best_metric);
    } else if (isfinite(res.first_val_loss) && isfinite(res.final_val_loss))
        printf("validation perplexity: before %.3f -> after %.3f (best %.3f)\n", exp(res.first_val_loss), exp(res.final_val_loss),
               exp(res.best_val_loss));
    else if (isfinite(res.final_val_loss))
        printf("validation perplexity: %.3f (best %.3f)\n", exp(res.final_val_loss), exp(res.best_val_loss));
    print_samples(resume ? resume : out_dir);
out:
    if (caught) sigaction(SIGINT, &old_int, NULL);
    if (caught == 2) sigaction(SIGTERM, &old_term, NULL);
    if (store.close) store.close(store.user);
    if (tboard.close) tboard.close(tboard.user);
    if (con.close) con.close(con.user);
    free(opts);
    free(helps);
    free(negs);
    free(neg_of);
    return status;
}
