"""Experiment trackers: every record of metrics.jsonl mirrored to TensorBoard, W&B, Trackio, MLflow.

metrics.jsonl is the record; a tracker is a mirror of it. Each tracker named in `report_to` gets
the run's config once and then every number of every record, at the record's iteration as its
step (0 is the initial evaluation). A tracker that fails, at the start or mid-run (a full disk, a
server gone), warns once and gets nothing more; the run goes on. W&B, Trackio and MLflow are
optional extras (`pip install 'minimalrl[wandb]'`...); naming one that is not installed is a
config error that names the extra.

Where each writes (none of them needs a server; each reads its own environment to reach one):
- tensorboard: OUTPUT/tensorboard.
- wandb: OUTPUT/wandb/ (`WANDB_MODE=offline`: a local run that `wandb sync` uploads later;
  online with `WANDB_API_KEY`, `WANDB_BASE_URL` for a server of your own, `WANDB_ENTITY`).
- trackio: its local store (`TRACKIO_DIR`, default ~/.cache/huggingface/trackio);
  `TRACKIO_SPACE_ID` or `TRACKIO_SERVER_URL` sends it to a Space or a server.
- mlflow: `MLFLOW_TRACKING_URI` (a server, `sqlite:///path.db`, or a `file:` store), default
  MLflow's own: sqlite:///mlflow.db in the working folder.

A resumed run continues the same tracker runs: their ids are kept in OUTPUT/trackers.json.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

TRACKERS = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "trackio": "trackio",
    "mlflow": "mlflow",
}
"""Tracker name -> the module it needs (W&B, Trackio and MLflow: the extra of the same name)."""
IDS_FILE = "trackers.json"


class TrackerWarning(RuntimeWarning):
    """A tracker failed; the run goes on without it (metrics.jsonl holds every record)."""


def missing_tracker(name: str) -> str | None:
    """Why tracker `name` cannot run here (unknown, or its package is not installed), or None."""
    if name not in TRACKERS:
        return f"report_to: unknown tracker {name!r}; choose from {', '.join(TRACKERS)}"
    if importlib.util.find_spec(TRACKERS[name]) is None:
        return (
            f"report_to: {name} is not installed: pip install 'minimalrl[{name}]' "
            f"(or bash scripts/setup.sh {name})"
        )
    return None


@dataclass(frozen=True)
class TrackedRun:
    """What the trackers are told about a run."""

    output: Path
    name: str
    """The run's name in the trackers (the output folder's name unless set)."""
    group: str = ""
    """A group name ("" = none): `minimalrl compare` groups a run's seeds under the run's name."""
    project: str = "minimalrl"
    """W&B and Trackio project, MLflow experiment."""
    config: dict = field(default_factory=dict)


class Tracker(Protocol):
    run_id: str
    """What continues this tracker's run on resume (kept in OUTPUT/trackers.json)."""

    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def numbers(record: dict) -> dict[str, float]:
    """The numbers of a metrics record, as the trackers get them: every int, float and bool (as
    0/1) but the step itself; None (an unmeasured value) is left out."""
    return {
        key: float(value)
        for key, value in record.items()
        if key != "iteration" and isinstance(value, int | float)
    }


class Trackers:
    """The trackers of one run: each gets every record; one that fails is dropped with a warning."""

    def __init__(self, names: tuple[str, ...] | list[str], run: TrackedRun, *, resume: bool):
        ids = _read_ids(run.output) if resume else {}
        self._live: dict[str, Tracker] = {}
        for name in dict.fromkeys(names):  # each once, in order
            self._guard(name, "could not start", lambda n=name: self._start(n, run, ids.get(n)))
        ids = {n: t.run_id for n, t in self._live.items() if t.run_id}
        if ids:
            _write_ids(run.output, ids)

    @property
    def names(self) -> list[str]:
        """The trackers still receiving records."""
        return list(self._live)

    def _start(self, name: str, run: TrackedRun, run_id: str | None) -> None:
        self._live[name] = _OPEN[name](run, run_id)

    def log(self, record: dict) -> None:
        values, step = numbers(record), int(record.get("iteration", 0))
        for name, tracker in list(self._live.items()):
            self._guard(name, "failed", lambda t=tracker: t.log(values, step))

    def close(self) -> None:
        for name, tracker in list(self._live.items()):
            self._guard(name, "could not finish", tracker.close)
        self._live.clear()

    def _guard(self, name: str, what: str, call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except Exception as err:  # any failure of a mirror: the run goes on
            self._live.pop(name, None)
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            warnings.warn(
                f"tracker {name} {what} ({type(err).__name__}: {first}); it gets nothing more "
                "in this run, metrics.jsonl holds every record",
                TrackerWarning,
                stacklevel=3,
            )


def _read_ids(output: Path) -> dict[str, str]:
    try:
        return dict(json.loads((output / IDS_FILE).read_text()))
    except (OSError, ValueError):
        return {}


def _write_ids(output: Path, ids: dict[str, str]) -> None:
    with contextlib.suppress(OSError):  # without it a resume starts new tracker runs
        (output / IDS_FILE).write_text(json.dumps(ids, indent=1) + "\n")


# --------------------------------------------------------------------- the trackers
class _TensorBoard:
    run_id = ""  # (its event files simply continue)

    def __init__(self, run: TrackedRun, run_id: str | None):
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(run.output / "tensorboard"))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class _Wandb:
    def __init__(self, run: TrackedRun, run_id: str | None):
        import wandb

        self.run_id = run_id or uuid.uuid4().hex[:16]
        self._run = wandb.init(
            project=run.project,
            name=run.name,
            group=run.group or None,
            config=run.config,
            dir=str(run.output),
            id=self.run_id,
            resume="allow",
            settings=wandb.Settings(console="off", quiet=True),
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._run.log(metrics, step=step)

    def close(self) -> None:
        self._run.finish()


class _Trackio:
    def __init__(self, run: TrackedRun, run_id: str | None):
        import trackio

        self.run_id = run.name  # trackio continues the latest run of a name (resume="allow")
        with contextlib.redirect_stdout(sys.stderr):  # its banner, off the run's own output
            self._run = trackio.init(
                project=run.project,
                name=run.name,
                group=run.group or None,
                config=run.config,
                resume="allow" if run_id else "never",  # a fresh run: a new one, same name
                embed=False,
                auto_log_cpu=False,
                auto_log_gpu=False,
            )

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._run.log(metrics, step=step)

    def close(self) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            self._run.finish()


class _Mlflow:
    """Through `MlflowClient` (no global active run, so several runs in one process do not mix)."""

    def __init__(self, run: TrackedRun, run_id: str | None):
        from mlflow.entities import Param, RunStatus
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        self._client = client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI") or None)
        experiment = client.get_experiment_by_name(run.project)
        experiment_id = (
            experiment.experiment_id if experiment else client.create_experiment(run.project)
        )
        self.run_id = ""
        if run_id:  # a resumed run continues its MLflow run
            with contextlib.suppress(MlflowException):
                self.run_id = client.get_run(run_id).info.run_id
                client.update_run(self.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        if not self.run_id:
            tags = {"group": run.group} if run.group else {}
            created = client.create_run(experiment_id, run_name=run.name, tags=tags)
            self.run_id = created.info.run_id
            params = [Param(k, json.dumps(v)[:6000]) for k, v in sorted(run.config.items())]
            for start in range(0, len(params), 100):  # MLflow takes 100 params per batch
                client.log_batch(self.run_id, params=params[start : start + 100])

    def log(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(key, value, now, step) for key, value in metrics.items()]
        self._client.log_batch(self.run_id, metrics=rows)

    def close(self) -> None:
        self._client.set_terminated(self.run_id)


_OPEN = {"tensorboard": _TensorBoard, "wandb": _Wandb, "trackio": _Trackio, "mlflow": _Mlflow}
