"""The offline tiny model: builds deterministically, loads with mlx-lm, renders tools, generates."""

from __future__ import annotations

import json

import pytest
import tiny_model

mlx_lm = pytest.importorskip("mlx_lm")

pytestmark = pytest.mark.mlx

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return mlx_lm.load(str(tiny_model_dir))


def test_build_into_tmp_path_is_deterministic_and_loadable(tmp_path, tiny_model_dir):
    import mlx.core as mx

    out = tiny_model.build_tiny_model(tmp_path / "m")
    assert out == tmp_path / "m"
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    fresh, cached = mx.load(str(out / "model.safetensors")), mx.load(str(tiny_model_dir / "model.safetensors"))
    assert fresh.keys() == cached.keys()
    for name in fresh:
        assert fresh[name].dtype == mx.float32
        assert mx.allclose(fresh[name], cached[name], atol=1e-3).item(), name

    model, tokenizer, config = mlx_lm.load(str(out), return_config=True)
    assert config["model_type"] == "qwen2"
    assert config["vocab_size"] == len(tokenizer.get_vocab()) == tiny_model.DEFAULT_VOCAB_SIZE
    assert model.model.embed_tokens.weight.shape == (config["vocab_size"], config["hidden_size"])


def test_model_cache_key_tracks_parameters():
    assert tiny_model.model_cache_key() == tiny_model.model_cache_key(vocab_size=tiny_model.DEFAULT_VOCAB_SIZE)
    assert tiny_model.model_cache_key() != tiny_model.model_cache_key(num_layers=2)
    assert tiny_model.model_cache_key() != tiny_model.model_cache_key(seed=1)


def test_tokenizer_tokens_and_eos(loaded):
    _, tok = loaded
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    endoftext = tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.eos_token == "<|im_end|>"
    assert tok.pad_token == "<|endoftext|>"
    assert tok.bos_token is None
    assert tok.eos_token_ids == {im_end, endoftext}
    for token in tiny_model.SPECIAL_TOKENS + tiny_model.ADDED_TOKENS:
        assert len(tok.encode(token, add_special_tokens=False)) == 1, token

    # Byte-level BPE: arbitrary text round-trips; tool/think markers are not
    # "special", so they survive skip_special_tokens.
    text = 'Grüße, 世界! {"cmd": "ls -la"}\n\tdef f(x):\n        return x ** 2  # 🙂'
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    ids = tok.encode("<|im_start|>assistant\n<think>\nhm\n</think>\n<tool_call>\n{}\n</tool_call><|im_end|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "assistant\n<think>\nhm\n</think>\n<tool_call>\n{}\n</tool_call>"

    # mlx-lm infers the Hermes JSON tool parser and <think> reasoning from the files.
    assert tok.has_tool_calling and tok.tool_call_start == "<tool_call>" and tok.tool_call_end == "</tool_call>"
    assert tok.has_thinking and tok.think_start == "<think>"


def test_chat_template_renders_tools_and_a_tool_call_round_trip(loaded):
    _, tok = loaded
    messages = [
        {"role": "system", "content": "You are a test agent."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "reasoning_content": "SECRET-REASONING",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
        {"role": "system", "content": "Mid-conversation note."},
        {"role": "user", "content": [{"type": "text", "text": "Thanks!"}]},
    ]
    prompt = tok.apply_chat_template(messages, tools=[WEATHER], add_generation_prompt=True, tokenize=False)

    assert prompt.startswith("<|im_start|>system\nYou are a test agent.\n\n# Tools\n")
    assert "<tools>\n" + json.dumps(WEATHER, ensure_ascii=False) + "\n</tools>" in prompt
    assert "<tool_call></tool_call> XML tags" in prompt
    assert (
        "<|im_start|>assistant\nLet me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n'
    ) in prompt
    assert (
        "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\nrain\n</tool_response><|im_end|>\n"
    ) in prompt
    assert "<|im_start|>system\nMid-conversation note.<|im_end|>\n" in prompt
    assert "SECRET-REASONING" not in prompt
    assert prompt.endswith("<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n")

    ids = tok.apply_chat_template(messages, tools=[WEATHER], add_generation_prompt=True)
    assert ids == tok.encode(prompt, add_special_tokens=False)
    assert ids.count(tok.convert_tokens_to_ids("<tool_call>")) == 2 + 2  # two calls + two in the instructions


def test_chat_template_without_tools(loaded):
    _, tok = loaded
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert prompt == (
        f"<|im_start|>system\n{tiny_model.DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    prompt = tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": None, "tool_calls": []}],
        tokenize=False,
    )
    assert prompt == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"


@pytest.mark.parametrize("temp", [0.0, 1.0])
def test_stream_generate_returns_text(loaded, temp):
    import mlx.core as mx
    from mlx_lm.sample_utils import make_sampler

    model, tok = loaded
    mx.random.seed(0)
    ids = tok.apply_chat_template([{"role": "user", "content": "Say something."}], tools=[WEATHER], add_generation_prompt=True)
    responses = list(mlx_lm.stream_generate(model, tok, ids, max_tokens=8, sampler=make_sampler(temp=temp)))
    assert responses
    assert responses[-1].finish_reason in ("stop", "length")
    assert responses[-1].prompt_tokens == len(ids)
    assert "".join(r.text for r in responses)


def test_generation_usually_ends_on_its_own(loaded):
    """The EOS row is calibrated so replies end after a few dozen tokens."""
    import mlx.core as mx
    from mlx_lm.sample_utils import make_sampler

    model, tok = loaded
    ended = 0
    prompts = ["Hello there", "Write quicksort in Python.", "What's 2+2?", "Summarize README.md", "Thanks!"]
    for i, prompt in enumerate(prompts):
        mx.random.seed(i)
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
        last = None
        for last in mlx_lm.stream_generate(model, tok, ids, max_tokens=300, sampler=make_sampler(temp=1.0)):
            pass
        ended += last.finish_reason == "stop"
    assert ended >= 3
