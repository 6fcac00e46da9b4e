/* explain_internal.h — the explainer (explain.h) shared by src/infer/explain_*.c (not a public header). */
#ifndef FT_INFER_EXPLAIN_INTERNAL_H
#define FT_INFER_EXPLAIN_INTERNAL_H
#include <stdint.h>
#include "finetune/explain.h"

struct ft_explainer {
    struct ft_encoder_model *enc;   /* one of enc / dec */
    struct ft_model *dec;
    int T;                          /* tokens of the input */
    int *ids, *types;               /* [T] (types: encoders) */
    int *feature;                   /* [T]: feature index or -1 */
    int n_features;                 /* n */
    int mask_id;
    int n_text;                     /* decoders: tokens before the continuation */
    int target;                     /* classifiers: class explained; -1 decoders / regressors */
    ft_explain_output output;
    int K;                          /* encoders: logit columns */
    float *logits0;                 /* [K] logits of the unmasked input */
    double f_input;
    int batch_rows;                 /* rows per forward */
    int *bids, *btypes, *bmask;     /* [batch_rows * T] a batch being built */
    int *btargets;                  /* decoders: [batch_rows * T] */
    int64_t evaluations;
};

/* f of one encoder output row of logits [K] as the explainer's output asks (prob / logit / regression) */
double ft__explain_f_of_logits(const ft_explainer *e, const float *logits);
#endif
