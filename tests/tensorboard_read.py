#!/usr/bin/env python3
"""Reads a folder of TensorBoard event files with TensorBoard's own code (PyPI tensorboard) for
tests/test_tensorboard.c and prints one JSON object:
  {"files": N, "records": N, "file_version": "brain.Event:2", "session_starts": [step, ...],
   "scalars": {"train/loss": [[step, value], ...], ...}}
Every record of every file is first read with TensorBoard's record reader, which checks both masked
CRC-32Cs (a mismatch raises DataLossError: exit 1); the scalars are what EventAccumulator (the loader
behind TensorBoard's Scalars dashboard) returns, after its purge of orphaned steps.
Exit 3 when tensorboard cannot be imported (the C test then skips this check)."""
import glob, json, logging, os, sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
except Exception as e:  # noqa: BLE001 - any import problem means "not installed"
    print(f"tensorboard is not importable: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    logging.getLogger("tensorboard").setLevel(logging.ERROR)   # the purge notice is expected
    d = sys.argv[1]
    files = sorted(glob.glob(os.path.join(d, "events.out.tfevents.*")))
    out = {"files": len(files), "records": 0, "file_version": None, "session_starts": []}
    for f in files:
        r = PyRecordReader_New(f)
        while True:
            try:
                r.GetNext()
            except errors.OutOfRangeError:
                break
            ev = event_pb2.Event.FromString(r.record())
            out["records"] += 1
            if ev.HasField("file_version"):
                out["file_version"] = ev.file_version
            if ev.HasField("session_log"):
                out["session_starts"].append(ev.step)
            if not ev.wall_time > 1e9:
                print(f"{f}: event with wall_time {ev.wall_time}", file=sys.stderr)
                sys.exit(1)
    ea = EventAccumulator(d, size_guidance={"scalars": 0})
    ea.Reload()
    out["scalars"] = {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
