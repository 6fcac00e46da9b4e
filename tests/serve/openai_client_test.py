#!/usr/bin/env python3
"""The official `openai` Python client against `finetune serve`, unchanged.

    python3 tests/serve/openai_client_test.py --base-url http://127.0.0.1:PORT/v1 --api-key KEY \
        --generator default [--encoder cls]

Checks: model listing; completions (greedy, determinism, n > 1 with a seed, stop strings, logprobs,
streaming = non-streaming); chat (plain, streaming with usage, logprobs, n > 1); embeddings (float and
base64 give the same unit vectors); errors raise the right exception classes. Prints one line per check
and exits 1 on the first failure.
"""
import argparse
import math
import sys

import openai


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def expect_error(cls, fn, what):
    try:
        fn()
    except cls as e:
        print(f"ok: {what} -> {cls.__name__} ({e.status_code})", flush=True)
        return e
    except Exception as e:  # noqa: BLE001 - report anything else as a failure
        print(f"FAIL: {what}: expected {cls.__name__}, got {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    print(f"FAIL: {what}: expected {cls.__name__}, no error", flush=True)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--api-key", default="none")
    ap.add_argument("--generator", default="default")
    ap.add_argument("--encoder", default=None)
    a = ap.parse_args()
    client = openai.OpenAI(base_url=a.base_url, api_key=a.api_key, max_retries=0, timeout=120)
    gen = a.generator
    prompt = "Once upon a time"

    # ---- models
    ids = [m.id for m in client.models.list().data]
    check(gen in ids, f"models.list has {gen} ({ids})")
    if a.encoder:
        check(a.encoder in ids, f"models.list has {a.encoder}")
    check(client.models.retrieve(gen).id == gen, "models.retrieve")

    # ---- completions
    c = client.completions.create(model=gen, prompt=prompt, max_tokens=24, temperature=0)
    text = c.choices[0].text
    check(c.object == "text_completion" and c.id.startswith("cmpl-"), "completion object and id")
    check(len(text) > 0 and c.choices[0].finish_reason in ("length", "stop"), f"greedy completion: {text!r}")
    check(c.usage.completion_tokens > 0 and c.usage.prompt_tokens > 0
          and c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens, f"usage {c.usage}")
    c2 = client.completions.create(model=gen, prompt=prompt, max_tokens=24, temperature=0)
    check(c2.choices[0].text == text, "greedy completion is deterministic")

    s1 = client.completions.create(model=gen, prompt=prompt, max_tokens=16, temperature=1.0, seed=7, n=3)
    s2 = client.completions.create(model=gen, prompt=prompt, max_tokens=16, temperature=1.0, seed=7, n=3)
    check(sorted(ch.index for ch in s1.choices) == [0, 1, 2], "n=3 gives choices 0, 1, 2")
    check([ch.text for ch in s1.choices] == [ch.text for ch in s2.choices], "same seed, same samples")
    check(s1.usage.prompt_tokens == c.usage.prompt_tokens, "n > 1 counts the prompt once")

    # stop: cut the greedy text before a word in its middle
    words = text.split(" ")
    stop_word = next((w for w in words[3:] if len(w) >= 3), None)
    if stop_word:
        st = client.completions.create(model=gen, prompt=prompt, max_tokens=24, temperature=0, stop=[stop_word, "zzzz"])
        check(st.choices[0].text == text[:text.index(stop_word)] and st.choices[0].finish_reason == "stop",
              f"stop {stop_word!r}: {st.choices[0].text!r}")

    lp = client.completions.create(model=gen, prompt=prompt, max_tokens=8, temperature=0, logprobs=2)
    L = lp.choices[0].logprobs
    check(len(L.tokens) == lp.usage.completion_tokens == len(L.token_logprobs) == len(L.top_logprobs) == len(L.text_offset),
          "completion logprobs: one entry per token")
    check(all(x <= 1e-6 for x in L.token_logprobs) and all(1 <= len(t) <= 2 for t in L.top_logprobs),
          "completion logprobs: values <= 0, at most 2 alternatives")
    check(all(abs(L.token_logprobs[i] - max(L.top_logprobs[i].values())) < 1e-4 for i in range(len(L.tokens))),
          "greedy: the chosen token is the most likely")

    streamed = "".join(ch.choices[0].text for ch in
                       client.completions.create(model=gen, prompt=prompt, max_tokens=24, temperature=0, stream=True)
                       if ch.choices)
    check(streamed == text, "streamed completion == non-streamed")

    batch = client.completions.create(model=gen, prompt=[prompt, "The dog"], max_tokens=8, temperature=0)
    check(len(batch.choices) == 2 and batch.choices[0].text == text[:len(batch.choices[0].text)], "a batch of 2 prompts")

    # ---- chat
    msgs = [{"role": "system", "content": "You tell short stories."}, {"role": "user", "content": "Tell me about a cat."}]
    r = client.chat.completions.create(model=gen, messages=msgs, max_tokens=20, temperature=0)
    content = r.choices[0].message.content
    check(r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.choices[0].message.role == "assistant",
          f"chat completion: {content!r}")
    parts, usage, roles = [], None, []
    for ch in client.chat.completions.create(model=gen, messages=msgs, max_tokens=20, temperature=0, stream=True,
                                             stream_options={"include_usage": True}):
        if ch.usage:
            usage = ch.usage
        for x in ch.choices:
            if x.delta.role:
                roles.append(x.delta.role)
            if x.delta.content:
                parts.append(x.delta.content)
    check(roles == ["assistant"], "streamed chat announces the assistant role once")
    check("".join(parts) == content, "streamed chat == non-streamed chat")
    check(usage is not None and usage.completion_tokens == r.usage.completion_tokens, f"stream usage chunk {usage}")

    rl = client.chat.completions.create(model=gen, messages=msgs, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
    entries = rl.choices[0].logprobs.content
    check(len(entries) == rl.usage.completion_tokens and all(len(e.top_logprobs) <= 3 and e.logprob <= 1e-6 for e in entries),
          "chat logprobs with top_logprobs=3")
    rn = client.chat.completions.create(model=gen, messages=msgs, max_tokens=6, temperature=0.9, n=2, seed=3)
    check(len(rn.choices) == 2, "chat n=2")

    # ---- errors
    expect_error(openai.NotFoundError, lambda: client.completions.create(model="no-such-model", prompt="x", max_tokens=1),
                 "unknown model")
    e = expect_error(openai.BadRequestError, lambda: client.completions.create(model=gen, prompt="x", temperature=5),
                     "temperature out of range")
    check(e.body and e.body.get("param") == "temperature", "error names the field")
    expect_error(openai.BadRequestError, lambda: client.chat.completions.create(model=gen, messages=[]), "empty messages")
    if a.api_key != "none":
        bad = openai.OpenAI(base_url=a.base_url, api_key="wrong-key", max_retries=0)
        expect_error(openai.AuthenticationError, lambda: bad.models.list(), "wrong API key")

    # ---- embeddings
    if a.encoder:
        emb = client.embeddings.create(model=a.encoder, input=["a gorgeous film", "dull and slow"])  # base64 by default
        fl = client.embeddings.create(model=a.encoder, input=["a gorgeous film", "dull and slow"], encoding_format="float")
        v0, f0 = emb.data[0].embedding, fl.data[0].embedding
        check(len(emb.data) == 2 and len(v0) > 0 and abs(math.sqrt(sum(x * x for x in v0)) - 1) < 1e-4,
              f"embeddings: 2 unit vectors of {len(v0)} dims")
        check(max(abs(x - y) for x, y in zip(v0, f0)) < 1e-6, "base64 == float embeddings")
        check(emb.usage.prompt_tokens > 0, "embedding usage")
        one = client.embeddings.create(model=a.encoder, input="a gorgeous film", encoding_format="float")
        check(max(abs(x - y) for x, y in zip(one.data[0].embedding, f0)) < 1e-5, "one text == the same text in a batch")
        expect_error(openai.BadRequestError, lambda: client.embeddings.create(model=gen, input="x"), "embeddings of a generator")
    print("openai client: all checks passed", flush=True)


if __name__ == "__main__":
    main()
