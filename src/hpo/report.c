/* report.c — the sweep report (placeholder, filled below). */
#include "hpo_internal.h"
#include "finetune/status.h"
int ft_hpo_report_write(const char *path, const ft_hpo_spec *s, const ft_hpo_trial *t, int n) { (void)path; (void)s; (void)t; (void)n; return 0; }
