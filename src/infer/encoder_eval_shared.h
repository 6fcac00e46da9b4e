/* encoder_eval_shared.h — ft_enc_evaluate with the batches shared among the ranks of a data-parallel run
 * (internal; the trainer's evaluation under mpirun, src/train/dist.h).
 *
 * Rank `rank` of `world` computes a contiguous run of the evaluation's batches (sizes differing by at most
 * one, the first ranks taking one more); gather(ctx, rows, n_rows, width) must then give every rank every
 * batch's row of `width` doubles (each rank filled its own rows; ft__dist_gather_rows does this). Every rank
 * adds the rows into the metrics in batch order, so *out is the same, bit for bit, as one process's
 * ft_enc_evaluate. world 1 (gather unused) is ft_enc_evaluate. Every rank must call it together. */
#ifndef FT_INFER_ENCODER_EVAL_SHARED_H
#define FT_INFER_ENCODER_EVAL_SHARED_H
#include "finetune/encoder_task.h"

int ft__enc_evaluate_shared(ft_enc_eval *out, ft_encoder_model *m, const ft_tokenizer *tok, const ft_enc_data *d,
                            const int64_t *idx, int64_t n, int B, float mlm_probability, uint64_t seed, int rank, int world,
                            int (*gather)(void *ctx, double *rows, int64_t n_rows, int width), void *gather_ctx);
#endif
