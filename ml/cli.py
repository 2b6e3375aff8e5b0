"""`python -m ml {pull,train,eval,worker}`: the entry point a GPU machine runs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from ml.client import ApiError
from ml.config import ConfigError, load_config
from ml.release import ReleaseError
from ml.stages import NotImplementedYet, get_stage


def _platform_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("MMSKIN_URL"),
        help="platform base URL, e.g. https://skin.example.org (env MMSKIN_URL)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("MMSKIN_TOKEN"),
        help="API token of an ml_worker account (env MMSKIN_TOKEN; keeps it out of `ps`)",
    )


def _client(args: argparse.Namespace):
    from ml.client import PlatformClient

    if not args.url:
        raise ConfigError("--url (or MMSKIN_URL) is required")
    return PlatformClient(args.url, args.token)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)

    pull = sub.add_parser("pull", help="download and verify a release from the platform API")
    _platform_args(pull)
    pull.add_argument(
        "--release", required=True, help="NAME@VERSION, NAME (newest ready version) or ID"
    )
    pull.add_argument("--out", required=True, help="folder to download the release into")
    pull.add_argument(
        "--archive",
        action="store_true",
        help="fetch the release as one tar and unpack it (fewer requests for many images)",
    )
    pull.add_argument("--jobs", type=int, default=4, help="parallel file downloads")

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
        if args.verb == "pull":
            from ml.client import pull_release

            report = pull_release(
                _client(args), args.release, args.out, archive=args.archive, jobs=args.jobs
            )
            print(json.dumps(report.as_dict(), sort_keys=True))
            return 0
        raise NotImplementedYet(f"`python -m ml {args.verb}` is not implemented yet")
    except NotImplementedYet as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, ReleaseError, ApiError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
