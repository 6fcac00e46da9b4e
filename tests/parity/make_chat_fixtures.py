#!/usr/bin/env python3
"""make_chat_fixtures.py — reference renders of chat templates by transformers, for tests/test_chat.c.

For every template below (the built-ins of src/chat/chat_builtin.c and the chat_template strings that
model families ship in tokenizer_config.json) this writes

    tests/fixtures/chat/<name>/tokenizer_config.json   chat_template + bos_token / eos_token
    tests/fixtures/chat/<name>/cases.json              conversations, and per (conversation,
                                                       add_generation_prompt) case the text transformers'
                                                       apply_chat_template(tokenize=False) renders (or the
                                                       TemplateError message) and the assistant spans

plus tests/fixtures/chat/features/cases.json (small templates that exercise the interpreter: filters,
tests, scoping, whitespace control, Python printing of values), tests/fixtures/chat/random/cases.json
(seeded random templates: nested blocks under every whitespace-control modifier, random expressions),
loader fixtures, and index.json.

Rendering uses a PreTrainedTokenizerFast built around a tiny WordLevel tokenizer from the `tokenizers`
library (no hub access); its bos/eos are set so that the template sees exactly bos_token / eos_token.

Spans (byte offsets into the UTF-8 text) are computed from transformers' renders with the rule that
ft_chat_render_spans documents: span of assistant message i = render(messages[:i+1]) minus its prefix
render(messages[:i], add_generation_prompt=True), trailing whitespace after the content removed; or, for
templates with {% generation %} blocks, transformers' own generation indices.

Run from the repository root:  python3 tests/parity/make_chat_fixtures.py
"""
import json
import os
import shutil
import sys

import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import render_jinja_template

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "chat")

# ---------------------------------------------------------------------------------------------------
# Templates. Strings are the template text after JSON decoding (what tokenizer.chat_template holds).

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# meta-llama/Llama-2-7b-chat-hf
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

# meta-llama/Meta-Llama-3-8B-Instruct
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# meta-llama/Llama-3.1-8B-Instruct (renders without tools as well; tool branches must still parse)
LLAMA31 = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

# mistralai/Mistral-7B-Instruct-v0.1
MISTRAL_V01 = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

# mistralai/Mixtral-8x7B-Instruct-v0.1 (also the original Mistral-7B-Instruct-v0.2)
MIXTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

# mistralai/Mistral-7B-Instruct-v0.2 (current form, optional system message)
MISTRAL_V02 = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

# mistralai/Mistral-7B-Instruct-v0.3 (tool-calling form; system prompt goes with the last user message)
MISTRAL_V03 = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

# HuggingFaceH4/zephyr-7b-beta and TinyLlama/TinyLlama-1.1B-Chat-v1.0
ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)
# the same template as TinyLlama writes it, with Jinja '\\n' escapes instead of raw newlines in strings
TINYLLAMA = ZEPHYR.replace("'<|user|>\n'", "'<|user|>\\n'").replace("'<|system|>\n'", "'<|system|>\\n'").replace(
    "'<|assistant|>\n'", "'<|assistant|>\\n'")

# Qwen/Qwen2-7B-Instruct
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Qwen/Qwen2.5-7B-Instruct
QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# HuggingFaceTB/SmolLM2-1.7B-Instruct
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Stanford Alpaca's prompt format as a template (our built-in "alpaca")
ALPACA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{{ messages[0]['content'] + '\\n\\n' }}{% else %}{% set loop_messages = messages %}"
    "{{ 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\\n\\n' }}"
    "{% endif %}{% for message in loop_messages %}{% if message['role'] == 'user' %}"
    "{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}"
    "{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
)

# ChatML with transformers' {% generation %} markers (assistant-mask support, as in TRL/SmolLM3 docs)
CHATML_GEN = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TOOL_USE = "{{ bos_token }}{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"

ADDED_TOKEN = lambda s: {"__type": "AddedToken", "content": s, "lstrip": False, "normalized": False,
                         "rstrip": False, "single_word": False}

# name -> (template, bos, eos, builtin name or None, how tokens are written in tokenizer_config.json)
TEMPLATES = {
    "builtin-chatml": (CHATML, None, "<|im_end|>", "chatml", "str"),
    "builtin-llama2": (LLAMA2, "<s>", "</s>", "llama2", "str"),
    "builtin-llama3": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>", "llama3", "str"),
    "builtin-llama3.1": (LLAMA31, "<|begin_of_text|>", "<|eot_id|>", "llama3.1", "str"),
    "builtin-mistral": (MISTRAL_V02, "<s>", "</s>", "mistral", "str"),
    "builtin-zephyr": (ZEPHYR, "<s>", "</s>", "zephyr", "str"),
    "builtin-alpaca": (ALPACA, "<s>", "</s>", "alpaca", "str"),
    "llama-2-7b-chat": (LLAMA2, "<s>", "</s>", None, "obj"),
    "llama-3-8b-instruct": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>", None, "str"),
    "llama-3.1-8b-instruct": (LLAMA31, "<|begin_of_text|>", "<|eot_id|>", None, "str"),
    "mistral-7b-instruct-v0.1": (MISTRAL_V01, "<s>", "</s>", None, "str"),
    "mixtral-8x7b-instruct-v0.1": (MIXTRAL, "<s>", "</s>", None, "str"),
    "mistral-7b-instruct-v0.2": (MISTRAL_V02, "<s>", "</s>", None, "str"),
    "mistral-7b-instruct-v0.3": (MISTRAL_V03, "<s>", "</s>", None, "str"),
    "zephyr-7b-beta": (ZEPHYR, "<s>", "</s>", None, "str"),
    "tinyllama-1.1b-chat": (TINYLLAMA, "<s>", "</s>", None, "obj"),
    "qwen2-7b-instruct": (QWEN2, None, "<|im_end|>", None, "str"),
    "qwen2.5-7b-instruct": (QWEN25, None, "<|im_end|>", None, "str"),
    "smollm2-1.7b-instruct": (SMOLLM2, "<|im_start|>", "<|im_end|>", None, "str"),
    "chatml-generation": (CHATML_GEN, None, "<|im_end|>", None, "str"),
    "list-form": (CHATML, "<s>", "<|im_end|>", None, "list"),
}

SYS = "You are a helpful assistant."
CONVERSATIONS = {
    "multi_turn_system": [
        {"role": "system", "content": SYS},
        {"role": "user", "content": "Hello! Who are you?"},
        {"role": "assistant", "content": "I am a helpful assistant."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "2+2 equals 4."},
    ],
    "no_system": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there!"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "single_user": [{"role": "user", "content": "What's the capital of France?"}],
    "one_exchange": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}],
    "unicode": [
        {"role": "system", "content": "Réponds en français. 日本語も OK 🙂"},
        {"role": "user", "content": "Ça va? 你好 👋🏽 Ñandú — «quotes» ‘single’"},
        {"role": "assistant", "content": "Très bien, merci ! 😀 Γειά σου κόσμε"},
        {"role": "user", "content": "مرحبا بالعالم"},
    ],
    "newlines_whitespace": [
        {"role": "user", "content": "  line one\nline two\n\n  indented\ttab  "},
        {"role": "assistant", "content": "\nAnswer:\n- a\n- b\n\n"},
        {"role": "user", "content": "trailing nbsp\u00a0"},
        {"role": "assistant", "content": "\u3000ideographic space\u2003"},
    ],
    "template_like": [
        {"role": "user", "content": "{{ not a tag }} {% if x %} {# c #} <|im_end|> </s> [INST]"},
        {"role": "assistant", "content": "Sure: {{ }} {%- -%} 'quotes' \"double\" \\backslash"},
    ],
    "empty_content": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "ok"},
    ],
    "long": [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}: " + "word " * i}
             for i in range(12)],
    "system_only": [{"role": "system", "content": SYS}],
    "bad_alternation": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
}

# ---------------------------------------------------------------------------------------------------
# Feature templates: each renders one conversation; they exercise the interpreter broadly.
FEATURE_MSGS = CONVERSATIONS["multi_turn_system"]
FEATURES = {
    "loop_vars": "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/"
                 "{{ loop.first }}/{{ loop.last }}/{{ loop.length }}|{% endfor %}",
    "loop_prev_next_cycle": "{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}>{{ m.role }}>"
                            "{{ loop.nextitem.role if loop.nextitem is defined else '-' }} {{ loop.cycle('odd', 'even') }};{% endfor %}",
    "namespace": "{% set ns = namespace(count=0, last='') %}{% for m in messages %}{% if m.role == 'user' %}"
                 "{% set ns.count = ns.count + 1 %}{% set ns.last = m.content %}{% endif %}{% endfor %}"
                 "{{ ns.count }}:{{ ns.last }}|{{ ns.missing is defined }}",
    "filters": "{{ messages[1].content | upper }}|{{ messages[1].content | lower }}|{{ messages[1].content | length }}|"
               "{{ messages | length }}|{{ '  x  ' | trim }}|{{ 'xxhixx' | trim('x') }}|"
               "{{ 'hello wORLD-foo (bar) [baz]' | title }}|{{ 'hELLO world' | capitalize }}|"
               "{{ messages | map(attribute='role') | join(', ') }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|"
               "{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='role') | list }}|"
               "{{ (messages | first).role }}|{{ (messages | last).role }}|{{ 'a-b-c' | replace('-', '+') }}|"
               "{{ 'aaa' | replace('a', 'b', 2) }}|{{ undefined_thing | default('dflt') }}|{{ '' | default('e', true) }}|"
               "{{ none | default('n') }}|{{ 42 | string }}|{{ [3, 1, 2] | reverse | list }}|{{ 'abc' | reverse }}|"
               "{{ [1, 2, 3] | join }}|{{ ['a', 'b'] | map('upper') | join }}|{{ [0, 1, '', 'x', none] | select | list }}|"
               "{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3, 4] | reject('even') | list }}|"
               "{{ 'abc' | list }}|{{ {'x': 1} | list }}|{{ 'a' | first }}{{ 'xyz' | last }}|{{ [] | first }}|"
               "{{ 'a<b>&\"c\\'' | e }}|{{ ['a', 'A', 'b'] | unique | list }}|{{ 'line1\nline2\n\nline4' | indent(2) }}|"
               "{{ 'l1\nl2' | indent(first=true) }}|{{ -3 | abs }}|{{ '12' | int + 1 }}|{{ '2.5' | float * 2 }}|"
               "{{ 'x' | int }}|{{ '3.9' | int }}|{{ 4.7 | int }}|{{ true | int }}|{{ 'nan?' | float }}",
    "tojson": "{{ messages | tojson }}|{{ messages[0] | tojson(indent=2) }}|{{ {'b': 1, 'a': [1.5, none, true, 1e20]} | tojson(sort_keys=true) }}|"
              "{{ 'é\"\\\\\n\t\x01' | tojson }}|{{ {'k': 'v', 'l': [1, 2]} | tojson(separators=(',', ':')) }}|"
              "{{ 'é' | tojson(ensure_ascii=true) }}|{{ [[], {}, [1]] | tojson(indent=1) }}|{{ 'x' | tojson(indent='\t') }}|"
              "{{ {'a': {'b': []}} | tojson(indent='--') }}",
    "slicing": "{{ messages[1:] | length }}|{{ messages[-1].content }}|{{ messages[1].content[:5] }}|{{ messages[1].content[::-1] }}|"
               "{{ messages[1].content[2:-2] }}|{{ 'héllo wörld'[1:8:2] }}|{{ [1, 2, 3, 4, 5][::2] }}|{{ [1, 2, 3][5:] }}|"
               "{{ [1, 2, 3][-2:] }}|{{ 'abcdef'[-100:100] }}|{{ 'abcdef'[4:1:-1] }}|{{ 'abc'[5] }}|{{ messages[99] }}|"
               "{{ 'héllo'[1] }}{{ 'héllo'[-1] }}|{{ messages.0.role }}|{{ messages[0]['role'] }}",
    "arithmetic": "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 2 ** 10 }}|"
                  "{{ 2 ** 3 ** 2 }}|{{ 7 / 2 }}|{{ 1 / 3 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1.5e-7 }}|{{ 10 / 5 }}|{{ 'ab' * 3 }}|"
                  "{{ 3 * [0] }}|{{ 'x' ~ 1 ~ none ~ true ~ 2.50 }}|{{ [1, 'a', none, true, 1.5] }}|{{ {'a': 'it\\'s', 'b': \"q\\\"\"} }}|"
                  "{{ (1, 2) }}|{{ (1,) }}|{{ () }}|{{ 3.0 }}|{{ 1e16 }}|{{ 123456789.123 }}|{{ -0.5 }}|{{ 2 ** 62 }}|{{ 1_000 }}|"
                  "{{ 0x1F }}|{{ -7.5 // 2 }}|{{ -7.5 % 2 }}|{{ 5 - -2 }}|{{ -(3) }}|{{ +4 }}|{{ true + 1 }}|{{ [1] + [2] }}|"
                  "{{ 1.0 == 1 }}{{ 1 == true }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }}{{ 2 >= 2.0 }}",
    "tests_logic": "{% for m in messages %}{{ m.role is string }}{{ m.missing is defined }}{{ m.missing is undefined }}"
                   "{{ m.content is none }}{{ loop.index is odd }}{{ loop.index is divisibleby 2 }}{{ 'user' in m.role }}"
                   "{{ m.role not in ['system'] }}{{ m.role == 'user' and m.content or 'no' }}{{ 'y' if loop.first else 'n' }}"
                   "{{ 'z' if loop.last }};{% endfor %}{{ none is none }}{{ 1 is number }}{{ 'a' is lower }}{{ 'A1' is upper }}"
                   "{{ {} is mapping }}{{ [] is iterable }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 5 }}{{ not none }}{{ not not 'x' }}"
                   "{{ 1 is integer }}{{ 1.5 is float }}{{ true is boolean }}{{ true is true }}{{ 0 is false }}"
                   "{{ 'ab' is sequence }}{{ raise_exception is callable }}{{ 2 is in [1, 2] }}{{ 3 is gt 2 }}"
                   "{{ 'a' is ne 'b' }}{{ none is sameas none }}{{ 'x' in {'x': 1} }}{{ 'q' in 'quiet' }}{{ 1 in [1.0] }}"
                   "{{ none or 0 or '' or 'last' }}{{ 'first' and 0 }}{{ 'upper' is filter }}{{ 'nope' is test }}",
    "whitespace": "{# leading comment #}\n<start>\n  {% for m in messages %}\n    {{ m.role }}:\n    {%- if m.content %} {{ m.content[:8] -}} {% endif %}\n\n"
                  "  {% endfor %}\n  {%+ if true %}kept-indent{% endif %}\n  {% if true +%}\nkeep-newline\n  {%- endif %}\n"
                  "   {#- strip comment -#}   after\n\t{% if true %}tab-indented{% endif %}\n{{ 'var' }}\n  {{ 'indented var' }}\n"
                  "{% raw %}  {{ raw }} {% if %}\n{% endraw %}\nx {% if true -%}\n\n   y\n{%- endif %} z\n<end>\n",
    "whitespace_crlf": "line1\r\n  {% if true %}\r\n  body\r\n  {% endif %}\r\nline2\r\n",
    "scoping": "{% set x = 1 %}{% for m in messages %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}|{% set a, b = 1, 2 %}{{ a }}{{ b }}|"
               "{% set blk %}captured {{ messages | length }}{% endset %}{{ blk | upper }}|"
               "{% for k, v in {'p': 1, 'q': 2} | items %}{{ k }}={{ v }},{% endfor %}|{% for i in range(3) %}{{ i }}{% endfor %}|"
               "{{ range(2, 10, 3) | list }}|{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }}{{ m.content[:1] }}"
               "{% else %}none{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}|"
               "{% for m in messages %}{% if loop.first %}{% set y = 'in-loop' %}{% endif %}{{ y }}{% endfor %}[{{ y }}]|"
               "{% if true %}{% set z = 'in-if' %}{% endif %}{{ z }}|{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }};{% endfor %}|"
               "{% set d = dict(k='v', n=1) %}{{ d.k }}{{ d['n'] }}{{ d }}",
    "control_macros": "{% macro tag(name, content='') %}<{{ name }}>{{ content }}</{{ name }}>{% endmacro %}"
                      "{% for m in messages %}{% if loop.index > 4 %}{% break %}{% endif %}{% if m.role == 'system' %}{% continue %}{% endif %}"
                      "{{ tag(m.role, m.content[:5]) }}{% endfor %}|{{ tag('x') }}|{{ tag(name='y', content='z') }}|{{ tag('w', content=1) }}",
    "str_methods": "{{ '  pad  '.strip() }}|{{ '  a b  c '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|"
                   "{{ 'a,b,c'.rsplit(',', 1) }}|{{ ' x  y '.split(none, 1) }}{{ ' x  y '.rsplit(none, 1) }}{{ '  a b '.split(none, 0) }}{{ ''.split() }}{{ ''.split(',') }}|{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}|"
                   "{{ 'Hello World'.upper() }}{{ 'Hello World'.lower() }}{{ 'hello wORLD o\\'neil'.title() }}{{ 'hello World'.capitalize() }}|"
                   "{{ 'aaa'.replace('a', 'b', 2) }}{{ 'ab'.replace('', '-') }}|{{ 'xyx'.strip('x') }}{{ 'xxy'.lstrip('x') }}{{ 'yxx'.rstrip('x') }}|"
                   "{{ 'héllo'.find('l') }}{{ 'abc'.find('z') }}{{ 'banana'.count('an') }}|{{ '-'.join(['a', 'b']) }}|"
                   "{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b', 'd') }}{{ {'a': 1}.get('c') }}|"
                   "{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}{{ v }}{% endfor %}|{{ {'a': 1}.keys() | list }}{{ {'a': 1}.values() | list }}",
    "string_literals": "{{ 'tab\\there' }}|{{ \"dq 'x'\" }}|{{ 'uni \\u00e9 \\U0001F600 \\x41' }}|{{ 'a' 'b' \"c\" }}|{{ 'octal \\101' }}|"
                       "{{ 'unknown \\d' }}|{{ 'new\\nline' }}|{{ \"esc \\\" q\" }}",
    "repr_values": "{{ messages[1] }}|{{ ['é', 'it\\'s', \"q\\\"\", 'both \\'\"', 'nl\\n', 'tab\\t', '\\x00', '\\u00a0', '\\u200b', 'ok😀'] }}|"
                   "{{ {'n': none, 't': true, 'f': 1.25, 'l': [1, (2, 3)]} }}|{{ namespace(a=1) }}|{{ messages[0].items() | list }}",
    "vars_and_undefined": "{{ bos_token }}|{{ eos_token }}|{{ extra_flag }}|{{ date_string | default('no date') }}|{{ missing_var }}|"
                          "{{ tools }}|{{ documents is none }}|{{ add_generation_prompt }}|{{ custom_list | join('+') }}|{{ custom_obj.k }}",
    "generation_prefix": "{%- for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{%- if add_generation_prompt %}assistant:{% endif %}",
}
FEATURE_VARS = {"vars_and_undefined": {"extra_flag": True, "date_string": "01 Jan 2025", "custom_list": ["a", 1, "b"],
                                       "custom_obj": {"k": "v"}}}
FEATURE_ERRORS = {  # templates whose render raises: the C side must fail with the same message
    "raise": ("{% if messages | length > 1 %}{{ raise_exception('Too many messages: ' ~ messages | length) }}{% endif %}", "Too many messages: 5"),
    "undefined_attr": ("{{ missing.attr }}", None),
    "bad_add": ("{{ 'a' + 1 }}", None),
    "ns_underscore": ("{% set ns = namespace() %}{% set ns._x = 1 %}", None),
    "list_append": ("{% set l = [] %}{{ l.append(1) }}", None),
}


# ---------------------------------------------------------------------------------------------------
# Random templates (seeded, so the fixtures are reproducible): nested blocks with every whitespace-control
# modifier between random text, and random expressions over literals, filters, tests and methods.
# Expressions whose jinja2 result is a Python artifact the C side does not mimic on purpose are not
# generated: |reverse (a reversed-iterator object), |e (Markup), '%' on strings, slices of constants
# (folded at compile time), and |int beyond 64 bits.
def random_structure(rng, depth, inloop=False):
    def text():
        return "".join(rng.choice([" ", "  ", "\t", "\n", "\n", "a", "b ", "\r\n", "\u00a0", "é"]) for _ in range(rng.randint(0, 6)))
    def lm():
        return rng.choice(["", "", "-", "+"])
    def vm():
        return rng.choice(["", "", "-"])
    parts = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        parts.append(text())
        if r < 0.25 or depth <= 0:
            v = rng.choice(["'x'", "1", "messages|length", "ns.n"] + (["m.role", "loop.index"] if inloop else []))
            parts.append("{{" + vm() + " " + v + " " + vm() + "}}")
        elif r < 0.4:
            parts.append("{#" + lm() + " c " + lm() + "#}")
        elif r < 0.6:
            cond = rng.choice(["true", "false"] + (["m.role == 'user'", "loop.first"] if inloop else []))
            parts.append("{%" + lm() + " if " + cond + " " + lm() + "%}" + random_structure(rng, depth - 1, inloop))
            if rng.random() < 0.4:
                parts.append("{%" + lm() + " else " + lm() + "%}" + random_structure(rng, depth - 1, inloop))
            parts.append("{%" + lm() + " endif " + lm() + "%}")
        elif r < 0.75:
            parts.append("{%" + lm() + " for m in messages[:2] " + lm() + "%}" + random_structure(rng, depth - 1, True)
                         + "{%" + lm() + " endfor " + lm() + "%}")
        elif r < 0.85:
            parts.append("{%" + lm() + " set ns.n = ns.n + 1 " + lm() + "%}")
        elif r < 0.92:
            parts.append("{%" + lm() + " raw " + rng.choice(["", "-"]) + "%}" + text() + "{{ r }}{% x %}" + text()
                         + "{%" + lm() + " endraw " + lm() + "%}")
        else:
            parts.append("{%" + lm() + " set s %}" + random_structure(rng, depth - 1, inloop) + "{%" + lm() + " endset "
                         + lm() + "%}{{ s | length }}")
    parts.append(text())
    return "".join(parts)


R_ATOMS = ["0", "1", "2", "3", "-1", "7", "300", "0.5", "2.25", "1e20", "1.5e-7", "'abc'", "'Héllo wörld'", "' pad '", "''",
           "\"it's\"", "none", "true", "false", "[1, 2, 3]", "['b', 'a']", "[]", "{'a': 1, 'b': 'x'}", "{}", "(1, 'a')",
           "messages[0]", "messages[1].content", "messages | length", "messages[2]['role']", "undefined_v", "'a,b;c'",
           "'ÉCOLE été'", "'\\n x\\t'", "3.0", "-2.5", "10", "'5'", "'1.5'"]
R_BIN = ["+", "-", "*", "/", "//", "**", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"]
R_FILT = ["length", "upper", "lower", "trim", "first", "last", "list", "string", "tojson", "join", "join(', ')",
          "default('d')", "float", "abs", "capitalize", "title", "replace('a', 'X')", "unique | list", "items | list",
          "tojson(indent=2)", "select | list", "map('upper') | list", "default(none, true)", "count",
          "indent(2, true)", "tojson(sort_keys=true)"]
R_TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence",
           "odd", "even", "divisibleby 3", "lower", "upper", "boolean", "true", "false", "eq 1", "in [1, 'abc']",
           "sameas none"]
R_METH = [".upper()", ".lower()", ".strip()", ".split()", ".split(',')", ".startswith('a')", ".endswith('c')",
          ".title()", ".capitalize()", ".replace('l', 'L')", ".find('l')", ".count('l')", ".items() | list",
          ".keys() | list", ".get('a')", ".get('z', 0)", ".lstrip(' a')", ".rsplit(',', 1)"]


def random_expr(rng, d):
    r = rng.random()
    if d <= 0 or r < 0.25:
        return rng.choice(R_ATOMS)
    if r < 0.5:
        return f"({random_expr(rng, d - 1)} {rng.choice(R_BIN)} {random_expr(rng, d - 1)})"
    if r < 0.64:
        return f"({random_expr(rng, d - 1)} | {rng.choice(R_FILT)})"
    if r < 0.74:
        neg = "not " if rng.random() < 0.3 else ""
        return f"({random_expr(rng, d - 1)} is {neg}{rng.choice(R_TESTS)})"
    if r < 0.84:
        return f"({random_expr(rng, d - 1)}){rng.choice(R_METH)}"
    if r < 0.89:
        idx = rng.choice(["0", "-1", "1", "'a'", "5"])
        return f"({random_expr(rng, d - 1)})[{idx}]"
    if r < 0.95:
        return f"({random_expr(rng, d - 1)} if {random_expr(rng, d - 1)} else {random_expr(rng, d - 1)})"
    return f"(not {random_expr(rng, d - 1)})"


def random_cases(tok, n_struct, n_expr):
    rng = __import__("random").Random(20240601)
    cases = []
    while len(cases) < n_struct:
        t = "{% set ns = namespace(n=0) %}" + random_structure(rng, 3) + rng.choice(["", "\n", "\n\n", "\r\n"])
        cases.append({"name": f"structure{len(cases)}", "template": t, "expected": render(tok, t, FEATURE_MSGS, False)})
    k = 0
    while k < n_expr:
        t = "{{ " + random_expr(rng, 3) + " }}"
        try:
            exp = render(tok, t, FEATURE_MSGS, False)
        except Exception:
            continue  # type errors and the like: only renders are compared here
        cases.append({"name": f"expr{k}", "template": t, "expected": exp})
        k += 1
    return cases


def make_tokenizer(bos, eos):
    vocab = {"<unk>": 0}
    for t in (bos, eos):
        if t is not None and t not in vocab:
            vocab[t] = len(vocab)
    kw = {}
    if bos is not None:
        kw["bos_token"] = bos
    if eos is not None:
        kw["eos_token"] = eos
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")), **kw)


def render(tok, template, msgs, agp, **kw):
    if not msgs:
        # apply_chat_template refuses empty conversations; render the same way it would
        kwargs = {**tok.special_tokens_map, **kw}
        out, _ = render_jinja_template([[]], chat_template=template, add_generation_prompt=agp, **kwargs)
        return out[0]
    return tok.apply_chat_template(msgs, chat_template=template, tokenize=False, add_generation_prompt=agp, **kw)


def nbytes(s):
    return len(s.encode("utf-8"))


ASCII_WS = " \t\n\r\f\v"


def expected_spans(tok, template, msgs, agp, full, **kw):
    """The progressive rule of ft_chat_render_spans, on transformers' renders. None if not prefix-consistent."""
    spans = []
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        a = render(tok, template, msgs[:i], True, **kw)
        b = render(tok, template, msgs[: i + 1], False, **kw)
        if not b.startswith(a) or not full.startswith(b):
            return None
        start, end = len(a), len(b)
        d = b[start:end]
        c = m.get("content") or ""
        min_end = start
        if c and d.find(c) >= 0:
            min_end = start + d.find(c) + len(c)
        elif c.strip() and d.find(c.strip()) >= 0:
            min_end = start + d.find(c.strip()) + len(c.strip())
        e = end
        while e > min_end and b[e - 1] in ASCII_WS:
            e -= 1
        spans.append([nbytes(full[:start]), nbytes(full[:e]), i])
    return spans


def generation_spans(tok, template, msgs, agp, **kw):
    kwargs = {**tok.special_tokens_map, **kw}
    rendered, idx = render_jinja_template([msgs], chat_template=template, add_generation_prompt=agp,
                                          return_assistant_tokens_mask=True, **kwargs)
    text = rendered[0]
    asst = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
    out = []
    for k, (s, e) in enumerate(idx[0]):
        out.append([nbytes(text[:s]), nbytes(text[:e]), asst[k] if len(asst) == len(idx[0]) else -1])
    return out


def token_entry(tok, style):
    if tok is None:
        return None
    return ADDED_TOKEN(tok) if style == "obj" else tok


def write_json(path, obj):
    """Compact JSON; a "cases" list gets one case per line so that diffs stay readable."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if isinstance(obj, dict) and "cases" in obj:
            head = {k: v for k, v in obj.items() if k != "cases"}
            f.write(json.dumps(head, ensure_ascii=False)[:-1] + (", " if head else "") + '"cases": [\n')
            f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in obj["cases"]))
            f.write("\n]}\n")
        else:
            json.dump(obj, f, ensure_ascii=False, indent=1)
            f.write("\n")


def template_cases(name, template, bos, eos):
    tok = make_tokenizer(bos, eos)
    cases = []
    for cname, msgs in CONVERSATIONS.items():
        for agp in (False, True):
            case = {"name": f"{cname}/agp={int(agp)}", "conversation": cname, "add_generation_prompt": agp}
            try:
                case["expected"] = render(tok, template, msgs, agp)
            except Exception as ex:  # jinja2 TemplateError from raise_exception
                case["error"] = str(ex)
                cases.append(case)
                continue
            if any(m["role"] == "assistant" for m in msgs) and msgs[0]["role"] != "assistant":
                if "{% generation %}" in template:
                    case["spans"] = generation_spans(tok, template, msgs, agp)
                else:
                    try:
                        sp = expected_spans(tok, template, msgs, agp, case["expected"])
                    except Exception:
                        sp = None
                    if sp is None:
                        case["spans_error"] = True
                    else:
                        case["spans"] = sp
            cases.append(case)
    # Llama-3.1 reads date_string: a case with it set as an extra variable
    if "date_string" in template:
        msgs = CONVERSATIONS["no_system"]
        cases.append({"name": "date_string_var", "conversation": "no_system", "add_generation_prompt": True,
                      "vars": {"date_string": "01 Jan 2025"},
                      "expected": render(tok, template, msgs, True, date_string="01 Jan 2025")})
    return cases


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    index, total = [], 0
    for name, (template, bos, eos, builtin, style) in TEMPLATES.items():
        cfg = {"tokenizer_class": "PreTrainedTokenizerFast"}
        if style == "list":
            cfg["chat_template"] = [{"name": "default", "template": template}, {"name": "tool_use", "template": TOOL_USE}]
        else:
            cfg["chat_template"] = template
        cfg["bos_token"] = token_entry(bos, style)
        cfg["eos_token"] = token_entry(eos, style)
        write_json(os.path.join(OUT, name, "tokenizer_config.json"), cfg)
        cases = template_cases(name, template, bos, eos)
        write_json(os.path.join(OUT, name, "cases.json"), {"builtin": builtin, "conversations": CONVERSATIONS, "cases": cases})
        index.append(name)
        total += len(cases)
        print(f"{name}: {len(cases)} cases, {sum('error' in c for c in cases)} errors, "
              f"{sum('spans' in c for c in cases)} with spans, {sum('spans_error' in c for c in cases)} non-prefix")

    # feature templates
    tok = make_tokenizer("<s>", "</s>")
    feats = []
    for fname, template in FEATURES.items():
        kw = FEATURE_VARS.get(fname, {})
        for agp in (False, True) if fname in ("generation_prefix", "vars_and_undefined") else (False,):
            case = {"name": f"{fname}/agp={int(agp)}", "template": template, "add_generation_prompt": agp, "vars": kw}
            case["expected"] = render(tok, template, FEATURE_MSGS, agp, **kw)
            if fname == "generation_prefix" and not agp:
                case["spans"] = expected_spans(tok, template, FEATURE_MSGS, agp, case["expected"])
            feats.append(case)
    for fname, (template, msg) in FEATURE_ERRORS.items():
        try:
            render(tok, template, FEATURE_MSGS, False)
            raise SystemExit(f"feature error case {fname} rendered without error")
        except SystemExit:
            raise
        except Exception as ex:
            feats.append({"name": f"error/{fname}", "template": template, "add_generation_prompt": False, "vars": {},
                          "error": msg if msg else "", "py_error": str(ex)})
    write_json(os.path.join(OUT, "features", "cases.json"), {"bos": "<s>", "eos": "</s>", "messages": FEATURE_MSGS,
                                                             "cases": feats})
    total += len(feats)
    print(f"features: {len(feats)} cases")

    rc = random_cases(tok, 300, 500)
    write_json(os.path.join(OUT, "random", "cases.json"), {"bos": "<s>", "eos": "</s>", "messages": FEATURE_MSGS, "cases": rc})
    total += len(rc)
    print(f"random: {len(rc)} cases")

    # loader fixtures
    d = os.path.join(OUT, "loader-jinja-file")
    write_json(os.path.join(d, "tokenizer_config.json"), {"bos_token": None, "eos_token": {"content": "<|im_end|>"}})
    with open(os.path.join(d, "chat_template.jinja"), "w", encoding="utf-8") as f:
        f.write(CHATML)
    d = os.path.join(OUT, "loader-special-tokens-map")
    write_json(os.path.join(d, "tokenizer_config.json"), {"chat_template": ZEPHYR})
    write_json(os.path.join(d, "special_tokens_map.json"), {"bos_token": {"content": "<s>"}, "eos_token": "</s>"})
    d = os.path.join(OUT, "loader-no-template")
    write_json(os.path.join(d, "tokenizer_config.json"), {"bos_token": "<s>", "eos_token": "</s>"})

    write_json(os.path.join(OUT, "index.json"), {"templates": index, "transformers": transformers.__version__})
    print(f"total {total} cases -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    sys.exit(main())
