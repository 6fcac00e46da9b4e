/* tfevents.h — TensorBoard event files, written without TensorFlow: `finetune train --tensorboard [DIR]`.
 *
 * Overview. TensorBoard reads a folder of files named events.out.tfevents.<unix time>.<host>. Each file is
 * a sequence of TFRecords, each holding one serialized `tensorflow.Event` protocol buffer:
 *
 *     record := u64 length (little endian) | u32 masked CRC-32C of those 8 bytes | data[length]
 *               | u32 masked CRC-32C of data
 *     masked(crc) := ((crc >> 15) | (crc << 17)) + 0xa282ead8        (tensorflow/core/lib/hash/crc32c.h)
 *
 *     message Event   { double wall_time = 1; int64 step = 2;
 *                       oneof what { string file_version = 3; Summary summary = 5; SessionLog session_log = 7; } }
 *     message Summary { repeated Value value = 1; }
 *     message Value   { string tag = 1; float simple_value = 2; }
 *     message SessionLog { enum SessionStatus { STATUS_UNSPECIFIED = 0; START = 1; ... } status = 1; }
 *
 * The first event of a file carries file_version "brain.Event:2"; every later one a summary of scalars
 * (simple_value, what TensorBoard's Scalars dashboard shows). The writer encodes these few fields by
 * hand (no protobuf library) and flushes every event to the kernel as it is written, so a run killed with
 * kill -9 leaves a file TensorBoard reads up to its last complete event.
 *
 * Example:
 *     ft_tfevents *w;
 *     FT_TRY(ft_tfevents_open("runs/exp1/tensorboard", &w));        // file_version written
 *     ft_tfevents_scalar loss = {"train/loss", 2.31f};
 *     FT_TRY(ft_tfevents_write_scalars(w, 10, ft_tfevents_now(), &loss, 1));
 *     ft_tfevents_close(w);
 *     // then: tensorboard --logdir runs/
 *
 * The train sink (ft_train_sink_tensorboard) writes one event per metrics.jsonl line: every numeric
 * field but "step" becomes the scalar "<type>/<field>" ("train/loss", "train/lr", "train/grad_norm",
 * "train/tokens_per_s", "eval/val_loss", "eval/accuracy", "test/f1", "memory/peak_rss_mib"), the same
 * keys as the run store (runs.h). A resumed run (--resume) opens a new file in the same folder that starts
 * with a SessionLog START at the step after the checkpoint, which makes TensorBoard drop the points the
 * killed run logged after that checkpoint.
 *
 * Ownership: strings are copied; ft_tfevents_close frees the writer. Thread safety: a writer is used by
 * one thread at a time; separate writers are independent. */
#ifndef FINETUNE_TFEVENTS_H
#define FINETUNE_TFEVENTS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "finetune/train.h"

typedef struct ft_tfevents ft_tfevents;

typedef struct ft_tfevents_scalar {
    const char *tag;     /* "train/loss" */
    float       value;   /* TensorBoard's simple_value is a float */
} ft_tfevents_scalar;

/* Creates dir (and its parents) and a new event file in it, events.out.tfevents.<time>.<host> (".<n>"
 * appended when that name exists), and writes the file_version event. */
int  ft_tfevents_open(const char *dir, ft_tfevents **out);
/* One event at step holding n scalars (n >= 1), written and flushed. wall_time: seconds since the epoch. */
int  ft_tfevents_write_scalars(ft_tfevents *w, int64_t step, double wall_time, const ft_tfevents_scalar *v, int n);
/* A SessionLog START event at step: TensorBoard discards the points at steps >= step written before it. */
int  ft_tfevents_write_session_start(ft_tfevents *w, int64_t step, double wall_time);
/* The path of the event file (owned by w). */
const char *ft_tfevents_path(const ft_tfevents *w);
/* Closes the file (FT_ERR_IO when the last flush failed) and frees w (NULL is fine). */
int  ft_tfevents_close(ft_tfevents *w);
/* Seconds since the epoch, with microseconds. */
double ft_tfevents_now(void);

/* The TFRecord frame of data[n] into out (n + 16 bytes): length, its masked CRC, data, data's masked CRC. */
void ft_tfrecord_frame(const void *data, size_t n, unsigned char *out);
/* TensorFlow's CRC mask of a CRC-32C. */
uint32_t ft_tfrecord_mask_crc(uint32_t crc);

/* A train sink writing TensorBoard events (see above) into dir, or <run dir>/tensorboard when dir is NULL
 * or "". Like the run-store sink it never fails the run: an error is written once to warn (may be NULL)
 * and the sink writes nothing more. Close with out->close(out->user). */
int  ft_train_sink_tensorboard(ft_train_sink *out, const char *dir, FILE *warn);
#endif
