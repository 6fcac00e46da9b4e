#!/usr/bin/env python3
"""Write small random-weight encoder classifiers (Hugging Face directories) plus
float64 PyTorch/transformers reference tensors for tests/test_encoder.c.

Usage (from the repository root):
    python3 tests/parity/make_encoder_fixtures.py            # all configurations
    python3 tests/parity/make_encoder_fixtures.py bert_tiny  # only the named ones
    python3 tests/parity/make_encoder_fixtures.py --check-saved SAVED_DIR FIXTURE ...
        # transformers loads directories written by ft_encoder_save (see check_saved)

For each configuration NAME it writes tests/fixtures/encoder/NAME/:
    config.json, model.safetensors     as save_pretrained writes them (float32 weights)
    ref.safetensors                    input_ids, token_type_ids, attention_mask, labels [B,T]/[B] (I32),
                                       logits [B,K], loss [1], grad.<hf name> for every parameter
References are computed by the float64 copy of the model (eager attention, dropout 0), so the
C side is compared against exact values. Everything is seeded: reruns give identical files.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file
from transformers import (BertConfig, BertForMaskedLM, BertForSequenceClassification,
                          BertForTokenClassification, DistilBertConfig, DistilBertForMaskedLM,
                          DistilBertForSequenceClassification, RobertaConfig, RobertaForMaskedLM,
                          RobertaForSequenceClassification)
import transformers

transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "encoder")
NORM_BIAS_JITTER = 0.1  # 1-D params (norm weights, biases) get +N(0, 0.1^2)


def bert():
    return BertConfig(vocab_size=128, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=128, hidden_act="gelu", max_position_embeddings=16,
                      type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      classifier_dropout=0.0, initializer_range=0.2, num_labels=3, pad_token_id=0,
                      layer_norm_eps=1e-12)


def distilbert():
    return DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=4, hidden_dim=32,
                            activation="gelu", max_position_embeddings=16, dropout=0.0,
                            attention_dropout=0.0, seq_classif_dropout=0.0, initializer_range=0.2,
                            num_labels=3, pad_token_id=0)


def roberta():
    return RobertaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=32, hidden_act="gelu", max_position_embeddings=18,
                         type_vocab_size=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         classifier_dropout=0.0, initializer_range=0.2, num_labels=3, pad_token_id=1,
                         bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)


# (bert_tiny: width 64, 4 heads, FFN 128; the other two are narrower (width 16, head size 4) so that
# tests/fixtures/encoder stays under 1 MB)
# name -> (config factory, model class, B, T, token types?)
CONFIGS = {
    "bert_tiny": (bert, BertForSequenceClassification, 3, 12, True),
    "distilbert_tiny": (distilbert, DistilBertForSequenceClassification, 3, 12, False),
    "roberta_tiny": (roberta, RobertaForSequenceClassification, 3, 12, False),
}


def make_batch(config, B, T, types, pad, seed):
    g = torch.Generator().manual_seed(seed + 1)
    V = config.vocab_size
    ids = torch.randint(3, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    lengths = [T, T - 4, T - 7][:B]
    for b, n in enumerate(lengths):
        mask[b, n:] = 0
        ids[b, n:] = pad
    tt = torch.zeros(B, T, dtype=torch.long)
    if types:
        for b, n in enumerate(lengths):
            tt[b, n // 2:n] = 1
    labels = torch.randint(0, config.num_labels, (B,), generator=g)
    return ids, tt, mask, labels


def make_fixture(name, seed):
    make_cfg, cls, B, T, types = CONFIGS[name]
    config = make_cfg()
    config._attn_implementation = "eager"
    d = os.path.join(OUT_DIR, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * NORM_BIAS_JITTER)
    model.save_pretrained(d, safe_serialization=True)
    ckpt = load_file(os.path.join(d, "model.safetensors"))

    model64 = cls(config).double().eval()
    model64.load_state_dict(model.state_dict())
    pad = config.pad_token_id
    ids, tt, mask, labels = make_batch(config, B, T, types, pad, seed)
    kw = dict(input_ids=ids, attention_mask=mask, labels=labels)
    if types:
        kw["token_type_ids"] = tt
    out = model64(**kw)
    out.loss.backward()
    ref = {
        "input_ids": ids.to(torch.int32), "token_type_ids": tt.to(torch.int32),
        "attention_mask": mask.to(torch.int32), "labels": labels.to(torch.int32),
        "logits": out.logits.detach().float(), "loss": out.loss.detach().float().reshape(1),
    }
    for n, p in model64.named_parameters():
        assert n in ckpt, f"{name}: parameter {n} not in model.safetensors"
        ref["grad." + n] = (p.grad if p.grad is not None else torch.zeros_like(p)).float().contiguous()
    from safetensors.torch import save_file
    save_file(dict(sorted(ref.items())), os.path.join(d, "ref.safetensors"), metadata={"format": "pt"})
    print(f"{name}: B={B} T={T} loss={out.loss.item():.6f} params={len(list(model64.parameters()))}")


# ------------------------------------------------------------ tasks, pooling (encoder.h "tasks, pooling, saving")
#
# Small (one block, width 16, head size 4) models for the other heads and losses. Each NAME/ref.safetensors holds
# input_ids, token_type_ids, attention_mask [B,T] (I32), then what the task needs:
#   labels      I32 [B] (classify) or [B,T] (token, mlm; -100 = not counted)
#   targets     F32 [B] (regress; NaN = not counted)
#   class_weights F32 [K], label_smoothing F32 [1] (when used)
#   logits      F32: [B,K] classify, [B,1] regress, [B*T,K] token, [M,V] mlm (the labelled rows in row order)
#   pooled      F32 [B,C] (mean pooling fixtures)
#   loss        F32 [1];  grad.<hf name> for every parameter
# The config.json of the mean-pooling fixtures carries "finetune_pooling": "mean" (no HF class does mean
# pooling: the script computes it from the HF model's pieces, as sentence-transformers pools).


def small_bert(**kw):
    return BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                      intermediate_size=32, hidden_act="gelu", max_position_embeddings=16,
                      type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      classifier_dropout=0.0, initializer_range=0.2, pad_token_id=0,
                      layer_norm_eps=1e-12, **kw)


def small_distilbert(**kw):
    return DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=4, hidden_dim=32,
                            activation="gelu", max_position_embeddings=16, dropout=0.0,
                            attention_dropout=0.0, seq_classif_dropout=0.0, initializer_range=0.2,
                            pad_token_id=0, **kw)


def small_roberta(**kw):
    return RobertaConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=32, hidden_act="gelu", max_position_embeddings=18,
                         type_vocab_size=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         classifier_dropout=0.0, initializer_range=0.2, pad_token_id=1,
                         bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, **kw)


CLASS_WEIGHTS = [0.5, 2.0, 1.25]
# name -> (config factory, model class, task, extra): B = 4, T = 10
TASKS = {
    "bert_token": (lambda: small_bert(num_labels=5), BertForTokenClassification, "token", {}),
    "bert_mlm": (small_bert, BertForMaskedLM, "mlm", {}),
    "distilbert_mlm": (small_distilbert, DistilBertForMaskedLM, "mlm", {}),
    "roberta_mlm": (small_roberta, RobertaForMaskedLM, "mlm", {}),
    "bert_regress": (lambda: small_bert(num_labels=1, problem_type="regression"), BertForSequenceClassification,
                     "regress", {}),
    "bert_weighted": (lambda: small_bert(num_labels=3), BertForSequenceClassification, "classify",
                      {"weights": CLASS_WEIGHTS, "smoothing": 0.1}),
    "bert_mean": (lambda: small_bert(num_labels=3), BertForSequenceClassification, "classify", {"mean": True}),
    "distilbert_mean": (lambda: small_distilbert(num_labels=3), DistilBertForSequenceClassification, "classify",
                        {"mean": True}),
}
TASK_B, TASK_T = 4, 10


def task_batch(config, types, pad, g):
    B, T, V = TASK_B, TASK_T, config.vocab_size
    ids = torch.randint(3, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    for b, n in enumerate([T, T - 3, T - 6, 2]):
        mask[b, n:] = 0
        ids[b, n:] = pad
    tt = torch.zeros(B, T, dtype=torch.long)
    if types:
        for b in range(B):
            n = int(mask[b].sum())
            tt[b, n // 2:n] = 1
    return ids, tt, mask


def mean_pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


def mean_pooled_logits(model, kw):
    """the sequence-classification head of model over the mean-pooled hidden states"""
    mask = kw["attention_mask"]
    if isinstance(model, BertForSequenceClassification):
        h = model.bert(**kw).last_hidden_state
        p = mean_pool(h, mask)
        x = model.bert.pooler.activation(model.bert.pooler.dense(p))
        return p, model.classifier(model.dropout(x))
    h = model.distilbert(**kw)[0]
    p = mean_pool(h, mask)
    x = torch.relu(model.pre_classifier(p))
    return p, model.classifier(model.dropout(x))


def save_ref(d, ref, fname="ref.safetensors"):
    from safetensors.torch import save_file
    save_file(dict(sorted(ref.items())), os.path.join(d, fname), metadata={"format": "pt"})


def grads(model64, ckpt, name):
    out = {}
    for n, p in model64.named_parameters():
        assert n in ckpt, f"{name}: parameter {n} not in model.safetensors"
        out["grad." + n] = (p.grad if p.grad is not None else torch.zeros_like(p)).float().contiguous()
    return out


def make_task_fixture(name, seed):
    make_cfg, cls, task, extra = TASKS[name]
    config = make_cfg()
    config._attn_implementation = "eager"
    d = os.path.join(OUT_DIR, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * NORM_BIAS_JITTER)
    model.save_pretrained(d, safe_serialization=True)
    if extra.get("mean"):
        path = os.path.join(d, "config.json")
        cj = json.load(open(path))
        cj["finetune_pooling"] = "mean"
        with open(path, "w") as f:
            json.dump(cj, f, indent=2, sort_keys=True)
            f.write("\n")
    ckpt = load_file(os.path.join(d, "model.safetensors"))
    model64 = cls(config).double().eval()
    model64.load_state_dict(model.state_dict())
    types = config.model_type == "bert"
    g = torch.Generator().manual_seed(seed + 1)
    ids, tt, mask = task_batch(config, types, config.pad_token_id, g)
    kw = dict(input_ids=ids, attention_mask=mask)
    if types:
        kw["token_type_ids"] = tt
    ref = {"input_ids": ids.to(torch.int32), "token_type_ids": tt.to(torch.int32),
           "attention_mask": mask.to(torch.int32)}
    B, T = ids.shape
    if task == "token":
        labels = torch.randint(0, config.num_labels, (B, T), generator=g)
        labels[mask == 0] = -100
        labels[:, 0] = -100          # [CLS]
        labels[1, 2] = -100          # a word continuation
        out = model64(**kw, labels=labels)
        logits, loss = out.logits.reshape(B * T, -1), out.loss
        ref["labels"] = labels.to(torch.int32)
    elif task == "mlm":
        labels = torch.full((B, T), -100, dtype=torch.long)
        chosen = (torch.rand(B, T, generator=g) < 0.3) & (mask == 1)
        chosen[0, 1] = True
        chosen[3, :] = False         # a row without any masked token
        labels[chosen] = ids[chosen]
        out = model64(**kw, labels=labels)
        logits, loss = out.logits[labels != -100], out.loss
        ref["labels"] = labels.to(torch.int32)
    elif task == "regress":
        targets = torch.randn(B, generator=g, dtype=torch.float64)
        out = model64(**kw, labels=targets)          # HF's MSE over all rows: a cross-check
        targets[2] = float("nan")                    # NaN: the row is skipped
        logits = out.logits
        valid = ~torch.isnan(targets)
        loss = ((logits[valid, 0] - targets[valid]) ** 2).mean()
        ref["targets"] = targets.float()
        print(f"  {name}: HF regression loss over all rows {out.loss.item():.6f}")
    else:
        labels = torch.randint(0, config.num_labels, (B,), generator=g)
        labels[1] = -100
        if extra.get("mean"):
            pooled, logits = mean_pooled_logits(model64, kw)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            ref["pooled"] = pooled.detach().float()
        else:
            logits = model64(**kw).logits
            w = torch.tensor(extra["weights"], dtype=torch.float64)
            loss = torch.nn.CrossEntropyLoss(weight=w)(logits, labels)
            ref["class_weights"] = w.float()
        ref["labels"] = labels.to(torch.int32)
    loss.backward()
    ref["logits"] = logits.detach().float().contiguous()
    ref["loss"] = loss.detach().float().reshape(1)
    ref.update(grads(model64, ckpt, name))
    save_ref(d, ref)
    if "smoothing" in extra:
        # the same batch, class weights and label smoothing together (torch's combination)
        model64.zero_grad()
        eps = extra["smoothing"]
        logits = model64(**kw).logits
        loss = torch.nn.CrossEntropyLoss(weight=w, label_smoothing=eps)(logits, labels)
        loss.backward()
        ref2 = {k: v for k, v in ref.items() if not k.startswith("grad.")}
        ref2["label_smoothing"] = torch.tensor([eps], dtype=torch.float32)
        ref2["loss"] = loss.detach().float().reshape(1)
        ref2.update(grads(model64, ckpt, name))
        save_ref(d, ref2, "ref_smooth.safetensors")
    print(f"{name}: {task} B={B} T={T} loss={loss.item():.6f} logits={tuple(ref['logits'].shape)}")


def check_saved(saved, fixture):
    """A directory written by ft_encoder_save (tests/test_encoder.c with FT_ENCODER_SAVE_DIR) loads in
    transformers with the Auto class of its architecture and gives the fixture's logits."""
    import transformers as tf
    from safetensors.torch import load_file as lf
    cfg = json.load(open(os.path.join(saved, "config.json")))
    arch = cfg["architectures"][0]
    auto = (tf.AutoModelForTokenClassification if arch.endswith("ForTokenClassification") else
            tf.AutoModelForMaskedLM if arch.endswith("ForMaskedLM") else tf.AutoModelForSequenceClassification)
    model = auto.from_pretrained(saved, attn_implementation="eager").double().eval()
    assert type(model).__name__ == arch, (type(model).__name__, arch)
    ref = lf(os.path.join(OUT_DIR, fixture, "ref.safetensors"))
    kw = dict(input_ids=ref["input_ids"].long(), attention_mask=ref["attention_mask"].long())
    if cfg["model_type"] == "bert":
        kw["token_type_ids"] = ref["token_type_ids"].long()
    with torch.no_grad():
        if cfg.get("finetune_pooling") == "mean":
            logits = mean_pooled_logits(model, kw)[1]
        else:
            logits = model(**kw).logits
    if arch.endswith("ForMaskedLM"):
        logits = logits[ref["labels"].long() != -100]
    elif arch.endswith("ForTokenClassification"):
        logits = logits.reshape(-1, logits.shape[-1])
    err = (logits.float() - ref["logits"]).abs().max().item() / ref["logits"].abs().max().item()
    print(f"{saved}: {arch} (num_labels {model.config.num_labels}, id2label {model.config.id2label}, "
          f"problem_type {model.config.problem_type}) logits vs {fixture}: max rel {err:.2e}")
    assert err < 1e-5


def main(argv):
    if len(argv) > 1 and argv[1] == "--check-saved":
        for i in range(2, len(argv) - 1, 2):
            check_saved(argv[i], argv[i + 1])
        return
    names = argv[1:] or list(CONFIGS) + list(TASKS)
    for i, n in enumerate(names):
        if n in CONFIGS:
            make_fixture(n, 1234 + 17 * list(CONFIGS).index(n))
        else:
            make_task_fixture(n, 4321 + 17 * list(TASKS).index(n))


if __name__ == "__main__":
    main(sys.argv)
