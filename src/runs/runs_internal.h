/* runs_internal.h — what the files of src/runs share: the handle and SQL helpers (internal). */
#ifndef FT_RUNS_INTERNAL_H
#define FT_RUNS_INTERNAL_H
#include <sqlite3.h>

#include "finetune/runs.h"

struct ft_runs_db {
    sqlite3 *db;
    char     path[4096];
};

int    ft__runs_fail(ft_runs_db *db, const char *what);  /* FT_ERR_IO with sqlite's message */
int    ft__runs_exec(ft_runs_db *db, const char *sql);
/* ft_runs_open with a busy timeout of busy_ms and synchronous=mode ("FULL", "NORMAL") */
int    ft__runs_open_ex(const char *path, int busy_ms, const char *sync, ft_runs_db **out);
#endif
