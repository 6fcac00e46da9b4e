/* store.h — the sweep tables in SQLite (store.c); internal to src/hpo. */
#ifndef FT_HPO_STORE_H
#define FT_HPO_STORE_H
#include "hpo_internal.h"


/* Takes sweep `name` for this process (BEGIN IMMEDIATE .. COMMIT): creates it with config (when create and
 * it does not exist), or checks that the stored config equals config up to its "budget" (config NULL: any;
 * the stored config becomes config) and that no other live process owns it. *jobs <= 0 takes the stored value (1 for a new sweep); otherwise it is stored.
 * *stored_config (when not NULL) receives the stored config (caller frees). */
int ft__hpo_store_take(ft_hpo_db *db, const char *name, const char *config, int create, int *jobs,
                       long long *sweep_id, char **stored_config);
/* Gives the sweep up (owner cleared), status "finished" or "stopped". */
int ft__hpo_store_release(ft_hpo_db *db, long long sweep_id, const char *status);
/* Records a decided trial (status, started as in t). */
int ft__hpo_store_insert(ft_hpo_db *db, long long sweep_id, const ft_hpo_spec *s, const ft_hpo_trial *t);
/* Records a trial's status, value, times and output tail (may be NULL). */
int ft__hpo_store_update(ft_hpo_db *db, long long sweep_id, const ft_hpo_trial *t, const char *output);
/* Points trial idx, when it has no run yet, at its run in the run store: the newest row of table `runs`
 * (runs.h, same file) whose run_dir is run_dir (made absolute). Nothing happens when the file has no run
 * store or no such run. */
int ft__hpo_store_link_run(ft_hpo_db *db, long long sweep_id, int idx, const char *run_dir);
/* Every trial of the sweep in idx order (caller frees each x and the array). */
int ft__hpo_store_trials(ft_hpo_db *db, long long sweep_id, int n_params, ft_hpo_trial **out, int *n);
/* The id and config (caller frees) of sweep `name`, or of the newest sweep when name is NULL. */
int ft__hpo_store_find(ft_hpo_db *db, const char *name, long long *sweep_id, char **config);
#endif
