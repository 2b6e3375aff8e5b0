"""The one place that turns an example into the text a model sees.

Training and evaluation both call `render`, which uses the chat template shipped with the
model's processor. SkinVL's public scripts trained with one template and evaluated with
another; routing both through one function (and a test comparing them) rules that out.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


class ChatTemplateError(ValueError):
    """The processor has no chat template, or the template does not behave as assumed."""


def user_turn(text: str, with_image: bool = True) -> Message:
    """A user message: the image first (as LLaVA and Qwen were trained), then the text."""
    content: list[dict[str, Any]] = [{"type": "image"}] if with_image else []
    content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def assistant_turn(text: str) -> Message:
    """An assistant message."""
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def conversation(question: str, answer: str | None = None, system: str | None = None) -> list:
    """Messages for a single-image question, with the answer when training."""
    messages: list[Message] = []
    if system:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    messages.append(user_turn(question))
    if answer is not None:
        messages.append(assistant_turn(answer))
    return messages


def render(processor: Any, messages: list[Message], add_generation_prompt: bool = False) -> str:
    """Format messages with the processor's own chat template (train and eval alike)."""
    if getattr(processor, "chat_template", None) is None:
        raise ChatTemplateError(
            "the processor has no chat_template; save one with the model instead of "
            "formatting prompts by hand"
        )
    text = processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if isinstance(text, list):  # some versions return a batch for a single conversation
        text = text[0]
    return text


def prompt_for_generation(processor: Any, question: str, system: str | None = None) -> str:
    """The prompt evaluation generates from: the training text up to the answer."""
    return render(processor, conversation(question, system=system), add_generation_prompt=True)


def training_text(processor: Any, question: str, answer: str, system: str | None = None) -> str:
    """The full training text for one question and answer."""
    return render(processor, conversation(question, answer, system=system))
