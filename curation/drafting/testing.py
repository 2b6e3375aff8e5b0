"""A fake OpenAI-compatible server on 127.0.0.1, for tests and the drafting benchmark.

It speaks just enough of `/v1/chat/completions` for the real `openai` client, and can be
scripted per request: a good reply, junk, a 429 or 500, a dropped connection, or a reply slower
than the client's timeout. Every request body is recorded so tests can count retries.

Vision requests are checked as a real server would: every `image_url` part must be a `data:`
URI of a PNG or JPEG that decodes (else 400), within `max_image_bytes` (else 413); a server
built with `refuse_images=True` answers any image content with a 400, as a text-only model
does. What arrived is kept in `images`, and the request size in `request_bytes`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """A 200 completion. `content` may be a dict (sent as JSON text), a string or None."""

    content: Any = None
    finish_reason: str = "stop"
    refusal: str | None = None
    usage: tuple[int, int] | None = None  # (prompt, completion); None: counted from words
    delay: float = 0.0


@dataclass
class Status:
    """An error status with an OpenAI-style error body."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Garbage:
    """A 200 whose body is not a completion at all."""

    body: str = "<html>upstream gone</html>"
    delay: float = 0.0


@dataclass
class Drop:
    """Close the connection without answering."""

    delay: float = 0.0


Action = Reply | Status | Garbage | Drop

CAPTION = re.compile(r"^Figure caption: (.*)$", re.M)
DATA_URI = re.compile(r"^data:(?P<mime>image/(?:png|jpeg));base64,(?P<data>.+)$", re.S)


SEEN_KEY = "_fake_seen_images"  # where check_images leaves what it decoded, for the responder


class BadImage(ValueError):
    """An image part a real server would refuse."""


@dataclass(frozen=True)
class SeenImage:
    """An image as the fake server decoded it."""

    mime: str
    size_bytes: int
    width: int
    height: int
    colour: str  # the dominant channel of the mean pixel: "red", "green" or "blue"


def user_text(body: dict) -> str:
    """The user message's text, whether its content is a string or a list of parts."""
    user = next((m["content"] for m in body.get("messages", []) if m["role"] == "user"), "")
    if isinstance(user, list):
        return "\n".join(p.get("text", "") for p in user if p.get("type") == "text")
    return user


def image_urls(body: dict) -> list[str]:
    """The URL of every `image_url` content part in the request."""
    urls = []
    for m in body.get("messages", []):
        if isinstance(m.get("content"), list):
            for part in m["content"]:
                if part.get("type") == "image_url":
                    urls.append(str((part.get("image_url") or {}).get("url", "")))
    return urls


def decode_image(url: str) -> SeenImage:
    """Decode a `data:` URI image as a server must before the model can see it."""
    from PIL import Image, ImageStat

    m = DATA_URI.match(url)
    if not m:
        raise BadImage(f"not a base64 PNG/JPEG data: URI ({url[:40]!r})")
    try:
        raw = base64.b64decode(m["data"], validate=True)
        img = Image.open(io.BytesIO(raw))
        img.load()
    except (binascii.Error, OSError, ValueError) as e:
        raise BadImage(f"the image does not decode: {e}") from None
    # The mean colour of a box-reduced copy: all a test needs, and cheap at 32 in flight.
    small = img.reduce(max(1, min(img.size) // 16))
    mean = ImageStat.Stat(small if small.mode == "RGB" else small.convert("RGB")).mean
    colour = ("red", "green", "blue")[max(range(3), key=lambda i: mean[i])]
    return SeenImage(m["mime"], len(raw), img.width, img.height, colour)


def echo_reply(body: dict, n: int) -> Reply:
    """A valid draft whose answer quotes the prompt's caption, so it is grounded.

    Shown an image, it also says what colour the image mostly is (so a test can tell it was
    seen) and gives a `basis` of "both".
    """
    user = user_text(body)
    m = CAPTION.search(user)
    caption = m.group(1).strip() if m else "no caption"
    answer = f"Yes, {caption}" if "yes/no" in user else caption
    reply = {"question": f"Question number {n} on this image?", "answer": answer}
    reply["evidence"] = caption
    urls = image_urls(body)
    if urls:
        # The server decoded it already (check_images); decode here only when called alone.
        seen = body.get(SEEN_KEY, [None])[0] or decode_image(urls[0])
        reply["answer"] = f"{answer} The lesion looks mostly {seen.colour}."
        reply["basis"] = "both"
    return Reply(reply)


class FakeLLMServer:
    """Start with `with FakeLLMServer() as server:`; point a client at `server.url`."""

    def __init__(
        self,
        *,
        responder: Callable[[dict, int], Action] = echo_reply,
        latency: float = 0.0,
        reject_json_schema: bool = False,
        refuse_images: bool = False,
        max_image_bytes: int = 20 * 1024 * 1024,
    ) -> None:
        self.responder = responder
        self.latency = latency
        self.reject_json_schema = reject_json_schema
        self.refuse_images = refuse_images
        self.max_image_bytes = max_image_bytes
        self.requests: list[dict] = []
        self.request_bytes: list[int] = []
        self.images: list[SeenImage] = []
        self.request_times: list[float] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._script: deque[Action] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, actions: Iterable[Action]) -> None:
        """Queue actions for the next requests; after them the responder answers again."""
        with self._lock:
            self._script.extend(actions)

    def start(self) -> FakeLLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(raw or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.request_bytes.append(len(raw))
                    server.request_times.append(time.monotonic())
                    n = len(server.requests)
                    action = server._script.popleft() if server._script else None
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    self._answer(body, n, action)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, body: dict, n: int, action: Action | None) -> None:
                refusal = server.check_images(body)
                if refusal is not None:
                    code, message = refusal
                    if server._stopping.wait(server.latency):
                        return
                    self._json(code, {"error": {"message": message, "type": "invalid_request"}})
                    return
                if action is None:
                    action = server.responder(body, n)
                rf = body.get("response_format") or {}
                if server.reject_json_schema and rf.get("type") == "json_schema":
                    action = Status(400)
                if server._stopping.wait(server.latency + action.delay):
                    return
                if isinstance(action, Drop):
                    self.close_connection = True
                    return
                if isinstance(action, Garbage):
                    self._send(200, action.body.encode(), "application/json")
                    return
                if isinstance(action, Status):
                    self._json(
                        action.code,
                        {"error": {"message": f"fake {action.code}", "type": "fake"}},
                        action.headers,
                    )
                    return
                self._json(200, server.completion(body, action, n))

            def _json(self, code: int, data: Any, headers: dict[str, str] | None = None) -> None:
                self._send(code, json.dumps(data).encode(), "application/json", headers)

            def _send(
                self, code: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (its timeout)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is expected here

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def check_images(self, body: dict) -> tuple[int, str] | None:
        """(status, message) when a real server would turn the request's images down."""
        urls = image_urls(body)
        if not urls:
            return None
        if self.refuse_images:
            return 400, "Image input is not supported by this model (text-only)."
        seen = []
        for url in urls:
            try:
                image = decode_image(url)
            except BadImage as e:
                return 400, f"Invalid image_url content: {e}"
            if image.size_bytes > self.max_image_bytes:
                return 413, f"Image of {image.size_bytes} bytes exceeds {self.max_image_bytes}."
            seen.append(image)
        with self._lock:
            self.images.extend(seen)
        body[SEEN_KEY] = seen
        return None

    def completion(self, body: dict, reply: Reply, n: int) -> dict:
        content = reply.content
        if isinstance(content, dict | list):
            content = json.dumps(content)
        if reply.usage is None:
            prompt = " ".join(
                m["content"] if isinstance(m.get("content"), str) else user_text(body)
                for m in body.get("messages", [])
            )
            # An image costs prompt tokens too: a flat 576 (LLaVA-1.5's count) per image.
            tokens = len(prompt.split()) + 576 * len(image_urls(body))
            usage = (tokens, len(str(content or "").split()))
        else:
            usage = reply.usage
        return {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": reply.refusal},
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": usage[0] + usage[1],
            },
        }

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
