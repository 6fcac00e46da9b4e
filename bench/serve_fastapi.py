#!/usr/bin/env python3
"""The reference server of bench/serve.sh: FastAPI + uvicorn + transformers + torch (the reference workflow's
stack), serving the same model directories as `finetune serve` with the endpoints the bench calls:

  GET  /health                     {"status": "ok"}
  GET  /v1/models                  OpenAI model list (generators, adapters, classifiers)
  POST /v1/completions             {"model", "prompt", "max_tokens", "temperature": 0} -> OpenAI completion;
                                   greedy; exactly max_tokens new tokens (min_new_tokens: EOS ignored)
  POST /models/{id}/predict        {"text", "confidence_threshold"} -> {"prediction", "confidence",
                                   "probabilities", "request_id"}

One process, the models loaded once at start, plain synchronous endpoints (FastAPI runs them on its thread
pool; torch releases the GIL in its kernels), one request per forward: what the reference workflow does.
LoRA adapters are PEFT adapters loaded over the generator (PeftModel.load_adapter); a request naming an
adapter switches to it under a lock (PEFT's active adapter is global to the model).

usage: serve_fastapi.py --port 8081 --generator NAME=DIR [...] [--classifier NAME=DIR ...]
                        [--adapter NAME=DIR ...] [--adapter-base NAME] [--threads N]
"""
import argparse
import os
import sys
import threading
import time
import uuid


def parse_pairs(items, flag):
    out = []
    for it in items or []:
        if "=" not in it:
            sys.exit(f"serve_fastapi.py: {flag} takes NAME=DIR, got {it!r}")
        name, path = it.split("=", 1)
        out.append((name, path))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--generator", action="append", default=[])
    ap.add_argument("--classifier", action="append", default=[])
    ap.add_argument("--adapter", action="append", default=[])
    ap.add_argument("--adapter-base", default=None, help="the generator the adapters go on (default: the first)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = ap.parse_args()

    import torch
    import uvicorn
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    generators, classifiers, adapters = {}, {}, {}
    for name, path in parse_pairs(args.generator, "--generator"):
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
        generators[name] = {"tok": tok, "model": model, "lock": threading.Lock(), "peft": False}
    for name, path in parse_pairs(args.classifier, "--classifier"):
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, torch_dtype=torch.float32).eval()
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        classifiers[name] = {"tok": tok, "model": model, "labels": labels}
    ad = parse_pairs(args.adapter, "--adapter")
    if ad:
        from peft import PeftModel
        base_name = args.adapter_base or next(iter(generators))
        g = generators[base_name]
        for i, (name, path) in enumerate(ad):
            if i == 0:
                g["model"] = PeftModel.from_pretrained(g["model"], path, adapter_name=name).eval()
                g["peft"] = True
            else:
                g["model"].load_adapter(path, adapter_name=name)
            adapters[name] = base_name
    print(f"serve_fastapi: {len(generators)} generators, {len(classifiers)} classifiers, {len(adapters)} adapters, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr, flush=True)

    app = FastAPI()

    class Completion(BaseModel):
        model: str
        prompt: str
        max_tokens: int = 16
        temperature: float = 0.0

    class Predict(BaseModel):
        text: str
        confidence_threshold: float = 0.0

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    def models():
        now = int(time.time())
        data = [{"id": n, "object": "model", "created": now, "owned_by": "fastapi"}
                for n in list(generators) + list(adapters) + list(classifiers)]
        return {"object": "list", "data": data}

    @app.post("/v1/completions")
    def completions(req: Completion):
        name, adapter = req.model, None
        if name in adapters:
            adapter, name = name, adapters[name]
        g = generators.get(name)
        if g is None:
            raise HTTPException(status_code=404, detail=f"model {req.model!r} not found")
        if req.max_tokens < 1 or req.max_tokens > 4096:
            raise HTTPException(status_code=400, detail="max_tokens must be in 1..4096")
        tok, model = g["tok"], g["model"]
        ids = tok(req.prompt, return_tensors="pt").input_ids
        with torch.inference_mode():
            if g["peft"]:   # PEFT's active adapter is global to the model: one request at a time on it
                with g["lock"]:
                    if adapter:
                        model.set_adapter(adapter)
                        out = model.generate(input_ids=ids, max_new_tokens=req.max_tokens, min_new_tokens=req.max_tokens,
                                             do_sample=False, pad_token_id=tok.eos_token_id)
                    else:
                        with model.disable_adapter():
                            out = model.generate(input_ids=ids, max_new_tokens=req.max_tokens, min_new_tokens=req.max_tokens,
                                                 do_sample=False, pad_token_id=tok.eos_token_id)
            else:
                out = model.generate(input_ids=ids, max_new_tokens=req.max_tokens, min_new_tokens=req.max_tokens,
                                     do_sample=False, pad_token_id=tok.eos_token_id)
        new = out[0][ids.shape[1]:]
        text = tok.decode(new, skip_special_tokens=True)
        return {"id": "cmpl-" + uuid.uuid4().hex[:24], "object": "text_completion", "created": int(time.time()),
                "model": req.model,
                "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}],
                "usage": {"prompt_tokens": int(ids.shape[1]), "completion_tokens": int(new.shape[0]),
                          "total_tokens": int(ids.shape[1] + new.shape[0])}}

    @app.post("/models/{model_id}/predict")
    def predict(model_id: str, req: Predict):
        c = classifiers.get(model_id)
        if c is None:
            return JSONResponse(status_code=404, content={"error": "not_found", "message": f"model {model_id!r} not found",
                                                          "status_code": 404})
        enc = c["tok"](req.text, return_tensors="pt", truncation=True, max_length=512)
        with torch.inference_mode():
            probs = torch.softmax(c["model"](**enc).logits[0], dim=-1).tolist()
        top = max(range(len(probs)), key=lambda i: probs[i])
        ok = probs[top] >= req.confidence_threshold
        return {"prediction": c["labels"][top] if ok else None, "confidence": probs[top],
                "probabilities": {c["labels"][i]: p for i, p in enumerate(probs)},
                "fallback": not ok, "request_id": uuid.uuid4().hex}

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
