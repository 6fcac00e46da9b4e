/* spec.c — sweep.json -> ft_hpo_spec (see hpo.h for the format). Unknown keys are errors, so that a typo
 * ("stratgy") is not silently a default. */
#include "hpo_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_util.h"
#include "finetune/status.h"

/* FT_OK when every key of o is in the NULL-terminated list `known`. */
static int check_keys(const cJSON *o, const char *const *known, const char *where, const char *section) {
    for (const cJSON *c = o->child; c; c = c->next) {
        int ok = 0;
        for (const char *const *k = known; *k; k++) ok |= strcmp(c->string, *k) == 0;
        if (!ok) return ft_error(FT_ERR_FORMAT, "%s: unknown key \"%s\" in %s", where, c->string, section);
    }
    return FT_OK;
}

static int section(const cJSON *root, const char *key, const cJSON **out, const char *where) {
    *out = cJSON_GetObjectItemCaseSensitive(root, key);
    if (*out && !cJSON_IsObject(*out))
        return ft_error(FT_ERR_FORMAT, "%s: \"%s\" must be an object, got %s", where, key, ft__json_type_name(*out));
    return FT_OK;
}

static int parse_param(ft_hpo_param *p, const cJSON *o, const char *where) {
    static const char *const known[] = {"type", "low", "high", "log", "values", "grid_points", NULL};
    if (!cJSON_IsObject(o))
        return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\" must be an object like {\"type\": \"uniform\", \"low\": 0, \"high\": 1}", where, p->name);
    FT_TRY(check_keys(o, known, where, p->name));
    const char *type;
    FT_TRY(ft__json_get_str(o, "type", NULL, &type, where));
    if (!type) return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\" has no \"type\" (uniform, loguniform, int, choice)", where, p->name);
    if (strcmp(type, "uniform") == 0) p->kind = FT_HPO_UNIFORM;
    else if (strcmp(type, "loguniform") == 0) p->kind = FT_HPO_LOGUNIFORM;
    else if (strcmp(type, "int") == 0) p->kind = FT_HPO_INT;
    else if (strcmp(type, "choice") == 0 || strcmp(type, "categorical") == 0) p->kind = FT_HPO_CHOICE;
    else return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\": unknown type \"%s\" (uniform, loguniform, int, choice)", where, p->name, type);
    FT_TRY(ft__json_get_int_in(o, "grid_points", 5, 1, 1000000, &p->grid_points, where));
    if (p->kind == FT_HPO_CHOICE) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "values");
        int n = cJSON_GetArraySize(v);
        if (!cJSON_IsArray(v) || n < 1)
            return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\" (choice) needs a non-empty list \"values\"", where, p->name);
        p->choices = calloc((size_t)n, sizeof *p->choices);
        if (!p->choices) return ft_error(FT_ERR_NOMEM, "%s: out of memory", where);
        p->n_choices = n;
        int i = 0;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            if (!(cJSON_IsString(c) || cJSON_IsNumber(c) || cJSON_IsBool(c)))
                return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\": a choice must be a string, number or boolean, got %s", where, p->name, ft__json_type_name(c));
            p->choices[i] = cJSON_PrintUnformatted(c);
            if (!p->choices[i]) return ft_error(FT_ERR_NOMEM, "%s: out of memory", where);
        }
        return FT_OK;
    }
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(o, "low"), *hi = cJSON_GetObjectItemCaseSensitive(o, "high");
    if (!cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) || !isfinite(lo->valuedouble) || !isfinite(hi->valuedouble))
        return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\" needs numbers \"low\" and \"high\"", where, p->name);
    p->low = lo->valuedouble;
    p->high = hi->valuedouble;
    FT_TRY(ft__json_get_bool(o, "log", p->kind == FT_HPO_LOGUNIFORM, &p->log, where));
    if (p->kind == FT_HPO_LOGUNIFORM) p->log = 1;
    if (p->kind == FT_HPO_UNIFORM && p->log) p->kind = FT_HPO_LOGUNIFORM;
    if (p->kind == FT_HPO_INT) {
        if (p->low != floor(p->low) || p->high != floor(p->high) || fabs(p->low) > 1e15 || fabs(p->high) > 1e15)
            return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\" (int) needs integer bounds", where, p->name);
    }
    if (!(p->low < p->high) && !(p->kind == FT_HPO_INT && p->low == p->high))
        return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\": low (%g) must be below high (%g)", where, p->name, p->low, p->high);
    if (p->log && p->low <= 0)
        return ft_error(FT_ERR_FORMAT, "%s: parameter \"%s\": a log range needs low > 0 (got %g)", where, p->name, p->low);
    return FT_OK;
}

static int parse_enum(const cJSON *o, const char *key, const char *def, const char *const *names, const int *vals,
                      int *out, const char *where) {
    const char *v;
    FT_TRY(ft__json_get_str(o, key, def, &v, where));
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0) { *out = vals[i]; return FT_OK; }
    char list[256] = "";
    for (int i = 0; names[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return ft_error(FT_ERR_FORMAT, "%s: \"%s\": unknown value \"%s\" (%s)", where, key, v, list);
}

static int parse(ft_hpo_spec *s, const cJSON *root, const char *where) {
    static const char *const known[] = {"name", "strategy", "direction", "seed", "budget", "params", "bayes", "tpe",
                                        "scheduler", "objective_cmd", "train", "metric", "cleanup", NULL};
    if (!cJSON_IsObject(root)) return ft_error(FT_ERR_FORMAT, "%s: a sweep config must be a JSON object", where);
    FT_TRY(check_keys(root, known, where, "the sweep config"));
    const char *name;
    FT_TRY(ft__json_get_str(root, "name", "sweep", &name, where));
    if (!*name || strlen(name) >= sizeof s->name) return ft_error(FT_ERR_FORMAT, "%s: \"name\" must have 1 to %zu bytes", where, sizeof s->name - 1);
    strcpy(s->name, name);
    static const char *const strat_n[] = {"grid", "random", "bayes", "tpe", NULL};
    static const int strat_v[] = {FT_HPO_GRID, FT_HPO_RANDOM, FT_HPO_BAYES, FT_HPO_TPE};
    int v;
    FT_TRY(parse_enum(root, "strategy", "random", strat_n, strat_v, &v, where));
    s->strategy = (ft_hpo_strategy)v;
    static const char *const dir_n[] = {"minimize", "maximize", "min", "max", NULL};
    static const int dir_v[] = {0, 1, 0, 1};
    FT_TRY(parse_enum(root, "direction", "minimize", dir_n, dir_v, &s->maximize, where));
    long long seed;
    FT_TRY(ft__json_get_i64_in(root, "seed", 0, 0, (1LL << 53), &seed, where));
    s->seed = (uint64_t)seed;

    const cJSON *b;
    FT_TRY(section(root, "budget", &b, where));
    if (b) {
        static const char *const kb[] = {"trials", "seconds", NULL};
        FT_TRY(check_keys(b, kb, where, "budget"));
        FT_TRY(ft__json_get_int_in(b, "trials", 0, 0, 10000000, &s->max_trials, where));
        FT_TRY(ft__json_get_real_in(b, "seconds", 0, 0, 1e9, FT__JSON_CLOSED, &s->max_seconds, where));
    }

    const cJSON *ps;
    FT_TRY(section(root, "params", &ps, where));
    int np = ps ? cJSON_GetArraySize(ps) : 0;
    if (np < 1) return ft_error(FT_ERR_FORMAT, "%s: \"params\" must be an object with at least one parameter", where);
    s->params = calloc((size_t)np, sizeof *s->params);
    if (!s->params) return ft_error(FT_ERR_NOMEM, "%s: out of memory", where);
    for (const cJSON *c = ps->child; c; c = c->next) {
        ft_hpo_param *p = &s->params[s->n_params++];
        if (!*c->string || strlen(c->string) >= sizeof p->name || strspn(c->string, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(c->string))
            return ft_error(FT_ERR_FORMAT, "%s: parameter name \"%s\" must be 1 to 63 letters, digits, '_', '-' or '.'", where, c->string);
        strcpy(p->name, c->string);
        FT_TRY(parse_param(p, c, where));
    }

    const cJSON *bo;
    FT_TRY(section(root, "bayes", &bo, where));
    static const char *const kbo[] = {"acquisition", "n_initial", "xi", "kappa", "candidates", NULL};
    if (bo) FT_TRY(check_keys(bo, kbo, where, "bayes"));
    static const char *const acq_n[] = {"ei", "pi", "ucb", NULL};
    static const int acq_v[] = {FT_HPO_EI, FT_HPO_PI, FT_HPO_UCB};
    FT_TRY(parse_enum(bo, "acquisition", "ei", acq_n, acq_v, &v, where));
    s->acq = (ft_hpo_acq)v;
    FT_TRY(ft__json_get_int_in(bo, "n_initial", 5, 1, 100000, &s->n_initial, where));
    FT_TRY(ft__json_get_real_in(bo, "xi", 0.0, 0, 100, FT__JSON_CLOSED, &s->xi, where));
    FT_TRY(ft__json_get_real_in(bo, "kappa", 2.0, 0, 100, FT__JSON_CLOSED, &s->kappa, where));
    FT_TRY(ft__json_get_int_in(bo, "candidates", 2000, 10, 10000000, &s->n_candidates, where));

    const cJSON *tp;
    FT_TRY(section(root, "tpe", &tp, where));
    static const char *const ktp[] = {"n_startup_trials", "n_ei_candidates", "prior_weight", NULL};
    if (tp) FT_TRY(check_keys(tp, ktp, where, "tpe"));
    FT_TRY(ft__json_get_int_in(tp, "n_startup_trials", 10, 0, 100000, &s->tpe_startup, where));
    FT_TRY(ft__json_get_int_in(tp, "n_ei_candidates", 24, 1, 1000000, &s->tpe_candidates, where));
    FT_TRY(ft__json_get_real_in(tp, "prior_weight", 1.0, 0, 1e6, FT__JSON_CLOSED, &s->tpe_prior_weight, where));

    const cJSON *sc;
    FT_TRY(section(root, "scheduler", &sc, where));
    static const char *const ksc[] = {"type", "fidelity", "min_resource", "max_resource", "eta", "configs", "continue", NULL};
    if (sc) FT_TRY(check_keys(sc, ksc, where, "scheduler"));
    static const char *const sc_n[] = {"none", "successive-halving", "sh", "hyperband", "asha", NULL};
    static const int sc_v[] = {FT_HPO_SCHED_NONE, FT_HPO_SCHED_SH, FT_HPO_SCHED_SH, FT_HPO_SCHED_HYPERBAND, FT_HPO_SCHED_ASHA};
    FT_TRY(parse_enum(sc, "type", "none", sc_n, sc_v, &v, where));
    s->sched = (ft_hpo_scheduler)v;
    const char *fid;
    FT_TRY(ft__json_get_str(sc, "fidelity", "steps", &fid, where));
    if (strlen(fid) >= sizeof s->fidelity) return ft_error(FT_ERR_FORMAT, "%s: scheduler.fidelity is too long", where);
    strcpy(s->fidelity, fid);
    FT_TRY(ft__json_get_real_in(sc, "max_resource", 0, 0, 1e15, FT__JSON_CLOSED, &s->max_resource, where));
    FT_TRY(ft__json_get_real_in(sc, "min_resource", s->max_resource > 0 ? 1 : 0, 0, 1e15, FT__JSON_CLOSED, &s->min_resource, where));
    FT_TRY(ft__json_get_real_in(sc, "eta", 3, 2, 1000, FT__JSON_CLOSED, &s->eta, where));
    FT_TRY(ft__json_get_int_in(sc, "configs", 0, 0, 10000000, &s->sh_configs, where));
    if (s->sched != FT_HPO_SCHED_NONE) {
        if (!(s->min_resource > 0) || !(s->max_resource >= s->min_resource))
            return ft_error(FT_ERR_FORMAT, "%s: scheduler needs 0 < min_resource <= max_resource (got %g, %g)", where, s->min_resource, s->max_resource);
        if (ft__hpo_smax(s->max_resource / s->min_resource, s->eta) > 30)
            return ft_error(FT_ERR_FORMAT, "%s: scheduler: more than 30 rungs (max_resource / min_resource too large for eta)", where);
        if (s->strategy == FT_HPO_GRID)
            return ft_error(FT_ERR_UNSUPPORTED, "%s: the grid strategy runs without a scheduler (use random, bayes or tpe with %s)", where,
                            sc_n[s->sched == FT_HPO_SCHED_SH ? 1 : s->sched == FT_HPO_SCHED_HYPERBAND ? 3 : 4]);
        if (s->sched == FT_HPO_SCHED_ASHA && s->max_trials == 0)
            return ft_error(FT_ERR_FORMAT, "%s: asha needs a budget: \"budget\": {\"trials\": N}", where);
    }
    if (s->strategy != FT_HPO_GRID && s->sched == FT_HPO_SCHED_NONE && s->max_trials == 0)
        return ft_error(FT_ERR_FORMAT, "%s: the %s strategy needs a budget: \"budget\": {\"trials\": N}", where, strat_n[s->strategy]);
    if (s->strategy == FT_HPO_GRID && ft_hpo_grid_size(s) < 0)
        return ft_error(FT_ERR_RANGE, "%s: the grid has more than 2^31 points", where);

    const char *cmd;
    FT_TRY(ft__json_get_str(root, "objective_cmd", NULL, &cmd, where));
    if (cmd && !(s->objective_cmd = strdup(cmd))) return ft_error(FT_ERR_NOMEM, "%s: out of memory", where);
    /* trials that run `finetune train` (see runner.c): the fixed options, the metric of its last evaluation */
    const cJSON *tr;
    FT_TRY(section(root, "train", &tr, where));
    if (tr) {
        if (cmd) return ft_error(FT_ERR_FORMAT, "%s: give \"train\" or \"objective_cmd\", not both", where);
        if (!(s->train_json = cJSON_PrintUnformatted(tr))) return ft_error(FT_ERR_NOMEM, "%s: out of memory", where);
        if (s->sched != FT_HPO_SCHED_NONE && strcmp(s->fidelity, "steps") != 0 && strcmp(s->fidelity, "epochs") != 0 &&
            strcmp(s->fidelity, "seq_len") != 0)
            return ft_error(FT_ERR_UNSUPPORTED, "%s: with \"train\", scheduler.fidelity must be steps, epochs or seq_len (got \"%s\")",
                            where, s->fidelity);
    }
    /* scheduler.continue: a promoted configuration goes on from its previous rung's checkpoint (train trials:
     * default for the epochs and steps fidelities); with an objective command it is told FT_PARENT_TRIAL */
    int can_continue = s->sched != FT_HPO_SCHED_NONE && (!strcmp(s->fidelity, "epochs") || !strcmp(s->fidelity, "steps"));
    FT_TRY(ft__json_get_bool(sc, "continue", tr && can_continue, &s->continue_trials, where));
    if (s->continue_trials && s->sched == FT_HPO_SCHED_NONE)
        return ft_error(FT_ERR_FORMAT, "%s: scheduler.continue needs a scheduler (successive-halving, hyperband or asha)", where);
    if (s->continue_trials && tr && !can_continue)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: scheduler.continue: a trial can go on from its checkpoint over the epochs or steps fidelity "
                        "only; a %s fidelity changes what the model trains on, so each rung trains from the start: set \"continue\": false",
                        where, s->fidelity);
    if (s->continue_trials && tr) {   /* --stop-at-epoch / --stop-at-step take whole numbers */
        int smax = ft__hpo_smax(s->max_resource / s->min_resource, s->eta);
        for (int k = 0; k <= smax; k++) {
            double r = s->max_resource * pow(s->eta, -k);
            if (fabs(r - round(r)) > 1e-9 * r)
                return ft_error(FT_ERR_FORMAT, "%s: scheduler.continue: the budget %g of a rung is not a whole number of %s (choose max_resource, "
                                "min_resource and eta so that max_resource / eta^k is whole)", where, r, s->fidelity);
        }
    }
    FT_TRY(ft__json_get_bool(root, "cleanup", 0, &s->cleanup, where));
    const char *metric;
    FT_TRY(ft__json_get_str(root, "metric", "val_loss", &metric, where));
    if (!*metric || strlen(metric) >= sizeof s->metric) return ft_error(FT_ERR_FORMAT, "%s: \"metric\" must have 1 to %zu bytes", where, sizeof s->metric - 1);
    strcpy(s->metric, metric);
    s->json = cJSON_PrintUnformatted(root);
    if (!s->json) return ft_error(FT_ERR_NOMEM, "%s: out of memory", where);
    return FT_OK;
}

int ft_hpo_spec_parse(const char *json_text, const char *where, ft_hpo_spec **out) {
    *out = NULL;
    if (!where) where = "sweep config";
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json_text, &end, 1);
    if (!root) return ft_error(FT_ERR_FORMAT, "%s: invalid JSON near byte %ld", where, end ? (long)(end - json_text) : 0L);
    ft_hpo_spec *s = calloc(1, sizeof *s);
    if (!s) { cJSON_Delete(root); return ft_error(FT_ERR_NOMEM, "%s: out of memory", where); }
    int rc = parse(s, root, where);
    cJSON_Delete(root);
    if (rc < 0) { ft_hpo_spec_free(s); return rc; }
    *out = s;
    return FT_OK;
}

void ft_hpo_spec_free(ft_hpo_spec *s) {
    if (!s) return;
    for (int i = 0; i < s->n_params; i++) {
        for (int j = 0; j < s->params[i].n_choices; j++) free(s->params[i].choices[j]);
        free(s->params[i].choices);
    }
    free(s->params);
    free(s->objective_cmd);
    free(s->train_json);
    free(s->json);
    free(s);
}
