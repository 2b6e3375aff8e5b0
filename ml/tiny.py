"""Tiny randomly initialised models and processors, built in code.

Tests and smoke runs need the real architectures (so the collator, LoRA targets and freezing
are exercised) without downloading anything. The tokenizer is trained on the fly with
`tokenizers`; the chat templates mimic each family's published format.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

LLAVA_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}USER: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% elif m['role'] == 'assistant' %}ASSISTANT: "
    "{% for c in m['content'] %}{{ c['text'] }}{% endfor %}</s>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SPECIAL_TOKENS = [
    "<unk>",
    "<s>",
    "</s>",
    "<pad>",
    "<image>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

BASE_TEXT = [
    "USER: ASSISTANT: system user assistant",
    "Describe the findings in this image. What is the diagnosis? Is this benign? yes no",
    "clinical dermoscopic pathological melanoma nevus psoriasis eczema carcinoma lesion",
]

TINY_FAMILIES = ("llava", "qwen2_5_vl")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `texts`, with the families' special tokens."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([*BASE_TEXT, *texts], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens=SPECIAL_TOKENS[4:],
    )


def tiny_model_config(family: str, tokenizer: PreTrainedTokenizerFast):
    """A few-layer config of the family's real architecture."""
    vocab = len(tokenizer)
    if family == "llava":
        from transformers import LlavaConfig

        return LlavaConfig(
            vision_config={
                "model_type": "clip_vision_model",
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 28,
                "patch_size": 14,
                "projection_dim": 32,
            },
            text_config={
                "model_type": "llama",
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "vocab_size": vocab,
                "max_position_embeddings": 512,
                "pad_token_id": tokenizer.pad_token_id,
                "bos_token_id": tokenizer.bos_token_id,
                "eos_token_id": tokenizer.eos_token_id,
            },
            image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
            vision_feature_layer=-2,
            vision_feature_select_strategy="default",
            image_seq_length=4,
        )
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        return Qwen2_5_VLConfig(
            vision_config={
                "depth": 2,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_heads": 2,
                "out_hidden_size": 64,
                "patch_size": 14,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "window_size": 56,
                "fullatt_block_indexes": [1],
            },
            text_config={
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "vocab_size": vocab,
                "max_position_embeddings": 1024,
                "rope_parameters": {
                    "rope_type": "default",
                    "rope_theta": 10000.0,
                    "mrope_section": [2, 3, 3],
                },
                "pad_token_id": tokenizer.pad_token_id,
                "bos_token_id": tokenizer.bos_token_id,
                "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
            },
            image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
            video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
            vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
            vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        )
    raise ValueError(f"no tiny config for family {family!r}; known: {TINY_FAMILIES}")


def tiny_processor(family: str, tokenizer: PreTrainedTokenizerFast):
    """The family's processor around the tiny tokenizer, using the PIL image backends."""
    if family == "llava":
        from transformers import LlavaProcessor
        from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

        image_processor = LlavaImageProcessorPil(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
        )
        return LlavaProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            patch_size=14,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
            chat_template=LLAVA_TEMPLATE,
        )
    if family == "qwen2_5_vl":
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil,
        )

        # 56x56 pixels -> 4x4 patches of 14 -> 2x2 merged -> 4 image tokens.
        image_processor = Qwen2VLImageProcessorPil(
            size={"shortest_edge": 56 * 56, "longest_edge": 56 * 56}, patch_size=14, merge_size=2
        )
        from ml.modeling import image_only_qwen_processor_class

        return image_only_qwen_processor_class()(
            image_processor=image_processor, tokenizer=tokenizer, chat_template=CHATML_TEMPLATE
        )
    raise ValueError(f"no tiny processor for family {family!r}; known: {TINY_FAMILIES}")


def build_tiny(family: str, texts: Iterable[str] = (), seed: int = 0, dtype=torch.float32):
    """(model, processor) for a tiny random model of `family`."""
    from transformers import AutoModelForImageTextToText

    tokenizer = train_tokenizer(texts)
    processor = tiny_processor(family, tokenizer)
    config = tiny_model_config(family, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    return model, processor


def save_tiny(family: str, out_dir, texts: Iterable[str] = (), seed: int = 0) -> None:
    """Write a tiny model and its processor to `out_dir`, loadable like a real checkpoint."""
    model, processor = build_tiny(family, texts, seed=seed)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
