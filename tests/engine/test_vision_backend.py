"""A vision model through mlx-vlm: images in user messages and tool results reach the processor, the prompt cache
keys image tokens by content, and bad images are a clear error."""

import threading

import pytest

from mlxclaude.engine.backend import GenerationStats
from mlxclaude.engine.cache.vision_prefix import content_key, shared_prefix
from mlxclaude.engine.images import ImageError
from mlxclaude.engine.vision_backend import with_image_runs
from mlxclaude.protocol.chat import ChatRequest, Sampling
from mlxclaude.protocol.request import to_chat_request
from mlxclaude.protocol.wire import parse_create_params
from support.images import image_block, image_part, png_base64

pytest.importorskip("mlx_vlm")
pytestmark = pytest.mark.mlx

IMAGE = 7


def test_content_key_names_each_run_of_image_tokens_by_its_image():
    tokens = [1, IMAGE, IMAGE, 2, IMAGE, IMAGE, 3]
    key = content_key(tokens, frozenset({IMAGE}), ["a", "b"])
    assert key == [1, ("a", 0), ("a", 1), 2, ("b", 0), ("b", 1), 3]
    other = content_key(tokens, frozenset({IMAGE}), ["a", "c"])
    assert shared_prefix(key, other) == 4  # the same ids, a different second image: the match ends at it


def test_image_runs_expand_the_guarded_markers_when_other_ids_differ():
    rendered = [1, 99, IMAGE, 2]  # 99: a special-token string the guard kept as text
    processed = [1, 5, IMAGE, IMAGE, IMAGE, 2]
    assert with_image_runs(rendered, processed, frozenset({IMAGE})) == [1, 99, IMAGE, IMAGE, IMAGE, 2]
    assert with_image_runs([1, IMAGE, 2], [1, IMAGE, IMAGE, 2], frozenset({IMAGE})) == [1, IMAGE, IMAGE, 2]


@pytest.fixture(scope="module")
def vlm(tiny_vlm_dir):
    from mlxclaude.engine.vision_backend import VisionBackend

    backend = VisionBackend(str(tiny_vlm_dir))
    yield backend
    backend.close()


def chat(*messages, max_tokens: int = 8) -> ChatRequest:
    has_images = any(isinstance(m["content"], list) and any(p["type"] == "image" for p in m["content"])
                     for m in messages)
    return ChatRequest(model="m", messages=list(messages), has_images=has_images, max_tokens=max_tokens,
                       sampling=Sampling(temperature=0.0))


def run(backend, request: ChatRequest) -> tuple[str, GenerationStats]:
    """Render and generate on a thread of its own, as the server does (render and the engine on other threads)."""
    result: dict = {}

    def render() -> None:
        result["prompt"] = backend.render(request)

    thread = threading.Thread(target=render)
    thread.start()
    thread.join()
    items = list(backend.generate(result["prompt"], request, request.max_tokens, threading.Event()))
    return "".join(item for item in items if isinstance(item, str)), items[-1]


def image_run_length(backend, tokens) -> int:
    return sum(1 for token in tokens if token in backend.image_token_ids)


def test_an_image_reaches_the_model_as_its_own_tokens(vlm):
    request = chat({"role": "user", "content": [image_part(1), {"type": "text", "text": "what is this?"}]})
    prompt = vlm.render(request)
    # 120x80 pixels resized to multiples of 28 (112x84): 8x6 patches of 14 pixels, merged 2x2 into 12 tokens
    assert image_run_length(vlm, prompt.tokens) == 12
    assert prompt.media is not None and prompt.media.pixel_values.shape[0] == 48
    assert prompt.media.extra["image_grid_thw"].tolist() == [[1, 6, 8]]
    text, stats = run(vlm, request)
    assert stats.prompt_tokens == len(prompt.tokens) and stats.generated_tokens >= 1


def test_an_image_in_a_tool_result_reaches_the_model():
    params = parse_create_params({"model": "m", "max_tokens": 8, "messages": [
        {"role": "user", "content": "look at the screenshot"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "a.png"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [image_block(3)]}]}]})
    request = to_chat_request(params)
    assert request.has_images
    from mlxclaude.engine.images import decode_images

    assert len(decode_images(request)) == 1


def test_tool_result_image_tokens_in_the_prompt(vlm):
    params = parse_create_params({"model": "m", "max_tokens": 8, "messages": [
        {"role": "user", "content": "look at the screenshot"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "a.png"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [image_block(3)]}]}]})
    prompt = vlm.render(to_chat_request(params))
    assert image_run_length(vlm, prompt.tokens) == 12


def test_the_next_turn_reuses_the_prefix_holding_the_same_image_and_answers_the_same(vlm, tiny_vlm_dir):
    first = {"role": "user", "content": [image_part(1), {"type": "text", "text": "what is this?"}]}
    reply, _ = run(vlm, chat(first))
    follow_up = chat(first, {"role": "assistant", "content": reply}, {"role": "user", "content": "and then?"})
    warm_text, warm = run(vlm, follow_up)
    image_end = max(i for i, t in enumerate(vlm.render(follow_up).tokens) if t in vlm.image_token_ids)
    assert warm.cached_tokens > image_end  # the prefix holding the image was reused

    vlm.prefix_cache.clear()
    cold_text, cold = run(vlm, follow_up)
    assert cold.cached_tokens == 0
    assert warm_text == cold_text  # greedy: the reused KV cache is the one a cold prefill builds


def test_a_different_image_of_the_same_size_is_not_reused(vlm):
    vlm.prefix_cache.clear()
    first = {"role": "user", "content": [image_part(1), {"type": "text", "text": "what is this?"}]}
    other = {"role": "user", "content": [image_part(2), {"type": "text", "text": "what is this?"}]}
    assert vlm.render(chat(first)).tokens == vlm.render(chat(other)).tokens  # the same ids…
    run(vlm, chat(first))
    _, stats = run(vlm, chat(other, max_tokens=4))
    image_start = min(i for i, t in enumerate(vlm.render(chat(other)).tokens) if t in vlm.image_token_ids)
    assert stats.cached_tokens <= image_start  # …but not the same image


def test_text_only_requests_run_on_a_vision_model(vlm):
    text, stats = run(vlm, chat({"role": "user", "content": "hello"}))
    assert stats.prompt_tokens > 0 and stats.finish_reason in ("stop", "length")


@pytest.mark.parametrize("part, says", [
    ({"type": "image", "media_type": "image/png", "data": "bm90IGFuIGltYWdl"}, "could not be decoded"),
    ({"type": "image", "media_type": "image/png", "data": "%%%"}, "not valid base64"),
    ({"type": "image", "url": "https://example.com/a.png"}, "is a URL"),
    ({"type": "image"}, "has no data"),
])
def test_a_bad_image_is_a_clear_error(vlm, part, says):
    with pytest.raises(ImageError, match=says):
        vlm.render(chat({"role": "user", "content": [{"type": "text", "text": "see"}, part]}))


def test_an_image_past_the_pixel_cap_is_refused_before_it_is_decoded(vlm, monkeypatch):
    from mlxclaude.engine import images

    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100 * 100)
    part = {"type": "image", "media_type": "image/png", "data": png_base64(0, (200, 100))}
    with pytest.raises(ImageError, match="image 1 is 200x100 pixels"):
        vlm.render(chat({"role": "user", "content": [part]}))
