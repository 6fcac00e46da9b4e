/* continual.h — continual learning: keeping an already fine-tuned model close to what it knew while it
 * learns new data (`finetune train --l2-sp λ`, `--replay FILE --replay-ratio R`, `--eval-old FILE`, `--stream`).
 *
 * L2-SP (Li, Grandvalet & Davoine 2018, "Explicit inductive bias for transfer learning with convolutional
 * networks"): the training objective gets the penalty
 *
 *     Ω(θ) = λ/2 · Σ_i ‖θ_i − θ0_i‖²        over the trainable tensors, θ0 = their values when training starts
 *
 * and its exact gradient λ(θ − θ0) is added to the parameter gradients once per optimizer step, after the
 * data gradient and before clipping and the optimizer (so it adds to the loss being minimised, not a decay
 * inside the optimizer). θ0 is copied from the model as loaded (a resumed run loads the starting model
 * again before the checkpoint, so θ0 is the same).
 *
 *   ft_l2sp sp;
 *   FT_TRY(ft_l2sp_init(&sp, params, n, 0.01f));        // copies the trainable tensors now
 *   ...  zero_grad, forward, backward ...
 *   double omega = ft_l2sp_apply(&sp, params, n, 1);   // Ω(θ); grads += λ(θ − θ0)
 *   ft_l2sp_free(&sp);
 *
 * Ownership: the snapshot is the ft_l2sp's (one allocation); params are borrowed and must be the same
 * array (same order, shapes and trainable flags) at every call. Not thread-safe. */
#ifndef FINETUNE_CONTINUAL_H
#define FINETUNE_CONTINUAL_H
#include "finetune/model.h"

typedef struct ft_l2sp {
    float lambda;
    int n;                 /* tensors */
    float **theta0;        /* [n]: the starting values of trainable tensor i, NULL for a frozen one */
    float *store;          /* the one allocation theta0 points into */
} ft_l2sp;

/* Copies the trainable f32 tensors of params[0..n) (quantized or frozen ones are left out). lambda >= 0. */
int    ft_l2sp_init(ft_l2sp *s, const ft_param *params, int n, float lambda);
/* Ω(θ) = λ/2 Σ‖θ − θ0‖² (double accumulation); add_grad: params[i].grad += λ(θ − θ0) for every tensor with a
 * gradient buffer. */
double ft_l2sp_apply(const ft_l2sp *s, ft_param *params, int n, int add_grad);
void   ft_l2sp_free(ft_l2sp *s);
#endif
