/* checkpoint.h — training checkpoints, written atomically and resumable bit-exactly.
 * A checkpoint is a directory RUN/checkpoints/step-NNNNNNNN/ holding
 *   the weights                       written by the task (ft_ckpt_io.save): model.safetensors + config.json
 *                                     (f32, exact); for LoRA runs adapter_config.json + adapter_model.safetensors
 *                                     instead (the base stays frozen where it is)
 *   optimizer.bin                     the optimizer moments and step count
 *   state.json                        everything else the trainer needs (written by the caller)
 *   manifest.json                     written last: the step, and the size and CRC-32C of every other file
 *                                     {"format": "finetune-checkpoint-1", "step": N,
 *                                      "files": [{"name": "optimizer.bin", "bytes": B, "crc32c": "1a2b3c4d"}, ...]}
 * It is first written as step-NNNNNNNN.tmp (every file fsync'ed), then renamed into place and the
 * parent directory fsync'ed: a crash leaves either the old set of checkpoints or the new one. A file that
 * changes afterwards (a flipped bit on disk, a truncated copy, an edit) fails ft_ckpt_verify, and the trainer
 * then resumes from the newest checkpoint that passes (train.h). */
#ifndef FINETUNE_CHECKPOINT_H
#define FINETUNE_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/optim.h"

/* Path of the newest complete checkpoint into path (FT_ERR_NOT_FOUND if none). */
int ft_ckpt_latest(const char *run_dir, char *path, size_t cap);
/* The steps of run_dir's checkpoints (RUN/checkpoints/step-N), ascending, into steps[cap]; the count. */
int ft_ckpt_list(const char *run_dir, int64_t *steps, int cap);
/* Checks a checkpoint directory against its manifest.json: every file listed with its size and CRC-32C,
 * every file of the directory listed. FT_OK; FT_ERR_FORMAT naming the first file that differs ("has CRC-32C
 * 9c1e0f3a, the manifest says 5d2e7b10"), is missing or is not listed; FT_ERR_NOT_FOUND when there is no
 * manifest (a checkpoint of an older version). Reads every byte once. */
int ft_ckpt_verify(const char *ckpt_dir);
/* What is checkpointed, for any trainable thing: save writes its weights into a directory, load reads them back. */
typedef struct ft_ckpt_io {
    int (*save)(void *ctx, const char *dir);
    int (*load)(void *ctx, const char *dir);
    void *ctx;
} ft_ckpt_io;
/* Saves a checkpoint for `step` (weights through io, optimizer state, state_json), then removes all
 * but the newest `keep` checkpoints. */
int ft_ckpt_save_io(const char *run_dir, int64_t step, const ft_ckpt_io *io, ft_optimizer *o, const char *state_json, int keep);
/* Restores weights and optimizer state; *state_json is malloc'd (caller frees). */
int ft_ckpt_load_io(const char *ckpt_dir, const ft_ckpt_io *io, ft_optimizer *o, char **state_json);
/* Copies a directory's regular files (used for best/ and final/), atomically per file. */
int ft_copy_dir_files(const char *src, const char *dst);
/* Copies the tokenizer files found in src_dir (tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, vocab.json, merges.txt, encoder.json, vocab.bpe, vocab.txt,
 * tokenizer.bin, tok512.bin, generation_config.json) into dst_dir. Returns the count copied. */
int ft_copy_tokenizer_files(const char *src_dir, const char *dst_dir);
/* rm -r of a directory tree (checkpoint rotation). */
int ft_remove_tree(const char *path);
#endif
