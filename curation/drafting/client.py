"""The LLM client: the `openai` package pointed at any OpenAI-compatible server.

vLLM, Ollama, llama.cpp and OpenAI itself all speak `/v1/chat/completions`, so one client covers
them; the Django side passes `LLM_BASE_URL`, `LLM_API_KEY` and `LLM_MODEL`. The openai client's
own retries are switched off (`max_retries=0`) and replaced by one loop here, so that every
retry is logged, its sleep is injectable in tests, and tokens spent on failed attempts are
counted against the budget.

With `vision=True` a prompt's vision variant goes out with the panel image as a `data:` URI in
an `image_url` content part, bounded in size first (`image.prepare_image`). A server that
refuses image content (a 4xx naming images, or a 400 left once structured outputs are ruled
out) gets the text prompt instead, and the client remembers it; so does an image that cannot
be brought within bounds. Either way the completion says so (`image="fallback"` and why), and
the stored item is labelled text-only.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import openai

from .errors import JunkOutput, TransportFailure, Usage
from .image import ImageUnusable, PreparedImage, prepare_image
from .prompting import PromptTemplate, get_prompt
from .schema import DraftOutput, parse_output, response_format
from .source import DraftSource

if TYPE_CHECKING:
    from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 429}  # plus every 5xx
#: Statuses with which a server may turn down image content rather than the whole request.
IMAGE_REFUSAL_STATUS = {400, 413, 415, 422}
IMAGE_WORDS = ("image", "vision", "multimodal", "multi-modal", "modalit")

#: What a completion did with the image: sent it, fell back to text, or had none to send.
IMAGE_SENT = "sent"
IMAGE_FALLBACK = "fallback"
IMAGE_NONE = ""


@dataclass(frozen=True)
class Prices:
    """Price per 1,000 tokens; zero for a self-hosted server."""

    prompt_per_1k: float = 0.0
    completion_per_1k: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return round(
            prompt_tokens * self.prompt_per_1k / 1000
            + completion_tokens * self.completion_per_1k / 1000,
            8,
        )


@dataclass
class Completion:
    """One validated reply and what it took to get it (over all attempts)."""

    output: DraftOutput
    usage: Usage
    attempts: int
    elapsed_s: float
    prompt_version: str = ""
    image: str = IMAGE_NONE
    image_note: str = ""  # why a vision prompt fell back to text
    image_bytes: int = 0


@dataclass
class ClientStats:
    """Counters for logs and the benchmark: how hard the server was pushed."""

    requests: int = 0
    retries: int = 0
    junk: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    images_sent: int = 0
    image_fallbacks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_SEMAPHORES: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()


def worker_semaphore(key: str, limit: int) -> threading.BoundedSemaphore:
    """One semaphore per server and limit in this process, however many clients are built.

    A Celery task may build a client per call; the limit must still hold for the whole worker.
    """
    with _SEMAPHORES_LOCK:
        return _SEMAPHORES.setdefault((key, limit), threading.BoundedSemaphore(limit))


class LLMClient:
    """Drafts one item per call, with timeouts, retries, a concurrency cap and a shared rate."""

    kind = "llm"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout: float = 60.0,
        max_attempts: int = 5,
        max_junk_attempts: int = 2,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        concurrency: int = 8,
        rate_limiter: RateLimiter | None = None,
        prices: Prices | None = None,
        structured_outputs: bool | None = None,
        temperature: float = 0.2,
        max_tokens: int = 700,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        semaphore: threading.BoundedSemaphore | None = None,
        vision: bool = False,
        image_max_bytes: int = 300_000,
        image_max_side: int = 1024,
    ) -> None:
        if not base_url or not model:
            raise ValueError("an LLM client needs a base_url and a model")
        if max_attempts < 1 or max_junk_attempts < 1 or concurrency < 1:
            raise ValueError("attempts and concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_junk_attempts = max_junk_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rate_limiter = rate_limiter
        self.prices = prices or Prices()
        # None = ask for structured outputs and fall back once if the server rejects them.
        self.structured_outputs = structured_outputs
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.semaphore = semaphore or worker_semaphore(self.base_url, concurrency)
        self.stats = ClientStats()
        # Vision drafting: prompts' vision variants, with the image bounded to these sizes.
        self.vision = vision
        self.image_max_bytes = image_max_bytes
        self.image_max_side = image_max_side
        # Set once the server turned image content down: later drafts go text-only at once.
        self.images_refused: str = ""
        # One pair's image goes out with each of its vision question types: prepare it once.
        self._prepare = lru_cache(maxsize=16)(self._prepare_uncached)
        self._openai = openai.OpenAI(
            base_url=self.base_url,
            # local servers ignore the key, but the openai package insists on one
            api_key=api_key or "not-needed",
            timeout=timeout,
            max_retries=0,
        )

    def __repr__(self) -> str:
        vision = ", vision" if self.vision else ""
        return f"LLMClient({self.model!r} at {self.base_url}{vision})"

    def close(self) -> None:
        self._openai.close()

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter; a server's Retry-After is a floor, capped."""
        delay = self.rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (retry - 1)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_cap))
        return delay

    def complete(self, prompt: PromptTemplate, source: DraftSource) -> Completion:
        """Draft one item of `prompt.question_type` for `source`, or raise a `DraftingError`.

        A vision `prompt` sends `source.image`; when that cannot be done it falls back to the
        type's current text prompt, and the completion records why.
        """
        image, image_note = IMAGE_NONE, ""
        image_bytes = 0
        messages: list[dict[str, Any]]
        if prompt.vision:
            prompt, messages, image_bytes, image_note = self._vision_messages(prompt, source)
            image = IMAGE_SENT if not image_note else IMAGE_FALLBACK
        else:
            messages = prompt.messages(source)
        usage = Usage()
        started = time.monotonic()
        transport_failures = junk = attempts = 0
        while True:
            attempts += 1
            try:
                response = self._send(messages, vision=image == IMAGE_SENT)
            except openai.APIStatusError as e:
                if image == IMAGE_SENT and self._refuses_image(e):
                    note = f"server_refused_image: http_{e.status_code}"
                    log.warning("%s refused the image (%s); drafting from the text", self, e)
                    if e.status_code != 413:  # too big is about this image, not all images
                        self.images_refused = note
                    prompt = get_prompt(prompt.question_type)
                    messages, image, image_note, image_bytes = (
                        prompt.messages(source),
                        IMAGE_FALLBACK,
                        note,
                        0,
                    )
                    with self.stats.lock:
                        self.stats.images_sent -= 1
                        self.stats.image_fallbacks += 1
                    continue
                if e.status_code == 400 and self._drop_structured_outputs():
                    log.info("%s rejected response_format json_schema; retrying without", self)
                    continue
                if not (e.status_code in RETRY_STATUS or e.status_code >= 500):
                    raise self._give_up(f"http_{e.status_code}", e, usage, attempts) from e
                error, reason, retry_after = e, f"http_{e.status_code}", _retry_after(e)
            except openai.APITimeoutError as e:
                error, reason, retry_after = e, "timeout", None
            except openai.APIConnectionError as e:
                error, reason, retry_after = e, "connection", None
            except (openai.APIError, ValueError) as e:
                # A 2xx body that is not a completion (a proxy's error page, a cut-off body):
                # the model never answered, so it is a transport problem and worth a retry.
                error, reason, retry_after = e, "bad_response", None
            else:
                usage.add(self._usage(response))
                try:
                    output = self._read(response, prompt.question_type, image == IMAGE_SENT)
                except JunkOutput as e:
                    junk += 1
                    with self.stats.lock:
                        self.stats.junk += 1
                    log.warning(
                        "%s: junk reply for pair %s (%s), attempt %d of %d: %s",
                        self.model,
                        source.pair_id,
                        prompt.question_type,
                        junk,
                        self.max_junk_attempts,
                        e,
                    )
                    if junk >= self.max_junk_attempts:
                        e.usage, e.attempts = usage, attempts
                        raise
                    continue
                return Completion(
                    output,
                    usage,
                    attempts,
                    time.monotonic() - started,
                    prompt_version=prompt.version,
                    image=image,
                    image_note=image_note,
                    image_bytes=image_bytes,
                )
            # A transport failure that may pass: back off, unless out of attempts.
            transport_failures += 1
            if transport_failures >= self.max_attempts:
                raise self._give_up(reason, error, usage, attempts) from error
            delay = self.backoff(transport_failures, retry_after)
            with self.stats.lock:
                self.stats.retries += 1
            log.warning(
                "%s: %s for pair %s (%s), attempt %d of %d; retrying in %.2fs",
                self.model,
                reason,
                source.pair_id,
                prompt.question_type,
                transport_failures,
                self.max_attempts,
                delay,
            )
            self.sleep(delay)

    def _vision_messages(
        self, prompt: PromptTemplate, source: DraftSource
    ) -> tuple[PromptTemplate, list[dict[str, Any]], int, str]:
        """(prompt, messages, image bytes, fallback note): the image if it can be sent."""
        note = self.images_refused
        if not note:
            try:
                image = self._prepare(source.image or b"")
            except ImageUnusable as e:
                note = f"image_{e.reason}: {e.detail}"
                log.warning("%s: pair %s: %s; drafting from the text", self, source.pair_id, note)
            else:
                with self.stats.lock:
                    self.stats.images_sent += 1
                return prompt, prompt.messages(source, image.data_uri), image.size_bytes, ""
        with self.stats.lock:
            self.stats.image_fallbacks += 1
        text_prompt = get_prompt(prompt.question_type)
        return text_prompt, text_prompt.messages(source), 0, note

    def _prepare_uncached(self, data: bytes) -> PreparedImage:
        return prepare_image(data, max_bytes=self.image_max_bytes, max_side=self.image_max_side)

    def _refuses_image(self, error: openai.APIStatusError) -> bool:
        """Is this 4xx about the image content rather than the request as a whole?

        A 413 is. A 400-class reply naming images is. A bare 400 is blamed on the image only
        once structured outputs are known to be accepted (else dropping those goes first).
        """
        if error.status_code not in IMAGE_REFUSAL_STATUS:
            return False
        if error.status_code == 413:
            return True
        text = f"{error.message} {error.body}".lower()
        if any(word in text for word in IMAGE_WORDS):
            return True
        return error.status_code == 400 and self.structured_outputs is not None

    def _drop_structured_outputs(self) -> bool:
        if self.structured_outputs is None:
            self.structured_outputs = False
            return True
        return False

    def _give_up(
        self,
        reason: str,
        error: BaseException,
        usage: Usage,
        attempts: int,
    ) -> TransportFailure:
        failure = TransportFailure(reason, f"{type(error).__name__}: {error}", usage=usage)
        failure.attempts = attempts
        log.error("%s: giving up after %d attempts: %s", self.model, attempts, failure)
        return failure

    @contextmanager
    def _slot(self) -> Iterator[None]:
        with self.semaphore:
            with self.stats.lock:
                self.stats.requests += 1
                self.stats.in_flight += 1
                self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
            try:
                yield
            finally:
                with self.stats.lock:
                    self.stats.in_flight -= 1

    def _send(self, messages: list[dict[str, Any]], vision: bool = False) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.structured_outputs is not False:
            kwargs["response_format"] = response_format(vision)
        with self._slot():
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            return self._openai.chat.completions.create(**kwargs)

    def _usage(self, response: Any) -> Usage:
        u = getattr(response, "usage", None)
        pt = int(getattr(u, "prompt_tokens", 0) or 0)
        ct = int(getattr(u, "completion_tokens", 0) or 0)
        return Usage(pt, ct, self.prices.cost(pt, ct))

    def _read(self, response: Any, question_type: str, vision: bool = False) -> DraftOutput:
        choices = getattr(response, "choices", None)
        if not choices:
            raise JunkOutput("empty", "the reply has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        if getattr(message, "refusal", None):
            raise JunkOutput("refusal", str(message.refusal)[:200])
        finish = getattr(choice, "finish_reason", None)
        if finish == "length":
            raise JunkOutput("truncated", "the reply hit the token limit")
        if finish == "content_filter":
            raise JunkOutput("refusal", "the server's content filter stopped the reply")
        return parse_output(getattr(message, "content", None), question_type, vision)


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: rare from LLM servers, and the backoff covers it
        return None
