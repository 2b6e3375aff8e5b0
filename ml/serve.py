"""`python -m ml serve`: a small OpenAI-compatible server for a merged checkpoint, on transformers.

vLLM is the server for production GPUs, and a merged checkpoint (`python -m ml merge`) is a
plain transformers folder that `vllm serve DIR` takes as it is. This one exists beside it for
what vLLM does not cover: it runs on CPU with no CUDA build (so the test suite can serve a tiny
model trained in code and have the platform draft from it), and it serves a small deployment
(one workstation, a laptop demo) from the `ml` install alone, with no second inference stack.
It is deliberately small: the standard library's `http.server`, one model, one generation at a
time, and only the parts of the API the platform's drafting client uses:

- `GET /v1/models`: the one model, under `--name`;
- `POST /v1/chat/completions`: string or content-part messages, `image_url` parts as `data:`
  URIs (nothing is fetched from the network), `max_tokens`, `temperature`, `seed`, and
  `response_format` `json_schema` for flat objects of string (or string enum) properties,
  which it enforces while decoding as vLLM's structured outputs do: the keys and quoting are
  written by the server and the model writes only the values.

Errors come back as OpenAI error bodies: 400 for a malformed request or an image that does not
decode (or any image, for a checkpoint without an image processor), 404 for an unknown model or
route, 413 for a body over `--max-body-bytes`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 32 * 1024 * 1024
DEFAULT_MAX_NEW_TOKENS = 256
FIELD_TOKENS = 24  # a structured-outputs value longer than this is closed there


class RequestError(ValueError):
    """A request the server turns down, with the HTTP status to answer."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


@dataclass
class Prepared:
    """A chat request turned into what the model takes."""

    messages: list[dict[str, Any]]
    images: list[Any]
    max_tokens: int
    temperature: float
    seed: int | None
    schema: dict | None


@dataclass
class ServerStats:
    requests: int = 0
    images: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def decode_data_uri(url: str) -> Any:
    """A PIL image from a `data:image/...;base64,` URI; a `RequestError` otherwise."""
    from PIL import Image

    if not url.startswith("data:image/") or ";base64," not in url:
        raise RequestError(
            400, "image_url must be a data:image/...;base64 URI (nothing is fetched)"
        )
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError) as e:
        raise RequestError(400, f"the image does not decode: {e}") from None
    return image.convert("RGB")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    raise RequestError(400, "message content must be a string or a list of content parts")


def prepare(body: Any, model_name: str, vision: bool, max_new_tokens: int) -> Prepared:
    """Validate a chat-completions body; map OpenAI content parts to chat-template parts."""
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    if body.get("model") not in (None, model_name):
        raise RequestError(404, f"model {body.get('model')!r} is not served here", "not_found")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise RequestError(400, "messages must be a non-empty list")
    messages, images = [], []
    for m in raw_messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise RequestError(400, "each message needs a role of system, user or assistant")
        content = m.get("content")
        parts: list[dict[str, Any]] = []
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "text":
                    parts.append({"type": "text", "text": str(part.get("text", ""))})
                elif kind == "image_url":
                    if not vision:
                        raise RequestError(400, "this model takes no image input (text only)")
                    url = (part.get("image_url") or {}).get("url", "")
                    images.append(decode_data_uri(str(url)))
                    parts.append({"type": "image"})
                else:
                    raise RequestError(400, f"unsupported content part type {kind!r}")
        else:
            parts.append({"type": "text", "text": _text_of(content)})
        # The image first, as LLaVA and Qwen were trained (ml.chat.user_turn does the same).
        parts.sort(key=lambda p: p["type"] != "image")
        messages.append({"role": m["role"], "content": parts})
    try:
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 0)
        t = body.get("temperature")
        temperature = 1.0 if t is None else float(t)
        seed = None if body.get("seed") is None else int(body["seed"])
    except (TypeError, ValueError):
        raise RequestError(400, "max_tokens, temperature and seed must be numbers") from None
    if max_tokens < 0 or temperature < 0:
        raise RequestError(400, "max_tokens and temperature must not be negative")
    max_tokens = min(max_tokens or max_new_tokens, max_new_tokens)
    return Prepared(messages, images, max_tokens, temperature, seed, _schema(body))


def _schema(body: dict) -> dict | None:
    rf = body.get("response_format")
    if not rf or rf.get("type") in ("text", None):
        return None
    if rf.get("type") == "json_object":
        raise RequestError(400, "response_format json_object is not supported; send json_schema")
    if rf.get("type") != "json_schema":
        raise RequestError(400, f"unknown response_format type {rf.get('type')!r}")
    schema = (rf.get("json_schema") or {}).get("schema") or {}
    props = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(props, dict) or not props:
        raise RequestError(400, "json_schema must be an object with properties")
    for name, spec in props.items():
        if not isinstance(spec, dict) or spec.get("type") != "string":
            raise RequestError(400, f"property {name!r}: only string properties are supported")
    return schema


class Generator:
    """The loaded checkpoint and how to make it answer; one generation at a time."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", dtype: str = "float32") -> None:
        import torch
        from transformers import AutoModelForImageTextToText

        from ml.modeling import load_processor, torch_dtype

        self.torch = torch
        self.device = torch.device(device)
        self.processor = load_processor(model_dir)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.model = AutoModelForImageTextToText.from_pretrained(
            model_dir, dtype=torch_dtype(dtype), local_files_only=True
        ).to(self.device)
        self.model.eval()
        self.vision = hasattr(self.processor, "image_processor")
        self.lock = threading.Lock()
        self._banned, self._no_start = self._value_masks()

    def _value_masks(self) -> tuple[Any, Any]:
        """Token ids a JSON string value may never hold, and those it may not start with."""
        vocab = len(self.tokenizer)
        special = set(self.tokenizer.all_special_ids)
        banned, no_start = [], []
        for i in range(vocab):
            text = self.tokenizer.decode([i])
            if i in special or any(c in text for c in '"\\') or any(ord(c) < 32 for c in text):
                banned.append(i)
            elif not any(c.isalnum() for c in text):
                no_start.append(i)
        eos = self.model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        size = max(vocab, self.model.get_output_embeddings().weight.shape[0])
        banned_mask = self.torch.zeros(size, dtype=self.torch.bool)
        banned_mask[[b for b in banned if b not in eos_ids]] = True
        banned_mask[vocab:] = True
        start_mask = banned_mask.clone()
        start_mask[no_start + eos_ids] = True
        return banned_mask, start_mask

    def _inputs(self, text: str, images: list[Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        return {k: v.to(self.device) for k, v in self.processor(**kwargs).items()}

    def _generate(self, inputs: dict, max_new: int, temperature: float, mask: bool) -> list[int]:
        from transformers import LogitsProcessor, LogitsProcessorList

        masks = (self._banned, self._no_start)
        start = inputs["input_ids"].shape[1]

        class ValueOnly(LogitsProcessor):
            def __call__(self, input_ids, scores):
                m = masks[1] if input_ids.shape[1] == start else masks[0]
                return scores.masked_fill(m[: scores.shape[-1]].to(scores.device), float("-inf"))

        options: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": temperature > 0}
        if temperature > 0:
            options["temperature"] = temperature
        if mask:
            options["logits_processor"] = LogitsProcessorList([ValueOnly()])
        pad = self.tokenizer.pad_token_id
        with self.torch.no_grad():
            out = self.model.generate(**inputs, pad_token_id=pad, **options)
        new = out[0, start:].tolist()
        eos = self.model.generation_config.eos_token_id
        eos_ids = {eos} if isinstance(eos, int) else set(eos or [])
        return [t for t in new if t not in eos_ids and t != pad]

    def _score(self, inputs: dict, option: str) -> float:
        """Log-likelihood of `option` after the prompt: how an enum value is chosen."""
        ids = self.tokenizer(option, add_special_tokens=False, return_tensors="pt")["input_ids"]
        ids = ids.to(self.device)
        full = dict(inputs)
        full["input_ids"] = self.torch.cat([inputs["input_ids"], ids], dim=1)
        full["attention_mask"] = self.torch.ones_like(full["input_ids"])
        with self.torch.no_grad():
            logits = self.model(**full).logits[0, inputs["input_ids"].shape[1] - 1 : -1]
        logp = logits.float().log_softmax(-1)
        return float(logp.gather(1, ids[0].unsqueeze(1)).sum())

    def complete(self, req: Prepared) -> tuple[str, str, int, int]:
        """(content, finish_reason, prompt tokens, completion tokens) for one request."""
        from ml.chat import render

        prompt = render(self.processor, req.messages, add_generation_prompt=True)
        with self.lock:
            if req.seed is not None:
                self.torch.manual_seed(req.seed)
            first = self._inputs(prompt, req.images)
            prompt_tokens = int(first["input_ids"].shape[1])
            if req.schema is None:
                new = self._generate(first, req.max_tokens, req.temperature, mask=False)
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                finish = "length" if len(new) >= req.max_tokens else "stop"
                return text, finish, prompt_tokens, len(new)
            return self._structured(prompt, req, prompt_tokens)

    def _structured(self, prompt: str, req: Prepared, prompt_tokens: int):
        values: dict[str, str] = {}
        spent = 0
        props = req.schema["properties"]
        per_field = max(1, min(FIELD_TOKENS, req.max_tokens // max(1, len(props))))
        for name, spec in props.items():
            done = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in values.items())
            partial = "{" + done + (", " if done else "") + json.dumps(name) + ': "'
            inputs = self._inputs(prompt + partial, req.images)
            if spec.get("enum"):
                options = [str(o) for o in spec["enum"]]
                values[name] = max(options, key=lambda o: self._score(inputs, o))
                spent += 1
                continue
            new = self._generate(inputs, per_field, req.temperature, mask=True)
            spent += len(new)
            values[name] = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return json.dumps(values), "stop", prompt_tokens, spent


class ChatServer:
    """`with ChatServer(generator, name) as server:` serves on `server.url` until closed."""

    def __init__(
        self,
        generator: Generator,
        name: str,
        host: str = "127.0.0.1",
        port: int = 8000,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    ) -> None:
        self.generator = generator
        self.name = name
        self.max_body_bytes = max_body_bytes
        self.max_new_tokens = max_new_tokens
        self.stats = ServerStats()
        self.created = int(time.time())
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s " + format, self.address_string(), *args)

            def _json(self, code: int, data: Any) -> None:
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _error(self, e: RequestError) -> None:
                self._json(e.status, {"error": {"message": e.message, "type": e.kind}})

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                if path == "/v1/models":
                    model = {"id": server.name, "object": "model", "created": server.created}
                    self._json(200, {"object": "list", "data": [{**model, "owned_by": "mmskin"}]})
                elif path in ("/health", "/v1/health"):
                    self._json(200, {"status": "ok"})
                else:
                    self._error(RequestError(404, f"no route {self.path}", "not_found"))

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > server.max_body_bytes:
                    self.close_connection = True
                    self._error(RequestError(413, f"body over {server.max_body_bytes} bytes"))
                    return
                raw = self.rfile.read(length)
                if self.path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
                    self._error(RequestError(404, f"no route {self.path}", "not_found"))
                    return
                try:
                    body = json.loads(raw or b"null")
                    self._json(200, server.answer(body))
                except json.JSONDecodeError as e:
                    self._error(RequestError(400, f"the body is not JSON: {e}"))
                except RequestError as e:
                    self._error(e)
                except Exception as e:  # a model failure must still answer the client
                    log.exception("generation failed")
                    self._error(RequestError(500, f"{type(e).__name__}: {e}", "server_error"))

        return Handler

    def answer(self, body: Any) -> dict[str, Any]:
        req = prepare(body, self.name, self.generator.vision, self.max_new_tokens)
        with self.stats.lock:
            self.stats.requests += 1
            self.stats.images += len(req.images)
        content, finish, prompt_tokens, completion_tokens = self.generator.complete(req)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def start(self) -> ChatServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `serve` subcommand's options (ml/cli.py hooks this in)."""
    parser.add_argument("--model", required=True, help="a merged checkpoint (python -m ml merge)")
    parser.add_argument("--name", help="model name clients ask for (default: the folder's name)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY)


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint and serve until interrupted; prints the URL once listening."""
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} is not a checkpoint folder (no config.json)")
    generator = Generator(model_dir, device=args.device, dtype=args.dtype)
    server = ChatServer(
        generator,
        args.name or model_dir.resolve().name,
        host=args.host,
        port=args.port,
        max_body_bytes=args.max_body_bytes,
        max_new_tokens=args.max_new_tokens,
    )
    print(json.dumps({"serving": server.name, "url": server.url}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
