/* hpo.h — hyperparameter search: search spaces, strategies (grid, random, Bayesian optimisation with a
 * Gaussian process, TPE), multi-fidelity schedulers (successive halving, Hyperband, ASHA), a sweep state
 * kept in SQLite, and the sweep report.
 *
 * Overview
 *   A sweep is described by a JSON document (sweep.json, parsed by ft_hpo_spec_parse):
 *
 *     {"name": "branin", "strategy": "bayes", "direction": "minimize", "seed": 1,
 *      "budget": {"trials": 30, "seconds": 600},
 *      "params": {"x": {"type": "uniform", "low": -5, "high": 10},
 *                 "lr": {"type": "loguniform", "low": 1e-5, "high": 1e-2},
 *                 "batch_size": {"type": "int", "low": 4, "high": 64, "log": true},
 *                 "optimizer": {"type": "choice", "values": ["adamw", "sgd"]}},
 *      "bayes": {"acquisition": "ei"},
 *      "scheduler": {"type": "hyperband", "min_resource": 1, "max_resource": 81, "eta": 3},
 *      "objective_cmd": "./my_objective"}
 *
 *   Each trial is one evaluation: a configuration (one value per parameter) at a budget (the fidelity:
 *   steps, data fraction or sequence length as a number). Without a scheduler every trial is a new
 *   configuration at the full budget; with one, a configuration climbs rungs of growing budget as long as
 *   it ranks in the top 1/eta of its rung, and each rung it reaches is one more trial (same config id).
 *
 *   Continuation ("scheduler": {..., "continue": true}, the default for "train" sweeps over epochs or steps):
 *   a promoted trial names the trial of the rung below that it continues (parent) and costs only the budget
 *   it adds (cost = budget - parent's budget). A "train" trial then resumes a copy of its parent's run
 *   directory (`finetune train --resume DIR --stop-at-epoch BUDGET`), every trial's schedule being planned for
 *   max_resource, so the top rung holds exactly the model of an uninterrupted max_resource run. The
 *   decisions are the same with or without it.
 *
 *   The decision engine (ft_hpo_next) is a pure function of the sweep's spec, its seed and the trials
 *   decided so far: trial i's random numbers come from (seed, i), and it sees the results of trials
 *   0 .. i - jobs only (waiting for them when needed), so a sweep resumed after a crash, or run with the
 *   same --jobs again, makes exactly the same decisions.
 *
 * Example (the engine alone, objective evaluated in-process):
 *
 *     ft_hpo_spec *s; FT_TRY(ft_hpo_spec_parse(json_text, "sweep.json", &s));
 *     ft_hpo_trial *t = calloc(...);  int n = 0;
 *     for (;;) {
 *         int rc = ft_hpo_next(s, t, n, 1, &t[n]);   // FT_HPO_RUN, FT_HPO_WAIT or FT_HPO_DONE (< 0: error)
 *         if (rc != FT_HPO_RUN) break;
 *         t[n].value = f(t[n].x); t[n].status = FT_HPO_FINISHED; n++;
 *     }
 *     ft_hpo_trials_free(t, n); ft_hpo_spec_free(s);
 *
 * Ownership: ft_hpo_spec_parse returns a spec the caller frees with ft_hpo_spec_free; a trial owns its x
 * array (ft_hpo_trial_free). ft_hpo_db is an opened SQLite database (ft_hpo_db_close).
 * Thread safety: specs are read-only after parsing and may be shared; an ft_hpo_db handle belongs to one
 * thread at a time. Several processes may use one database file at once (WAL mode, busy timeout,
 * one transaction per change); one sweep is run by one process at a time (the others are refused).
 * Library functions print nothing on stdout; progress is logged on stderr (ft_log). */
#ifndef FINETUNE_HPO_H
#define FINETUNE_HPO_H
#include <stdint.h>

/* ---- search space ---- */

typedef enum ft_hpo_kind {
    FT_HPO_UNIFORM = 0,    /* a real in [low, high] */
    FT_HPO_LOGUNIFORM = 1, /* a real in [low, high], uniform in log (low > 0) */
    FT_HPO_INT = 2,        /* an integer in [low, high], uniform (or in log with "log": true) */
    FT_HPO_CHOICE = 3,     /* one of n_choices values (strings, numbers, booleans) */
} ft_hpo_kind;

typedef struct ft_hpo_param {
    char        name[64];
    ft_hpo_kind kind;
    double      low, high;   /* bounds, inclusive (UNIFORM / LOGUNIFORM / INT) */
    int         log;         /* INT: log scale */
    int         n_choices;   /* CHOICE */
    char      **choices;     /* [n_choices] each value as JSON text ("\"adamw\"", "0.1", "true") */
    int         grid_points; /* grid strategy: points of a real range (default 5; an INT range with fewer
                                values uses all of them) */
} ft_hpo_param;

typedef enum ft_hpo_strategy { FT_HPO_GRID, FT_HPO_RANDOM, FT_HPO_BAYES, FT_HPO_TPE } ft_hpo_strategy;
typedef enum ft_hpo_scheduler { FT_HPO_SCHED_NONE, FT_HPO_SCHED_SH, FT_HPO_SCHED_HYPERBAND, FT_HPO_SCHED_ASHA } ft_hpo_scheduler;
typedef enum ft_hpo_acq { FT_HPO_EI, FT_HPO_PI, FT_HPO_UCB } ft_hpo_acq;

typedef struct ft_hpo_spec {
    char            name[128];
    ft_hpo_param   *params;      /* [n_params] in the order of the config */
    int             n_params;
    ft_hpo_strategy strategy;
    int             maximize;    /* 1: "direction": "maximize" */
    uint64_t        seed;
    int             max_trials;  /* budget.trials: evaluations (0 = the strategy's own end: grid size, one
                                    Hyperband pass, one SH bracket) */
    double          max_seconds; /* budget.seconds: wall time (0 = none); no trial starts after it */
    /* bayes */
    ft_hpo_acq      acq;         /* bayes.acquisition: "ei" (default), "pi", "ucb" */
    int             n_initial;   /* bayes.n_initial: random trials before the GP (default 5) */
    double          xi;          /* bayes.xi: EI / PI margin in standardised units (default 0) */
    double          kappa;       /* bayes.kappa: UCB width (default 2.0) */
    int             n_candidates;/* bayes.candidates: random acquisition candidates (default 2000) */
    /* tpe (Optuna's TPESampler defaults) */
    int             tpe_startup;       /* tpe.n_startup_trials (10) */
    int             tpe_candidates;    /* tpe.n_ei_candidates (24) */
    double          tpe_prior_weight;  /* tpe.prior_weight (1.0) */
    /* scheduler over a fidelity */
    ft_hpo_scheduler sched;
    char            fidelity[32];  /* scheduler.fidelity: "steps", "data_fraction", "seq_len" (a label) */
    double          min_resource;  /* r_min */
    double          max_resource;  /* R (the full budget); also the budget of every trial without a scheduler
                                      when given (0 = no FT_BUDGET) */
    double          eta;           /* reduction factor (default 3) */
    int             sh_configs;    /* successive halving: configurations in a bracket (default eta^s_max) */
    int             continue_trials; /* scheduler.continue: a promoted configuration continues its previous rung's
                                      trial instead of training from the start (see "Continuation" above);
                                      default 1 with "train" and fidelity epochs or steps, else 0 */
    int             cleanup;       /* "cleanup": remove a train trial's checkpoints/ once nothing needs them */
    /* how to evaluate */
    char           *objective_cmd; /* "objective_cmd" (or --objective-cmd); NULL when absent */
    char           *train_json;    /* "train": options of `finetune train` every trial shares (JSON object text);
                                      NULL when absent. Trials then run `finetune train` (ft_hpo_run_opts) */
    char            metric[64];    /* "metric": with "train", the key read from the last evaluation of the
                                      trial's metrics.jsonl (default "val_loss") */
    char           *json;          /* the document parsed, normalised (cJSON_PrintUnformatted) */
} ft_hpo_spec;

/* Parses sweep.json text; `where` names it in messages (e.g. the file path). */
int  ft_hpo_spec_parse(const char *json_text, const char *where, ft_hpo_spec **out);
void ft_hpo_spec_free(ft_hpo_spec *s);
/* Number of grid points (product over parameters); -1 when it exceeds INT32_MAX. */
long ft_hpo_grid_size(const ft_hpo_spec *s);

/* ---- trials and the decision engine ---- */

typedef enum ft_hpo_trial_status { FT_HPO_PENDING = 0, FT_HPO_RUNNING = 1, FT_HPO_FINISHED = 2, FT_HPO_FAILED = 3 } ft_hpo_trial_status;

typedef struct ft_hpo_trial {
    int     idx;      /* 0, 1, ... in decision order (FT_TRIAL_ID) */
    int     config;   /* configuration id: idx of the trial that first evaluated it */
    int     bracket;  /* scheduler bracket (0 without a scheduler) */
    int     rung;     /* rung in the bracket (0 = lowest budget) */
    double  budget;   /* resource given to the trial (0 = none) */
    int     parent;   /* trial it continued from (scheduler.continue), -1 when it trained from the start */
    double  cost;     /* resource it trained: budget - the parent's budget when continued, else budget */
    int     status;   /* ft_hpo_trial_status */
    double  value;    /* objective (NaN until finished or when failed) */
    double *x;        /* [n_params] values: reals as they are, INT integral, CHOICE the index */
    double  started, finished; /* Unix seconds (0 = not yet) */
} ft_hpo_trial;

enum { FT_HPO_DONE = 0, FT_HPO_RUN = 1, FT_HPO_WAIT = 2 };

/* Decides trial n from trials[0 .. n-1] (all decided so far, in idx order). Results are used only from
 * trials that are finished or failed and have idx <= n - jobs, plus the whole rung a synchronous scheduler
 * waits for; if one of those is still pending or running the answer is FT_HPO_WAIT. FT_HPO_RUN fills *out
 * (idx = n, x malloc'd, status PENDING); FT_HPO_DONE when the budget (trials) or the strategy is spent.
 * Wall time is the caller's business. */
int  ft_hpo_next(const ft_hpo_spec *s, const ft_hpo_trial *trials, int n, int jobs, ft_hpo_trial *out);
void ft_hpo_trial_free(ft_hpo_trial *t);
/* ft_hpo_trial_free on each of t[0..n) and free(t): the arrays ft_hpo_sweep_load returns. NULL is fine. */
void ft_hpo_trials_free(ft_hpo_trial *t, int n);
/* A configuration's parameters as a JSON object {"name": value, ...} (malloc'd text, caller frees); NULL
 * on allocation failure. */
char *ft_hpo_params_json(const ft_hpo_spec *s, const double *x);
/* The parameters as command-line arguments " --name value ..." (each value shell-quoted), malloc'd. */
char *ft_hpo_params_args(const ft_hpo_spec *s, const double *x);

/* ---- Hyperband (Li et al. 2018): brackets s = s_max .. 0, s_max = floor(log_eta R) ---- */

typedef struct ft_hpo_bracket {
    int    s;          /* bracket index as in the paper */
    int    n_rungs;    /* s + 1 */
    int    n[32];      /* [n_rungs] n_i: configurations evaluated at rung i */
    double r[32];      /* [n_rungs] r_i: resource per configuration at rung i (units of r_min) */
} ft_hpo_bracket;

/* Fills out[0 .. s_max] (bracket s_max first, as the paper lists them) for max resource R (in units of
 * the minimum resource, R >= 1) and eta >= 2; returns the number of brackets (s_max + 1), or < 0 when
 * cap is too small or the arguments are out of range. */
int ft_hpo_hyperband_plan(double R, double eta, ft_hpo_bracket *out, int cap);

/* ---- Gaussian process (Matérn 5/2, ARD) on the unit cube, exposed for tests ---- */

typedef struct ft_hpo_gp ft_hpo_gp;

/* GP regression of y[n] on x[n][d] (inputs already in [0,1]^d). y is standardised inside (mean 0, std 1).
 * theta[d + 2] = {log signal variance, log noise variance, log lengthscale_1 .. _d}: when fit != 0 it is
 * the first start of the fit (log marginal likelihood + a Gamma(3, 6) log-prior per lengthscale, maximised
 * by multi-start Nelder-Mead, see gp.c) and receives the fitted values, else it is used as is.
 * seed drives the other starts of the fit. */
int    ft_hpo_gp_fit(ft_hpo_gp **out, const double *x, const double *y, int n, int d, double *theta, int fit, uint64_t seed);
void   ft_hpo_gp_free(ft_hpo_gp *gp);
/* Posterior mean and variance (of the latent function, without noise) at xq[d], in standardised units
 * (std_units != 0) or in the units of y. */
void   ft_hpo_gp_predict(const ft_hpo_gp *gp, const double *xq, int std_units, double *mean, double *var);
/* Log marginal likelihood of the standardised data at theta. */
double ft_hpo_gp_log_marginal(const ft_hpo_gp *gp);
/* Smallest standardised y (the incumbent of a minimisation). */
double ft_hpo_gp_best(const ft_hpo_gp *gp);

/* Acquisitions of a minimisation at a point with posterior mean mu and standard deviation sigma, incumbent
 * best: EI = (best - mu - xi) Phi(z) + sigma phi(z), PI = Phi(z), z = (best - mu - xi) / sigma;
 * UCB (a lower confidence bound, negated so that larger is better) = -(mu - kappa sigma). */
double ft_hpo_ei(double mu, double sigma, double best, double xi);
double ft_hpo_pi(double mu, double sigma, double best, double xi);
double ft_hpo_ucb(double mu, double sigma, double kappa);

/* ---- the sweep state in SQLite ---- */

typedef struct ft_hpo_db ft_hpo_db;

/* Opens (creates) the database at path in WAL mode with the tables sweeps and trials; parent directories
 * are made. */
int  ft_hpo_db_open(const char *path, ft_hpo_db **out);
void ft_hpo_db_close(ft_hpo_db *db);
/* "ok" from PRAGMA integrity_check: 1, else 0 (the message in ft_last_error). */
int  ft_hpo_db_check(ft_hpo_db *db);

typedef struct ft_hpo_run_opts {
    int         jobs;          /* parallel objective processes (>= 1) */
    const char *objective_cmd; /* overrides the spec's */
    int         quiet;         /* 1: no per-trial log lines */
    const char *train_exe;     /* spec with "train": the finetune program that trains each trial */
    const char *runs_dir;      /* spec with "train": the folder of the trials' run directories (trial-<idx>) */
    const char *train_db;      /* spec with "train": the run store each trial's training records into (--db;
                                * NULL: the train command's default, finetune.db in runs_dir) */
    const char *tensorboard;   /* spec with "train": NULL no event files; "" each trial writes its
                                * RUNS_DIR/trial-<idx>/tensorboard; else DIR/trial-<idx> (--tensorboard) */
    /* called (when set) after each trial ends, in the sweep's process */
    void      (*on_trial)(void *ud, const ft_hpo_spec *s, const ft_hpo_trial *t);
    void       *ud;
} ft_hpo_run_opts;

/* Runs the sweep, or continues the stored sweep of the same name when its config is the same up to "budget"
 * (a larger budget extends a finished sweep; the stored config takes the new budget): decides trials with ft_hpo_next, runs each as `sh -c "CMD --name value ..."`
 * with FT_TRIAL_ID, FT_BUDGET (empty without a fidelity), FT_SWEEP and FT_SWEEP_PID in its environment,
 * reads the last number it prints on stdout as the objective (a non-zero exit or no number: failed), and
 * records every decision and result in db. With a "train" section and no objective command, each trial runs
 * `TRAIN_EXE train --config RUNS_DIR/train.json --out RUNS_DIR/trial-<idx> --name value ...` (parameter names
 * with '_' as '-', plus --max-steps / --epochs / --seq-len BUDGET for a scheduler's fidelity; with
 * continue_trials --epochs / --max-steps MAX_RESOURCE --stop-at-epoch / --stop-at-step BUDGET, and a promoted
 * trial `TRAIN_EXE train --resume RUNS_DIR/trial-<idx> --stop-at-... BUDGET` on a copy of its parent's
 * directory, or from the start when that has no checkpoint; "cleanup" removes checkpoints no trial needs) and its value is
 * spec->metric of the last evaluation in RUNS_DIR/trial-<idx>/metrics.jsonl (a trial run again starts from
 * an empty directory). When the trial ends, trials.run_id points at the run its training recorded in the
 * run store of the same file (runs.h; train_db = the sweep's database). Trials left running by a killed sweep are run again. For its
 * duration it handles SIGINT and SIGTERM (the previous handlers are restored): the children are stopped and
 * FT_ERR_INTERRUPTED is returned, the sweep stays resumable. */
int  ft_hpo_sweep_run(ft_hpo_db *db, const ft_hpo_spec *s, const ft_hpo_run_opts *opts);

/* Loads a sweep: its spec (caller frees) and trials[*n] (caller frees with ft_hpo_trials_free). name NULL:
 * the newest sweep. */
int  ft_hpo_sweep_load(ft_hpo_db *db, const char *name, ft_hpo_spec **spec, ft_hpo_trial **trials, int *n);

/* Index of the best finished trial at the highest budget any finished trial reached (-1 if none). */
int  ft_hpo_best(const ft_hpo_spec *s, const ft_hpo_trial *t, int n);

/* Parameter importance in [0, 1] summing to 1 (imp[n_params]), from the finished trials of the highest
 * budget: |Spearman rank correlation| for reals and integers, the correlation ratio eta of the ranks for
 * choices, normalised. Returns 0, or < 0 when fewer than 3 trials are usable (imp all 0). */
int  ft_hpo_importance(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, double *imp);

/* Writes the self-contained HTML report (optimisation history, parallel coordinates, parameter importance,
 * each configuration's values over budget and where the scheduler stopped it, the trials table). */
int  ft_hpo_report_write(const char *path, const ft_hpo_spec *s, const ft_hpo_trial *t, int n);
#endif
