/* report.h — the run report: RUN_DIR/report.html, one self-contained page (inline SVG, no
 * scripts, no network) with the training and validation loss curves, the learning rate, the
 * evaluations, the sample generations and the configuration, read from RUN_DIR/metrics.jsonl
 * and RUN_DIR/config.json. */
#ifndef FINETUNE_REPORT_H
#define FINETUNE_REPORT_H

int ft_report_write(const char *run_dir);
#endif
