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


def _leave_process_group() -> None:
    """Under torchrun: tear the process group down cleanly (no warnings, no hung peers)."""
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


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
    train.add_argument("--stage", required=True, choices=["align", "sft", "dpo", "sft_cls"])
    train.add_argument("--config", required=True, help="YAML file (see ml/configs/)")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=10",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in train.output_dir (a run that died)",
    )

    ev = sub.add_parser(
        "eval", help="evaluate a trained model on a release's test split or on benchmarks"
    )
    ev.add_argument("--config", required=True)
    ev.add_argument("--set", dest="overrides", action="append", default=[])
    from ml.bench_eval import add_benchmark_args

    add_benchmark_args(ev)

    merge = sub.add_parser("merge", help="merge a stage's adapter and projector into the base")
    merge.add_argument("--run", required=True, help="a stage's output folder (train.output_dir)")
    merge.add_argument("--out", required=True, help="folder for the merged checkpoint")
    merge.add_argument("--model", help="base model folder (default: model.path of the run)")
    merge.add_argument("--dtype", help="bfloat16 | float16 | float32 (default: the run's)")

    from ml.serve import add_arguments as serve_arguments

    serve_arguments(sub.add_parser("serve", help="serve a merged checkpoint, OpenAI-compatible"))

    worker = sub.add_parser(
        "worker", help="poll the platform for queued training runs, run them, report back"
    )
    _platform_args(worker)
    worker.add_argument("--config", help="base YAML for runs that name no config.base")
    worker.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="this machine's settings, applied over every run's config (e.g. model.path=...)",
    )
    worker.add_argument("--workdir", default="mlwork", help="releases and run artefacts go here")
    worker.add_argument(
        "--stages",
        default="align,sft,dpo,eval,sft_cls",
        help="comma-separated stages this worker takes",
    )
    worker.add_argument("--poll", type=float, default=30.0, help="seconds between polls")
    worker.add_argument(
        "--report-every", type=float, default=15.0, help="seconds between progress reports"
    )
    worker.add_argument("--once", action="store_true", help="take at most one run, then exit")
    worker.add_argument("--max-jobs", type=int, default=0, help="exit after this many runs")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run a verb; returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        if args.verb == "train":
            overrides = [*args.overrides, *(["train.resume=true"] if args.resume else [])]
            cfg = load_config(args.config, overrides)
            try:
                summary = get_stage(args.stage)(cfg)
            finally:
                _leave_process_group()
            print(json.dumps({"summary": summary}, sort_keys=True))
            return 0
        if args.verb == "eval":
            from ml.evaluate import run_eval

            cfg = load_config(args.config, args.overrides)
            if args.benchmark or args.suite:
                from ml.bench_eval import run_from_args

                print(json.dumps(run_from_args(cfg, args), sort_keys=True))
                return 0
            scores = run_eval(cfg)
            brief = {"vqa": scores["vqa"].get("all", {})}
            for task in ("modality_classification", "diagnosis_classification"):
                brief[task] = scores.get(task, {}).get("all", {}).get("classification", {})
            print(json.dumps(brief, sort_keys=True))
            return 0
        if args.verb == "pull":
            from ml.client import pull_release

            report = pull_release(
                _client(args), args.release, args.out, archive=args.archive, jobs=args.jobs
            )
            print(json.dumps(report.as_dict(), sort_keys=True))
            return 0
        if args.verb == "merge":
            from ml.merge import merge_run

            print(json.dumps(merge_run(args.run, args.out, args.model, args.dtype)))
            return 0
        if args.verb == "serve":
            from ml.serve import run as serve

            return serve(args)
        if args.verb == "worker":
            from ml.worker import WorkerOptions, run_worker

            if not args.token:  # every call would be refused: say so once, at start
                raise ConfigError("the worker needs --token (or MMSKIN_TOKEN): an ml_worker token")
            opts = WorkerOptions(
                config=args.config,
                overrides=args.overrides,
                workdir=args.workdir,
                stages=tuple(s.strip() for s in args.stages.split(",") if s.strip()),
                poll_s=args.poll,
                report_every_s=args.report_every,
                once=args.once,
                max_jobs=args.max_jobs,
            )
            handled = run_worker(_client(args), opts)
            print(json.dumps({"runs": handled}, sort_keys=True))
            return 0
        raise NotImplementedYet(f"`python -m ml {args.verb}` is not implemented yet")
    except NotImplementedYet as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, ReleaseError, ApiError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
