/* fairness.h — group fairness of a classifier's predictions: per-group accuracy, selection rate, true
 * and false positive rates, and the gaps between groups (demographic parity, equal opportunity,
 * equalized odds, disparate impact), with the definitions of fairlearn 0.x (MetricFrame and
 * fairlearn.metrics.*), method="between_groups". Pure functions over label arrays: no model needed.
 *
 * Example (a binary classifier, 3 groups, label 1 is the favourable outcome)
 *
 *     int32_t y[8]  = {1, 0, 1, 1, 0, 0, 1, 0};   // true labels
 *     int32_t p[8]  = {1, 0, 0, 1, 1, 0, 1, 1};   // predicted labels
 *     int32_t g[8]  = {0, 0, 1, 1, 2, 2, 2, 0};   // group id of each example
 *     ft_fairness_report r;
 *     if (ft_fairness_compute(&r, y, p, g, 8, 1) == FT_OK) {
 *         printf("DP difference %.3f  EO difference %.3f\n", r.dp_difference, r.eqodds_difference);
 *         char *json;
 *         const char *names[3] = {"a", "b", "c"};
 *         if (ft_fairness_report_json(&json, &r, names, 3, "1") == FT_OK) { puts(json); free(json); }
 *         ft_fairness_report_free(&r);
 *     }
 *
 * Definitions (pos = the positive label; "positive" below means y == pos, "selected" means p == pos;
 * multiclass labels are taken one-vs-rest against pos, except accuracy, which compares the labels):
 *   count           examples of the group
 *   accuracy        share with p == y                          (sklearn accuracy_score)
 *   selection_rate  share selected                             (fairlearn selection_rate)
 *   tpr             selected positives / positives; 0 when the group has no positive
 *   fpr             selected negatives / negatives; 0 when the group has no negative
 *                   (fairlearn's true/false_positive_rate: sklearn confusion_matrix(normalize="true"),
 *                   whose 0/0 rows are set to 0 — not NaN)
 * Gaps over the groups that have at least one example ("between_groups"):
 *   dp_difference       max - min selection rate               (demographic_parity_difference)
 *   dp_ratio            min / max selection rate               (demographic_parity_ratio)
 *   disparate_impact    = dp_ratio (the "80% rule" ratio)
 *   eopp_difference     max - min tpr                          (equal_opportunity_difference)
 *   eopp_ratio          min / max tpr                          (equal_opportunity_ratio)
 *   eqodds_difference   max(tpr difference, fpr difference)    (equalized_odds_difference, agg="worst_case")
 *   eqodds_ratio        min(tpr ratio, fpr ratio)              (equalized_odds_ratio, agg="worst_case")
 *   accuracy_difference max - min accuracy                     (MetricFrame(accuracy_score).difference())
 * A ratio whose max is 0 is NaN (0/0, as pandas gives); eqodds_ratio then follows Python's min() over
 * [tpr_ratio, fpr_ratio]: NaN when tpr_ratio is NaN, tpr_ratio when only fpr_ratio is NaN. With one
 * group every difference is 0 and every ratio 1 (or NaN when the rate is 0).
 * `overall` holds the same per-group quantities over all examples (MetricFrame.overall).
 *
 * Ownership: the report owns `groups`; ft_fairness_report_free releases it. Inputs are only read during
 * the call. Thread safety: no shared state; reports are independent. */
#ifndef FINETUNE_FAIRNESS_H
#define FINETUNE_FAIRNESS_H
#include <stdint.h>

typedef struct ft_fairness_group {
    int32_t group;          /* the group id (index into the caller's names) */
    int64_t count;          /* examples */
    int64_t positives;      /* y == pos */
    int64_t selected;       /* p == pos */
    int64_t true_pos;       /* y == pos and p == pos */
    int64_t false_pos;      /* y != pos and p == pos */
    double  accuracy, selection_rate, tpr, fpr;
} ft_fairness_group;

typedef struct ft_fairness_report {
    int32_t pos_label;
    int     n_groups;              /* groups with at least one example */
    ft_fairness_group *groups;     /* [n_groups], ascending group id */
    ft_fairness_group overall;     /* over every example (group = -1) */
    double dp_difference, dp_ratio, disparate_impact;
    double eopp_difference, eopp_ratio;
    double eqodds_difference, eqodds_ratio;
    double accuracy_difference;
} ft_fairness_report;

/* y_true [n], y_pred [n]: labels (any int32; compared with pos_label for the rates); group [n]: group ids
 * 0 .. 2^20-1 (a negative id or a larger one is FT_ERR_RANGE naming the index). n = 0 or NULL arrays are
 * FT_ERR_INVALID. On failure *out is zeroed. */
int  ft_fairness_compute(ft_fairness_report *out, const int32_t *y_true, const int32_t *y_pred, const int32_t *group,
                         int64_t n, int32_t pos_label);
void ft_fairness_report_free(ft_fairness_report *r);   /* NULL-safe, zeroes *r */

/* One JSON object (malloc'd, caller frees *out):
 *   {"positive_label": name, "groups": [{"group", "count", "positives", "accuracy", "selection_rate", "tpr", "fpr"}],
 *    "overall": {...}, "demographic_parity_difference", "demographic_parity_ratio", "disparate_impact_ratio",
 *    "equal_opportunity_difference", "equal_opportunity_ratio", "equalized_odds_difference",
 *    "equalized_odds_ratio", "accuracy_difference"}
 * group_names [n_names] (may be NULL): "group" is names[id] when id < n_names, else the id as a string.
 * pos_name may be NULL (the id is written). NaN is written as null. */
int  ft_fairness_report_json(char **out, const ft_fairness_report *r, const char *const *group_names, int n_names,
                             const char *pos_name);
#endif
