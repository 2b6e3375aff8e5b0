"""`python -m ml {pull,train,eval,worker}`: the entry point a GPU machine runs."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ml.config import ConfigError, load_config
from ml.release import ReleaseError
from ml.stages import NotImplementedYet, get_stage


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)

    pull = sub.add_parser("pull", help="download and verify a release from the platform API")
    pull.add_argument("release", help="release name@version or id")
    pull.add_argument("--out", required=True)
    pull.add_argument("--api", help="platform base URL")

    train = sub.add_parser("train", help="run one training stage")
    train.add_argument("--stage", required=True, choices=["align", "sft", "dpo"])
    train.add_argument("--config", required=True, help="YAML file (see ml/configs/)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=10",
    )

    ev = sub.add_parser("eval", help="evaluate a trained model on a release's test split")
    ev.add_argument("--config", required=True)
    ev.add_argument("--set", dest="overrides", action="append", default=[])

    sub.add_parser("worker", help="take training jobs from the platform")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run a verb; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        if args.verb == "train":
            cfg = load_config(args.config, args.overrides)
            summary = get_stage(args.stage)(cfg)
            print(json.dumps({"summary": summary}, sort_keys=True))
            return 0
        if args.verb == "eval":
            from ml.evaluate import run_eval

            cfg = load_config(args.config, args.overrides)
            scores = run_eval(cfg)
            print(json.dumps({"vqa": scores["vqa"].get("all", {})}, sort_keys=True))
            return 0
        raise NotImplementedYet(f"`python -m ml {args.verb}` is not implemented yet")
    except NotImplementedYet as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, ReleaseError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
