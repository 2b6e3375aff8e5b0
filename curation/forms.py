"""HTML forms. Each turns typed fields into a service call's arguments and shows a refusal next
to the field it concerns; the rules themselves live in the services, so the API applies the
same ones."""

from __future__ import annotations

import re
from typing import Any

import yaml
from django import forms

from curation.models import TrainingRun
from curation.services import training as training_service

_EXPONENT_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _base_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in training_service.shipped_configs()]


class TrainingRunForm(forms.Form):
    """The release page's "queue a training run" form.

    `config` (after `is_valid()`) is the run's config, checked by
    `training_service.check_run_config`, the rules the API's create applies too; a key it
    refuses is shown on the field it came from (max steps, base, start-from run, overrides).
    """

    stage = forms.ChoiceField(choices=TrainingRun.Stage.choices)
    base = forms.ChoiceField(choices=_base_choices, label="Model config (ml/configs)")
    init_from_run = forms.IntegerField(required=False, label="Start from the artefacts of run")
    max_steps = forms.IntegerField(
        required=False,
        label="Max steps (blank: the config's epochs)",
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
        error_messages={"invalid": "Enter a whole number of steps, e.g. 500."},
    )
    overrides = forms.CharField(
        required=False,
        label="Overrides (one section.key=value per line, e.g. train.lr=2e-5)",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"}),
    )

    #: config key -> the field that set it (anything else came from the overrides)
    FIELD_OF = {"base": "base", "init_from_run": "init_from_run", "train.max_steps": "max_steps"}

    def __init__(self, *args: Any, runs=(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The start-from choices the page offers: this release's finished runs.
        self.done_runs = [r for r in runs if r.status == TrainingRun.Status.DONE]
        self.config: dict[str, Any] = {}

    def _parse_overrides(self, text: str) -> dict[str, dict[str, Any]]:
        """`section.key=value` lines (values read as YAML, as `ml`'s `--set` reads them)."""
        sections: dict[str, dict[str, Any]] = {}
        problems = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot or not section or not name or "." in name:
                problems.append(f"line {number}: {line!r} is not section.key=value")
                continue
            if section not in training_service.RUN_CONFIG_SECTIONS:
                known = ", ".join(training_service.RUN_CONFIG_SECTIONS)
                problems.append(f"line {number}: {section!r} is not a section ({known})")
                continue
            try:
                parsed = yaml.safe_load(value) if value.strip() else None
            except yaml.YAMLError:
                problems.append(f"line {number}: the value {value.strip()!r} cannot be read")
                continue
            if isinstance(parsed, str) and _EXPONENT_FLOAT.match(parsed):
                parsed = float(parsed)  # YAML 1.1 reads 2e-5 as a string; ml would coerce it
            if name in sections.setdefault(section, {}):
                problems.append(f"line {number}: {section}.{name} is set twice")
                continue
            sections[section][name] = parsed
        if problems:
            raise forms.ValidationError(problems)
        return sections

    def clean_overrides(self) -> dict[str, dict[str, Any]]:
        return self._parse_overrides(self.cleaned_data.get("overrides") or "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        config: dict[str, Any] = {"base": data["base"]}
        if data.get("init_from_run") is not None:
            config["init_from_run"] = data["init_from_run"]
        for section, values in data.get("overrides", {}).items():
            config[section] = dict(values)
        if data.get("max_steps") is not None:
            if "max_steps" in config.get("train", {}):
                self.add_error("overrides", "train.max_steps is set in Max steps already.")
                return data
            config.setdefault("train", {})["max_steps"] = data["max_steps"]
        try:
            self.config = training_service.check_run_config(config)
        except training_service.InvalidRunConfig as exc:
            field_of = dict(self.FIELD_OF)
            if data.get("max_steps") is None:  # then train.max_steps came from the overrides
                del field_of["train.max_steps"]
            for key, why in exc.errors.items():
                self.add_error(field_of.get(key, "overrides"), f"{key} {why}")
        return data
