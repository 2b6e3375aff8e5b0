"""LLM drafting of VQA items from reviewed pairs (no Django: it runs and is tested on its own).

`draft_items(source, client_or_none)` is the entry point; `LLMClient` talks to any
OpenAI-compatible server; with no client, deterministic templates draft instead.
"""

from .client import ClientStats, Completion, LLMClient, Prices
from .draft import Budget, Draft, Generator, draft_items
from .errors import BudgetExhausted, DraftingError, JunkOutput, TransportFailure, Usage
from .grounding import Grounding, check_grounding, drop_near_duplicates, similarity
from .prompting import PromptTemplate, applicable_types, get_prompt, prompt_versions
from .ratelimit import NoRateLimit, RedisTokenBucket
from .schema import DRAFT_SCHEMA, DraftOutput, parse_output
from .source import QUESTION_TYPES, DraftSource
from .template import TEMPLATE_VERSION

__all__ = [
    "DRAFT_SCHEMA",
    "QUESTION_TYPES",
    "TEMPLATE_VERSION",
    "Budget",
    "BudgetExhausted",
    "ClientStats",
    "Completion",
    "Draft",
    "DraftOutput",
    "DraftSource",
    "DraftingError",
    "Generator",
    "Grounding",
    "JunkOutput",
    "LLMClient",
    "NoRateLimit",
    "Prices",
    "PromptTemplate",
    "RedisTokenBucket",
    "TransportFailure",
    "Usage",
    "applicable_types",
    "check_grounding",
    "draft_items",
    "drop_near_duplicates",
    "get_prompt",
    "parse_output",
    "prompt_versions",
    "similarity",
]
