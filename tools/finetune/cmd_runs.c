/* cmd_runs.c — `finetune runs`: the run store (runs.h) on the console.
 *
 *   finetune runs [--db FILE] list [--status S] [--tag T] [--sweep NAME] [--sort metric:KEY] [--limit N]   (the default action)
 *   finetune runs [--db FILE] show RUN | tag RUN TAG | rm RUN [--keep-dir] | export --csv
 * RUN is a run id or name (the newest run of that name). */
#include "cli.h"
#include "finetune/checkpoint.h"
#include "finetune/fileio.h"
#include "finetune/runs.h"
#include "finetune/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *k_usage =
    "usage: finetune runs [--db FILE] list [--status S] [--tag T] [--sweep NAME] [--sort metric:KEY] [--limit N]\n"
    "       finetune runs [--db FILE] show RUN\n"
    "       finetune runs [--db FILE] tag RUN TAG\n"
    "       finetune runs [--db FILE] rm RUN [--keep-dir]\n"
    "       finetune runs [--db FILE] export --csv\n"
    "       finetune runs [--db FILE] compare RUN RUN... [--out FILE]\n\n"
    "The runs `finetune train` recorded (default database runs/finetune.db). RUN: a run id or name.\n"
    "Metric keys are <type>/<field> of metrics.jsonl: train/loss, eval/val_loss, eval/accuracy, test/accuracy ...";

int ft_cmd_runs(int argc, char **argv) {
    ft_opt opts[] = {
        {"db", 1, "SQLite run store (default runs/finetune.db)", NULL},
        {"status", 1, "list: only runs with this status (running, finished, failed, interrupted, killed)", NULL},
        {"tag", 1, "list: only runs with this tag", NULL},
        {"sweep", 1, "list: only the runs of the trials of sweep NAME (finetune sweep with a \"train\" section)", NULL},
        {"sort", 1, "list: metric:KEY orders by the last value of KEY, smallest first (default: newest first)", NULL},
        {"limit", 1, "list: at most N runs", NULL},
        {"keep-dir", 0, "rm: keep the run directory (default: deleted with the run)", NULL},
        {"out", 1, "compare: the HTML page to write (default: runs-compare.html next to the database)", NULL},
        {"csv", 0, "export: CSV on stdout, one row per run, the last value of each metric as a column", NULL},
        {NULL, 0, NULL, NULL},
    };
    /* positional words (the action and its arguments) apart from the options */
    char **flags = calloc((size_t)argc + 1, sizeof *flags);
    const char *pos[66] = {0};
    int nf = 0, np = 0;
    if (!flags) return 1;
    flags[nf++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0 || strcmp(argv[i], "-h") == 0) {
            flags[nf++] = argv[i];
            int takes = 0;
            for (const ft_opt *o = opts; o->name; o++)
                if (!strcmp(argv[i] + 2, o->name)) takes = o->has_value;
            if (takes && i + 1 < argc) flags[nf++] = argv[++i];
        } else if (np < 66) pos[np++] = argv[i];
        else { fprintf(stderr, "finetune runs: too many arguments (see --help)\n"); free(flags); return 2; }
    }
    int prc = ft_parse_opts(nf, flags, opts, k_usage);
    free(flags);
    if (prc) return prc == 1 ? 0 : prc;
    if (np == 0) pos[np++] = "list";   /* `finetune runs` alone lists the runs */
    const char *act = pos[0];
    int need = !strcmp(act, "show") || !strcmp(act, "rm") ? 2 : !strcmp(act, "tag") ? 3 : 1;
    if (strcmp(act, "list") && strcmp(act, "show") && strcmp(act, "tag") && strcmp(act, "rm") && strcmp(act, "export") && strcmp(act, "compare")) {
        fprintf(stderr, "finetune runs: unknown action '%s' (list, show, tag, rm, export, compare)\n", act);
        return 2;
    }
    if (!strcmp(act, "compare")) {
        if (np < 3 || np > 65) { fprintf(stderr, "finetune runs compare: expected 2 to 64 runs\n"); return 2; }
        need = np;
    }
    if (np != need) { fprintf(stderr, "finetune runs %s: expected %d argument%s (see --help)\n", act, need - 1, need == 2 ? "" : "s"); return 2; }
    const char *db_path = ft_opt_str(opts, "db", "runs/finetune.db");
    if (strcmp(act, "list") && !ft_path_exists(db_path)) {
        fprintf(stderr, "finetune runs: %s: no run store (train a run first, or give --db)\n", db_path);
        return 1;
    }
    ft_runs_db *db;
    int rc = ft_runs_open(db_path, &db);
    if (rc < 0) return ft_cli_fail("runs", rc);
    int64_t id = -1;
    if (need >= 2 && (rc = ft_runs_find(db, pos[1], &id)) < 0) { ft_runs_close(db); return ft_cli_fail("runs", rc); }
    if (!strcmp(act, "compare")) {
        int64_t ids[64];
        for (int k = 1; rc == FT_OK && k < np; k++) rc = ft_runs_find(db, pos[k], &ids[k - 1]);
        char def[4200];
        const char *out = ft_opt_str(opts, "out", NULL);
        if (!out) {
            const char *slash = strrchr(db_path, '/');
            snprintf(def, sizeof def, "%.*s%sruns-compare.html", slash ? (int)(slash - db_path) : 0, db_path, slash ? "/" : "");
            out = def;
        }
        FILE *f = rc == FT_OK ? fopen(out, "w") : NULL;
        if (rc == FT_OK && !f) rc = ft_error(FT_ERR_IO, "%s: cannot open for writing", out);
        if (rc == FT_OK) {
            rc = ft_runs_write_compare(db, ids, np - 1, f);
            if (fclose(f) != 0 && rc == FT_OK) rc = ft_error(FT_ERR_IO, "%s: write failed", out);
        }
        if (rc == FT_OK) printf("compare: %s\n", out);
    } else if (!strcmp(act, "list")) {
        ft_runs_list_opts o = {.status = ft_opt_str(opts, "status", NULL), .tag = ft_opt_str(opts, "tag", NULL),
                               .sweep = ft_opt_str(opts, "sweep", NULL)};
        const char *sort = ft_opt_str(opts, "sort", NULL);
        long limit;
        if (ft_opt_int(opts, "limit", 0, &limit) < 0) { ft_runs_close(db); return 2; }
        o.limit = (int)limit;
        if (sort) {
            if (strncmp(sort, "metric:", 7) != 0 || !sort[7]) {
                fprintf(stderr, "finetune runs: --sort expects metric:KEY (e.g. metric:eval/val_loss)\n");
                ft_runs_close(db);
                return 2;
            }
            o.sort_metric = sort + 7;
        }
        rc = ft_runs_write_list(db, &o, stdout);
    } else if (!strcmp(act, "show")) {
        rc = ft_runs_write_show(db, id, stdout);
    } else if (!strcmp(act, "tag")) {
        rc = ft_runs_tag(db, id, pos[2]);
        if (rc == FT_OK) printf("run %lld tagged %s\n", (long long)id, pos[2]);
    } else if (!strcmp(act, "rm")) {
        char *dir = NULL;
        rc = ft_runs_remove(db, id, &dir);
        if (rc == FT_OK) {
            if (!ft_opt_flag(opts, "keep-dir") && dir && ft_path_exists(dir)) {
                rc = ft_remove_tree(dir);
                if (rc == FT_OK) printf("removed run %lld and %s\n", (long long)id, dir);
            } else printf("removed run %lld (directory %s kept)\n", (long long)id, dir ? dir : "-");
        }
        free(dir);
    } else {
        if (!ft_opt_flag(opts, "csv")) { fprintf(stderr, "finetune runs export: only --csv is supported\n"); ft_runs_close(db); return 2; }
        rc = ft_runs_write_csv(db, stdout);
    }
    ft_runs_close(db);
    return rc < 0 ? ft_cli_fail("runs", rc) : 0;
}
