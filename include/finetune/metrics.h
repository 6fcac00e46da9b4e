/* metrics.h — evaluation metrics for classification and NER fine-tuning.
 *
 * What is here
 *   Classification, K classes with labels 0..K-1:
 *     ft_metrics          accumulator: add (y_true, y_pred, probabilities) batch by batch, then
 *                         compute an ft_metrics_report (accuracy; precision / recall / F1 / support
 *                         per class and macro / micro / weighted; confusion matrix; from
 *                         probabilities: ECE, log loss, and for K = 2 ROC-AUC and Brier score).
 *     one-shot functions  ft_metrics_classification (the whole report) and one function per metric.
 *   NER, tag strings in BIO / IOB2 (IOBES also parsed), seqeval's default (conlleval) mode:
 *     ft_ner              accumulator: add sentences, compute entity-level P / R / F1 per type and
 *                         micro / macro / weighted, plus token accuracy.
 *   k-fold:               ft_metrics_mean_std (mean and sample standard deviation, ddof = 1) and
 *                         ft_metrics_kfold_json (every scalar of a set of fold reports).
 *   JSON:                 ft_metrics_report_json, ft_ner_report_json (malloc'd strings).
 *
 * Example (a 3-class classifier evaluated batch by batch)
 *
 *     ft_metrics_params p = ft_metrics_default_params(3);
 *     ft_metrics *m;
 *     FT_TRY(ft_metrics_init(&m, &p));
 *     for (each batch of B rows) {
 *         // probs: [B, 3] softmax output; y_pred NULL means argmax of probs
 *         int rc = ft_metrics_add_f32(m, labels, NULL, probs, B);
 *         if (rc < 0) { ft_metrics_free(m); return rc; }   // ft_last_error() says why
 *     }
 *     ft_metrics_report r;
 *     int rc = ft_metrics_compute(m, &r);
 *     char *json = NULL;
 *     const char *names[3] = {"negative", "neutral", "positive"};
 *     if (rc == FT_OK) rc = ft_metrics_report_json(&json, &r, names);
 *     if (rc == FT_OK) printf("f1_macro %.4f  ece %.4f\n%s\n", r.f1_macro, r.ece, json);
 *     free(json); ft_metrics_report_free(&r); ft_metrics_free(m);
 *
 * Definitions (they reproduce scikit-learn 1.x with zero_division=0; tests/parity/METRICS.md)
 *   C[t][p]      confusion matrix: number of samples with true class t predicted as p
 *                (rows = true, columns = predicted), always K x K, indexed by class id.
 *   label set L  the classes that occur in y_true or in y_pred, ascending (sklearn labels=None;
 *                a class seen only in y_pred is included), or all K classes when
 *                params.all_labels is set (sklearn labels=range(K)). Per-class entries of the
 *                report exist for every class; the averages and the JSON per_class list use L.
 *   per class c  tp = C[c][c], pred = sum_t C[t][c], support = sum_p C[c][p];
 *                precision = tp / pred (0 when pred = 0), recall = tp / support (0 when
 *                support = 0), f1 = 2 tp / (support + pred) (0 when both are 0).
 *   macro        unweighted mean over L.   weighted  mean over L weighted by support.
 *   micro        from tp, pred, support summed over L (equals accuracy when L holds every
 *                class that occurs, which the default L always does).
 *   accuracy     trace(C) / n.
 *   ECE          conf_i = max_k p_ik, yhat_i = argmax_k p_ik (first index on ties; the ECE uses
 *                this argmax, not y_pred). M equal-width bins with edges e_b = b * (1/M), e_M = 1:
 *                bin b holds the i with e_b < conf_i <= e_{b+1} (bin 0 also holds conf = 0).
 *                ECE = sum_b |B_b| / n * |acc(B_b) - conf(B_b)|, acc = mean of [yhat_i == y_i],
 *                conf = mean of conf_i over the bin; empty bins add 0. M = 15 by default.
 *   log loss     -1/n sum_i log(clip(p_{i, y_i}, eps, 1 - eps)), eps = DBL_EPSILON (sklearn's
 *                log_loss on float64 input with labels=range(K); rows are not renormalised).
 *   ROC-AUC      K = 2, score s_i = p_i1 (or any score for ft_metrics_roc_auc): area under the
 *                ROC curve by the trapezoid rule, one ROC point per distinct score, so a tie
 *                between a positive and a negative counts 1/2 (sklearn roc_auc_score; equals the
 *                Mann-Whitney U / (P N)). NaN when y_true holds only one class (sklearn 1.9
 *                returns nan with a warning there).
 *   Brier        K = 2: 1/n sum_i (p_i1 - [y_i == 1])^2 (sklearn brier_score_loss, pos_label 1).
 *
 * Input checks (every function; messages name the batch row / sentence and the value)
 *   labels outside 0..K-1                          FT_ERR_RANGE
 *   probabilities NaN / inf / outside [0, 1], or a row whose sum is off 1 by more than
 *   FT_METRICS_PROB_SUM_TOL (sklearn only warns; logits passed by mistake end here)  FT_ERR_INVALID
 *   NER sentences with different true / predicted lengths                            FT_ERR_SHAPE
 *   other bad arguments (NULL, K < 2, bins < 1, no samples)                          FT_ERR_INVALID
 *   An add that fails leaves its accumulator exactly as it was.
 *
 * Threads: no global state; an accumulator must not be used from two threads at once. */
#ifndef FINETUNE_METRICS_H
#define FINETUNE_METRICS_H
#include <stddef.h>
#include <stdint.h>

#define FT_METRICS_DEFAULT_ECE_BINS 15
#define FT_METRICS_PROB_SUM_TOL 1e-4

/* ============================== classification ============================== */

typedef struct ft_metrics_params {
    int num_classes; /* K >= 2 */
    int ece_bins;    /* M >= 1, default FT_METRICS_DEFAULT_ECE_BINS */
    int all_labels;  /* 0 (default): average over the classes that occur (sklearn labels=None);
                        1: over all K classes (sklearn labels=range(K)) */
} ft_metrics_params;

ft_metrics_params ft_metrics_default_params(int num_classes);

typedef struct ft_class_scores {
    double  precision, recall, f1;
    int64_t support;   /* true samples of the class */
    int64_t predicted; /* samples predicted as the class */
} ft_class_scores;

typedef struct ft_calib_bin {
    int64_t count;     /* samples whose confidence falls in the bin */
    double  accuracy;  /* mean of [argmax == y_true] in the bin (0 when empty) */
    double  confidence;/* mean max probability in the bin (0 when empty) */
} ft_calib_bin;

/* Filled by ft_metrics_compute / ft_metrics_classification; the arrays are owned by the report
 * and released by ft_metrics_report_free. */
typedef struct ft_metrics_report {
    int     num_classes;            /* K */
    int64_t n;                      /* samples */
    double  accuracy;
    double  precision_macro, recall_macro, f1_macro;
    double  precision_micro, recall_micro, f1_micro;
    double  precision_weighted, recall_weighted, f1_weighted;
    int     num_labels;             /* |L| */
    int    *labels;                 /* [num_labels] class ids of L, ascending */
    ft_class_scores *per_class;     /* [K] by class id (classes outside L: all zero) */
    int64_t *confusion;             /* [K*K] row-major, confusion[t*K + p] */
    int     has_probs;              /* 1 when probabilities were given */
    double  ece;                    /* NaN without probabilities */
    double  log_loss;               /* NaN without probabilities */
    double  roc_auc;                /* K = 2 with probabilities; NaN otherwise / one true class */
    double  brier;                  /* K = 2 with probabilities; NaN otherwise */
    int     ece_bins;               /* M */
    ft_calib_bin *calib;            /* [M] reliability diagram; NULL without probabilities */
} ft_metrics_report;

void ft_metrics_report_free(ft_metrics_report *r); /* frees the arrays, zeroes *r; NULL-safe */

typedef struct ft_metrics ft_metrics; /* accumulator (opaque) */

/* Creates an empty accumulator. *out is freed by ft_metrics_free. */
int  ft_metrics_init(ft_metrics **out, const ft_metrics_params *p);
void ft_metrics_free(ft_metrics *m);  /* NULL-safe */
void ft_metrics_reset(ft_metrics *m); /* back to no samples, same params */

/* Adds n samples. y_true [n]: classes. y_pred [n] or NULL: predicted classes; NULL takes the
 * argmax of probs. probs [n, K] row-major or NULL: class probabilities (softmax output). Either
 * every non-empty batch has probs or none has (mixing is FT_ERR_INVALID). The _f32 form takes
 * float probabilities (converted to double; checks and sums are done in double). */
int ft_metrics_add(ft_metrics *m, const int32_t *y_true, const int32_t *y_pred,
                   const double *probs, int64_t n);
int ft_metrics_add_f32(ft_metrics *m, const int32_t *y_true, const int32_t *y_pred,
                       const float *probs, int64_t n);
int64_t ft_metrics_count(const ft_metrics *m); /* samples added so far */

/* Computes the report from everything added (FT_ERR_INVALID when nothing was). The accumulator
 * is unchanged and can take more batches. On failure *out is zeroed. */
int ft_metrics_compute(const ft_metrics *m, ft_metrics_report *out);

/* One shot: init + add + compute. */
int ft_metrics_classification(ft_metrics_report *out, const ft_metrics_params *p,
                              const int32_t *y_true, const int32_t *y_pred,
                              const double *probs, int64_t n);

/* ---- single metrics on whole arrays (same definitions as the report) ---- */
int ft_metrics_accuracy(double *out, const int32_t *y_true, const int32_t *y_pred, int64_t n,
                        int num_classes);
/* cm [K*K] (overwritten), rows = true, columns = predicted. */
int ft_metrics_confusion_matrix(int64_t *cm, const int32_t *y_true, const int32_t *y_pred,
                                int64_t n, int num_classes);
/* probs [n, K]. */
int ft_metrics_ece(double *out, const int32_t *y_true, const double *probs, int64_t n,
                   int num_classes, int bins);
int ft_metrics_log_loss(double *out, const int32_t *y_true, const double *probs, int64_t n,
                        int num_classes);
/* y_true [n] in {0, 1}; score [n]: any real (NaN refused), higher = more positive.
 * *out = NaN when y_true has only one class (not an error). */
int ft_metrics_roc_auc(double *out, const int32_t *y_true, const double *score, int64_t n);
/* y_true [n] in {0, 1}; p1 [n] in [0, 1]: probability of class 1. */
int ft_metrics_brier(double *out, const int32_t *y_true, const double *p1, int64_t n);
/* The ECE bin (0..bins-1) of a confidence in [0, 1], as defined above. */
int ft_metrics_ece_bin(double conf, int bins);

/* ================================== k-fold ================================== */

/* Mean and sample standard deviation (ddof = 1, as numpy.std(ddof=1)) of values [n], n >= 1.
 * *std = NaN when n = 1. NaN values are FT_ERR_INVALID. */
int ft_metrics_mean_std(double *mean, double *std, const double *values, int64_t n);

/* {"folds": n, "accuracy": {"mean", "std", "values": [...]}, ...} for every scalar of the
 * report (accuracy, the nine averages, ece, log_loss, roc_auc, brier; a metric that is NaN in
 * any fold, e.g. ece without probabilities, is written as null). *out: malloc'd, caller frees. */
int ft_metrics_kfold_json(char **out, const ft_metrics_report *folds, int nfolds);

/* =================================== JSON =================================== */

/* Writes the report as one JSON object (malloc'd, caller frees *out):
 *   num_samples, num_classes, accuracy, precision_macro, recall_macro, f1_macro,
 *   precision_micro, recall_micro, f1_micro, precision_weighted, recall_weighted, f1_weighted,
 *   ece (null without probabilities), log_loss (only with probabilities),
 *   roc_auc and brier (only when K = 2; null when undefined),
 *   per_class: [{label, precision, recall, f1, support}] for the classes of L,
 *   confusion_matrix: K arrays of K integers (rows = true), labels: the K class labels.
 * label_names [K] or NULL: "label" is the name, or the class id (a number) when NULL.
 * Numbers are written with up to 17 digits and read back to the same double; NaN / inf as null. */
int ft_metrics_report_json(char **out, const ft_metrics_report *r, const char *const *label_names);

/* ==================================== NER ==================================== */
/* Entities follow seqeval 1.2 get_entities (default mode, prefix tags), exactly:
 *   Tag parsing: tag = first character of the string; type = the text after the first '-'
 *   that follows that character, or all of the text after it when there is no '-', or "_" when
 *   that is empty. "B-PER" -> (B, PER), "O" -> (O, _), "I" -> (I, _), "B-A-B" -> (B, A-B).
 *   Stream: sentences are joined with one "O" after each (seqeval flattens a list of sentences
 *   this way); positions count in that stream. Walking it with prev = (tag, type) of the
 *   previous position, initially (O, "") — the empty type, which differs from "_":
 *     an entity ends before i  if prev tag is E or S; or prev tag is B or I and tag is B, S or O;
 *                              or prev tag is not O or '.' and prev type != type;
 *     an entity starts at i    if tag is B or S; or tag is I or E and prev tag is E, S or O;
 *                              or tag is not O or '.' and type != prev type.
 *   On an end the entity (prev type, begin, i - 1) is recorded; on a start begin = i (the end
 *   test comes first). begin is not reset otherwise (seqeval's quirk for odd tags, kept).
 *   In BIO / IOB2 this means: an entity is a maximal run B-X I-X* or I-X I-X*; an I-X after O,
 *   after an entity of another type, or at a sentence start starts a new entity (I-X I-X = one
 *   entity); B-X I-Y gives X then Y; B-X B-X gives two; the "O" after each sentence closes an
 *   entity that runs to the sentence end, so entities never span sentences.
 * Scores: per type x, T_x / P_x = true / predicted entities (type, start, end); correct =
 *   |T_x ∩ P_x| (exact span and type); types = those in T or P, sorted by bytes (Python's code
 *   point order); precision = correct/|P_x|, recall = correct/|T_x| (0 on 0/0), f1 = 2pr/(p+r)
 *   (0 when p + r = 0); micro from the summed counts; macro = mean over types; weighted by |T_x|
 *   (0 when there are no true entities). With no entity at all every score is 0 (seqeval returns
 *   nan for the macro average there). token accuracy = tokens whose true and predicted tag
 *   strings are equal / tokens (seqeval accuracy_score; the joining "O"s are not counted). */

typedef struct ft_ner_entity {
    const char *type;     /* type_len bytes, not NUL-terminated; points into a caller's tag
                             string (or a static "_"), valid while those strings are */
    size_t      type_len;
    int64_t     start, end; /* inclusive positions in the sequence */
} ft_ner_entity;

/* Entities of one tag sequence tags [len] (seqeval get_entities on a flat list), in order of
 * their end. *out: malloc'd array of *count entities (NULL when none); caller frees. */
int ft_ner_entities(ft_ner_entity **out, int64_t *count, const char *const *tags, int64_t len);

typedef struct ft_ner_type_scores {
    char   *type;      /* NUL-terminated, owned by the report */
    double  precision, recall, f1;
    int64_t support;   /* true entities of this type */
    int64_t predicted; /* predicted entities of this type */
    int64_t correct;   /* predicted entities that match a true one exactly */
} ft_ner_type_scores;

typedef struct ft_ner_report {
    int     num_types;
    ft_ner_type_scores *per_type; /* [num_types], sorted by type */
    double  precision_micro, recall_micro, f1_micro;
    double  precision_macro, recall_macro, f1_macro;
    double  precision_weighted, recall_weighted, f1_weighted;
    int64_t num_true, num_pred, num_correct; /* entities */
    int64_t num_sentences, num_tokens, num_tokens_correct;
    double  token_accuracy;                  /* 0 when there are no tokens */
} ft_ner_report;

void ft_ner_report_free(ft_ner_report *r); /* NULL-safe, zeroes *r */

typedef struct ft_ner ft_ner; /* accumulator (opaque) */
int  ft_ner_init(ft_ner **out);
void ft_ner_free(ft_ner *a); /* NULL-safe */
void ft_ner_reset(ft_ner *a);

/* Adds one sentence: tags_true [len_true], tags_pred [len_pred], NUL-terminated non-empty
 * strings (only read during the call). len_true != len_pred is FT_ERR_SHAPE. */
int ft_ner_add(ft_ner *a, const char *const *tags_true, int64_t len_true,
               const char *const *tags_pred, int64_t len_pred);

/* Adds one sentence of tag ids into names [num_names] (e.g. the model's id2label). Positions
 * whose true id is negative (e.g. -100 on sub-word pieces, transformers' convention) are
 * dropped from both sequences first; any other id outside 0..num_names-1 is FT_ERR_RANGE. */
int ft_ner_add_ids(ft_ner *a, const char *const *names, int num_names,
                   const int32_t *ids_true, const int32_t *ids_pred, int64_t len);

/* Computes the report from every sentence added; the accumulator is unchanged. An accumulator
 * with no sentences gives an all-zero report. On failure *out is zeroed. */
int ft_ner_compute(const ft_ner *a, ft_ner_report *out);

/* {"precision_micro", ..., "f1_weighted", "accuracy" (token), "num_true", "num_pred",
 *  "num_correct", "per_type": [{type, precision, recall, f1, support}]}; malloc'd, caller frees. */
int ft_ner_report_json(char **out, const ft_ner_report *r);

#endif
