"""Generate the real-vLLM tier's model: a tiny random Qwen2 with a locally trained tokenizer.

    <vllm venv>/bin/python tests/vllm/tiny_model.py OUT_DIR [--eos-bias 4.5] [--seed 0]

Runs with the vLLM virtualenv's torch, transformers and tokenizers (tests/vllm/install.py), in
about ten seconds, with nothing downloaded. The model is real enough for vLLM to run everything a
gateway relies on (tokenization, the Qwen/Hermes chat template, the Hermes tool parser, structured
outputs, context-length errors) and small enough for two CPU cores (hidden 128, 2 layers, ~0.6 M
parameters). Random weights rarely pick `<|im_end|>`, so answers would always run to the token
limit and come back `incomplete`; `--eos-bias` adds a constant logit to `<|im_end|>` so answers
end by themselves (4.5: about one token in 25 ends the answer; 0 gives the unbiased model the
benchmarks use). For the same reason a JSON string written under a grammar (a forced tool call's
free `string` argument) would rarely close; `QUOTE_BIAS` makes the `"` token likely enough that it
does after a few tokens.

How a bias works: residual dimension `CARRIER_DIM` holds the constant `CARRIER` in every token
embedding and no layer writes to it (that row of every `o_proj` and `down_proj` is zero), so after
the final RMSNorm it is the same for every position; the untied head reads it only in the rows of
the favoured tokens, which turns it into a fixed extra logit for each of them.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, INTERMEDIATE = 128, 2, 4, 2, 32, 256
VOCAB_SIZE = 2048
MAX_POSITIONS = 131072
CARRIER_DIM, CARRIER = 0, 1.0
QUOTE_BIAS = 4.0
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOOL_TAGS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
# Qwen2's own pre-tokenizer split: transformers 5 re-imposes it (and NFC) when it loads a qwen2
# tokenizer, so the saved tokenizer must use the same, or vLLM tokenizes differently from us.
PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                     r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

# The Qwen2.5 / Hermes prompt format: ChatML turns, tools listed in <tools>, calls written as
# <tool_call>{"name": ..., "arguments": ...}</tool_call>, results in <tool_response> (what vLLM's
# hermes tool parser reads back).
CHAT_TEMPLATE = r"""{%- set ns = namespace(system=none) -%}
{%- if messages and messages[0].role == 'system' -%}{%- set ns.system = messages[0].content -%}{%- endif -%}
{%- if tools or ns.system is not none -%}
{{- '<|im_start|>system\n' + (ns.system if ns.system is not none else 'You are a helpful assistant.') -}}
{%- if tools -%}
{{- '\n\n# Tools\n\nYou may call one or more functions. Function signatures are inside <tools></tools>:\n<tools>' -}}
{%- for tool in tools -%}{{- '\n' + (tool | tojson) -}}{%- endfor -%}
{{- '\n</tools>\n\nFor each call, write <tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>' -}}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' and loop.first -%}
{%- elif message.role == 'tool' -%}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' + message.content + '\n</tool_response>' -}}
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- elif message.role == 'assistant' -%}
{{- '<|im_start|>assistant' -}}
{%- if message.content -%}{{- '\n' + message.content -}}{%- endif -%}
{%- for call in message.tool_calls or [] -%}
{%- set fn = call.function if call.function is defined else call -%}
{{- '\n<tool_call>\n{"name": "' + fn.name + '", "arguments": '
    + (fn.arguments if fn.arguments is string else (fn.arguments | tojson)) + '}\n</tool_call>' -}}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message.role + '\n' + (message.content or '') + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"""


def corpus(seed: int) -> list[str]:
    """A few KB of text shaped like what the tests send: prose, code, JSON, tool tags."""
    rng = random.Random(seed)
    words = ("the gateway model answer stream tool call result file patch shell command list read write "
             "hello world please say short reply function arguments query weather city paris london "
             "json schema object string number true false null error context length token response "
             "input output item message user assistant system developer reasoning think done ok yes no "
             "apply edit line code test run build make python rust javascript value key name type").split()
    syllables = ("ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "po", "da", "fe", "gu", "hi", "ja", "we")
    words += tuple("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(1500))
    lines = []
    for _ in range(1200):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))).capitalize() + ".")
    for _ in range(80):
        key, value = rng.choice(words), rng.choice(words)
        lines.append(json.dumps({"name": key, "arguments": {value: rng.randint(0, 999), "q": key}}))
        lines.append(f"<tool_call>\n{json.dumps({'name': key, 'arguments': {'city': value}})}\n</tool_call>")
    lines += ["def main():\n    print('hello world')\n", "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch",
              "0123456789 {}[]()<>:;,.!?'\"\\/|@#$%^&*-_=+~`\t\n"]
    return lines


def build_tokenizer(out: Path, seed: int):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - len(SPECIAL) - len(TOOL_TAGS), special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token=None, bos_token=None, model_max_length=MAX_POSITIONS)
    # Single tokens, but not special ones: detokenizing skips special tokens, and vLLM's hermes
    # parser must see the tags in the text (as Qwen2.5 has them).
    fast.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in TOOL_TAGS])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def build_model(out: Path, tokenizer, eos_bias: float, seed: int) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                         num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
                         intermediate_size=INTERMEDIATE, max_position_embeddings=MAX_POSITIONS,
                         tie_word_embeddings=False, torch_dtype="float32", eos_token_id=eos_id,
                         bos_token_id=None, pad_token_id=tokenizer.pad_token_id)
    model = Qwen2ForCausalLM(config).float()
    with torch.no_grad():
        model.model.embed_tokens.weight[:, CARRIER_DIM] = CARRIER
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[CARRIER_DIM, :] = 0.0
            layer.mlp.down_proj.weight[CARRIER_DIM, :] = 0.0
        model.lm_head.weight[:, CARRIER_DIM] = 0.0
        normed = _carrier_after_norm(model)
        model.lm_head.weight[eos_id, CARRIER_DIM] = eos_bias / normed
        model.lm_head.weight[tokenizer.convert_tokens_to_ids('"'), CARRIER_DIM] = QUOTE_BIAS / normed
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(eos_token_id=[eos_id], bos_token_id=None, pad_token_id=tokenizer.pad_token_id).save_pretrained(out)


def _carrier_after_norm(model) -> float:
    """The carrier dimension's value after the final norm, for a typical prompt (the head weight
    is scaled by it so that `--eos-bias` is in logits)."""
    import torch

    ids = torch.arange(1, 65).unsqueeze(0)
    hidden = model.model(input_ids=ids).last_hidden_state
    return float(hidden[0, :, CARRIER_DIM].mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--eos-bias", type=float, default=4.5, help="extra logit for <|im_end|> (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(args.out, args.seed)
    build_model(args.out, tokenizer, args.eos_bias, args.seed)
    (args.out / "gateway-tiny-model.json").write_text(json.dumps({"eos_bias": args.eos_bias, "seed": args.seed}))


if __name__ == "__main__":
    main()
