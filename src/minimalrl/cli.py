"""The `minimalrl` command: train, eval, algorithms, plot, compare.

Errors the user can fix (bad data, bad config, unknown names) print one clear line and exit 2;
nothing ends in a bare traceback for bad input.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (the CLI imports torch only for the commands that need it)
    from minimalrl.config import TrainConfig
    from minimalrl.train.trainer import Trainer

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""A shell's code for a command stopped by Ctrl-C (128 + SIGINT): a stopped run is unfinished."""


def _resume_mode(value: str) -> str:
    if value != "auto":
        raise argparse.ArgumentTypeError(f"expected nothing or 'auto', got {value!r}")
    return value


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a policy with one algorithm")
    p.add_argument("--algo", help="algorithm name (see `minimalrl algorithms`); default grpo")
    p.add_argument("--config", help="YAML file of TrainConfig fields")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config field (repeatable)",
    )
    p.add_argument("--output", required=True, help="run directory (metrics, checkpoints)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        type=_resume_mode,
        metavar="auto",
        help="continue from the latest checkpoint (an error if there is none); "
        "`--resume auto`: continue if there is one, else start",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="resume even if the config differs (the config's values then run)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="accuracy / avg@k / pass@k / maj@k on a benchmark")
    p.add_argument("--model", default="smollm2-135m-instruct", help="model name or folder")
    p.add_argument("--benchmark", required=True, help="benchmark name or jsonl path")
    p.add_argument("--k", type=int, default=1, help="samples per problem")
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sampling temperature (default: 0 for k=1, else 1.0)",
    )
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--limit", type=int, default=None, help="first N problems only")
    p.add_argument("--split", default="", help="split of a dataset folder (default: its only "
                   "split, else test)")  # fmt: skip
    p.add_argument("--question-field", default="", help="column of the question (as training's)")
    p.add_argument("--answer-field", default="", help="column of the gold answer")
    p.add_argument("--batch-size", type=int, default=32, help="sequences generated together")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--fallback-last-number",
        action=argparse.BooleanOptionalAction,
        default=True,  # = EvalSettings and TrainConfig (a test checks); not imported: torch
        help="judge a response with no \\boxed{} / #### / 'the answer is' by its last number "
        "(default: on, as in training)",
    )
    p.add_argument(
        "--rollout-backend", default="hf", help="what generates (as training's rollout_backend)"
    )
    p.add_argument("--output", help="write DIR/summary.json and DIR/samples.jsonl")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    p.add_argument("--no-progress", action="store_true")


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="draw the paper's curves for one or several runs")
    p.add_argument("runs", nargs="+", help="run directories (holding metrics.jsonl)")
    p.add_argument("--output", help="where the PNG files go (default: the first run)")


def _add_merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge a LoRA checkpoint into a full model folder")
    p.add_argument("adapter", help="a checkpoint's policy folder holding adapter_config.json")
    p.add_argument("--output", required=True, help="where the merged model is saved")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minimalrl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_eval(sub)
    sub.add_parser("algorithms", help="list the registered algorithms")
    _add_plot(sub)
    _add_merge(sub)
    from minimalrl.train.compare import add_compare_parser

    add_compare_parser(sub)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from minimalrl.config_file import build_config, parse_assignments
    from minimalrl.train.trainer import Trainer

    overrides: dict[str, object] = dict(parse_assignments(args.set))
    if args.algo:
        overrides["algo"] = args.algo
    cfg = build_config(args.config, overrides)
    start = time.perf_counter()
    trainer = Trainer(
        cfg, args.output, resume=args.resume, force=args.force, progress=not args.no_progress
    )
    try:
        records = trainer.run()
    finally:
        # The engine shut down now, not by a garbage collection at some later point, where
        # vLLM's teardown of its process-wide state would break the engine of a next run in
        # this process (`cli.main` called in a loop).
        trainer.policy.close()
    if trainer.stopped_early:
        done = records[-1]["iteration"] if records else trainer.start_iteration
        print(
            f"minimalrl train: stopped by Ctrl-C after iteration {done} of {cfg.iterations} "
            f"(checkpoint saved); to go on: {resume_command(args)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if trainer.ctx.is_main:
        print("\n".join(_train_summary(args, cfg, trainer, time.perf_counter() - start)))
    return 0


def _train_summary(
    args: argparse.Namespace, cfg: TrainConfig, trainer: Trainer, seconds: float
) -> list[str]:
    """The end-of-run lines (`minimalrl.eval.run_summary`), after drawing the run's plots."""
    from minimalrl.eval.metrics import read_metrics
    from minimalrl.eval.plots import plot_runs
    from minimalrl.eval.run_summary import summary_lines
    from minimalrl.policy.checkpoint import latest_checkpoint

    output = Path(args.output)
    plots = output / "plots"
    plot_runs([output], plots)
    verdicts = trainer.eval_verdicts  # a resumed run has no "before" of its own: no pairs
    paired = trainer.start_iteration == 0 and len(verdicts) >= 2
    more = shlex.join(["--set", f"iterations={2 * cfg.iterations}"])
    return summary_lines(
        output=output,
        iterations=cfg.iterations,
        seconds=seconds,
        first_iteration=trainer.start_iteration,
        eval_records=[r for r in read_metrics(output) if r.get("eval_accuracy") is not None],
        checkpoint=latest_checkpoint(output / "checkpoints"),
        eval_before=verdicts[0] if paired else None,
        eval_after=verdicts[-1] if paired else None,
        continue_command=f"{resume_command(args)} {more}",
        plots=plots,
        benchmark=cfg.eval_data or "gsm8k",
    )


def resume_command(args: argparse.Namespace) -> str:
    """The `minimalrl train` command line that continues the run of `args`."""
    argv = ["minimalrl", "train"]
    if args.algo:
        argv += ["--algo", args.algo]
    if args.config:
        argv += ["--config", args.config]
    for item in args.set:
        argv += ["--set", item]
    argv += ["--output", args.output, "--resume"]
    if args.no_progress:
        argv.append("--no-progress")
    return shlex.join(argv)


def cmd_eval(args: argparse.Namespace) -> int:
    import os

    import torch

    from minimalrl.data import load_data
    from minimalrl.eval.evaluate import EvalSettings, ResultWriter, evaluate, format_summary
    from minimalrl.model.fast.allocator import keep_freed_memory
    from minimalrl.model.loading import load_policy

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    keep_freed_memory()
    temperature = (
        args.temperature if args.temperature is not None else (0.0 if args.k == 1 else 1.0)
    )
    settings = EvalSettings(
        k=args.k,
        temperature=temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
        fallback_last_number=args.fallback_last_number,
        rollout_backend=args.rollout_backend,
    )
    problems = load_data(
        args.benchmark, question_field=args.question_field, answer_field=args.answer_field,
        split=args.split, prefer_split="test", limit=args.limit,
    )  # fmt: skip
    writer = ResultWriter(args.output) if args.output else None  # checked before the work
    try:
        model, tokenizer = load_policy(args.model)
        model.eval()
        result = evaluate(
            model,
            tokenizer,
            problems,
            settings,
            progress=not args.no_progress,
            on_samples=writer.add if writer else None,
        )
    finally:
        if writer is not None:
            writer.close()
    result.summary["model"] = args.model
    result.summary["benchmark"] = args.benchmark
    print(format_summary(result.summary))
    if writer is not None:
        writer.finish(result)
        print(f"wrote {args.output}/summary.json and samples.jsonl")
    return 0


def cmd_algorithms(args: argparse.Namespace) -> int:
    from minimalrl.algorithms import ALGORITHMS, describe_registry

    print(describe_registry())
    print()
    width = max(len(name) for name in ALGORITHMS)
    for name, alg in ALGORITHMS.items():
        print(f"{name:<{width}}  {alg.description}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from minimalrl.eval.plots import plot_runs

    out = Path(args.output or args.runs[0])
    for path in plot_runs([Path(r) for r in args.runs], out):
        print(path)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from minimalrl.model.loading import merge_lora

    print(merge_lora(args.adapter, args.output))
    return 0


def _error_line(err: Exception) -> str:
    """The message; for an OS error no narrower message was made for (a write that failed), the
    path and the cause in words."""
    if not isinstance(err, OSError) or isinstance(err, FileNotFoundError):
        return str(err)
    from minimalrl.output import describe_write_error

    where = Path(err.filename) if err.filename else Path.cwd()
    return f"{where}: {describe_write_error(err, where)}"


def main(argv: list[str] | None = None) -> int:
    from minimalrl.config import ConfigError
    from minimalrl.data import DataError
    from minimalrl.output import OutputError
    from minimalrl.policy.checkpoint import CheckpointError
    from minimalrl.policy.update import NonFiniteLossError
    from minimalrl.reward import RewardError
    from minimalrl.rollout.vllm_engine import EngineError

    args = build_parser().parse_args(argv)
    commands = {
        "train": cmd_train,
        "eval": cmd_eval,
        "algorithms": cmd_algorithms,
        "plot": cmd_plot,
        "merge": cmd_merge,
    }
    if args.command == "compare":
        from minimalrl.train.compare import cmd_compare

        commands["compare"] = cmd_compare
    try:
        return commands[args.command](args)
    except (ConfigError, DataError, CheckpointError, OutputError, OSError, ValueError) as err:
        print(f"minimalrl {args.command}: error: {_error_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        how = (
            f"; the last saved checkpoint is kept, to go on: {resume_command(args)}"
            if args.command == "train"
            else ""
        )
        print(f"minimalrl {args.command}: aborted by Ctrl-C{how}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (NonFiniteLossError, RewardError, EngineError) as err:
        print(
            f"minimalrl {args.command}: stopped: {err}; the last good checkpoint is kept",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
