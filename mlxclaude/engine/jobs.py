"""A generation as the engine thread runs it, whether alone or in a batch. Pure: no mlx.

The server hands the worker a `GenerationRequest`: the rendered prompt, the request, the output budget and
a `TextSink`, the per-request pipeline (stop sequences and reply parser, engine/turn.py) that turns model
text into what the client receives. The engine feeds the sink each decoded piece on its own thread and
stops generating once the sink says nothing more can reach the reply (`done`); the sink's items travel to
the requester through `Stream.emit`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Protocol

from mlxclaude.engine.backend import GenerationProgress, GenerationStats, RenderedPrompt
from mlxclaude.protocol.chat import ChatRequest


class TextSink(Protocol):
    @property
    def done(self) -> bool:
        """Nothing more the model says can reach the reply: the engine stops this generation."""
        ...

    def feed(self, text: str) -> list[Any]:
        """A decoded piece of model text in; what the requester receives for it out (a list of its own)."""
        ...

    def end(self, stats: GenerationStats) -> Iterable[Any]:
        """The generation is over (stats say why); the requester's last items."""
        ...


@dataclass
class GenerationRequest:
    prompt: RenderedPrompt
    chat: ChatRequest
    max_tokens: int
    sink: TextSink
    progress: GenerationProgress = field(default_factory=GenerationProgress)  # moved on by the engine


PRIORITY_MAIN = 0
PRIORITY_OTHER = 1


def priority_of(chat: ChatRequest) -> int:
    """The interactive main turn goes first when the batch is full; side, title and subagent traffic after."""
    return PRIORITY_MAIN if chat.kind == "main" else PRIORITY_OTHER


@dataclass
class Stream:
    """One generation in the engine: where its items go, how it is cancelled, whether the engine has it.

    `emit` and `close` are the worker's: they post to the requester's event loop. `tag` is the requester's
    record of it (the worker lists it in in_flight()); how far it has got is `request.progress`.
    """

    request: GenerationRequest
    emit: Callable[[list[Any]], None]
    close: Callable[[], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    tag: Any = None
    submitted: float = field(default_factory=time.perf_counter)
    running: bool = False  # taken by the engine: in the batch, or running alone
    started: Optional[float] = None
    first_token: Optional[float] = None
    finished: bool = False

    @property
    def chat(self) -> ChatRequest:
        return self.request.chat

    @property
    def progress(self) -> GenerationProgress:
        return self.request.progress

    @property
    def prompt_tokens(self) -> int:
        return len(self.request.prompt.tokens)

    @property
    def priority(self) -> int:
        return priority_of(self.request.chat)

    @property
    def wanted(self) -> bool:
        """Still worth generating for: not cancelled, and the sink takes more."""
        return not self.cancel.is_set() and not self.request.sink.done

    def text(self, piece: str) -> None:
        sink = self.request.sink
        if piece and not sink.done:
            items = sink.feed(piece)
            if items:
                self.emit(items)

    def end(self, stats: GenerationStats) -> None:
        """Hand the sink its end and close the stream (once)."""
        if self._finishing():
            try:
                items = list(self.request.sink.end(stats))
            except Exception as exc:
                items = [exc]
            if items:
                self.emit(items)
            self.close()

    def end_cancelled(self) -> None:
        """Its client went away: the sink's end with what there is (nothing generated)."""
        self.end(GenerationStats(prompt_tokens=self.prompt_tokens, finish_reason="cancelled"))

    def fail(self, exc: BaseException) -> None:
        if self._finishing():
            self.emit([exc])
            self.close()

    def _finishing(self) -> bool:
        """True the first time only: the stream is done from now on."""
        if self.finished:
            return False
        self.finished = True
        self.progress.phase = "done"
        return True


def run_alone(backend: Any, stream: Stream) -> None:
    """One generation through `backend.generate` with nothing else running (engines without a batcher,
    and requests a batcher cannot serve)."""
    request = stream.request
    stream.running, stream.started = True, time.perf_counter()
    stats = GenerationStats(prompt_tokens=len(request.prompt.tokens), finish_reason="cancelled")
    try:
        for item in backend.generate(request.prompt, request.chat, request.max_tokens, stream.cancel,
                                     progress=request.progress):
            if isinstance(item, GenerationStats):
                stats = item
            elif not request.sink.done:
                stream.text(item)
                if request.sink.done:
                    stream.cancel.set()  # the engine stops within a token and still reports its stats
    except Exception as exc:
        stream.fail(exc)
        return
    queued = stream.started - stream.submitted
    stats.ttft_seconds += queued  # as in a batch: the time a request waited for the engine counts
    if queued >= 0.001:
        stats.extra["queued_s"] = round(queued, 3)
    stream.end(stats)
