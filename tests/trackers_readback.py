"""Read what each tracker stored, from its own files or through its own API (for the tests).

Each reader returns {step: {metric: value}} and the run's config as the tracker holds it.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path


def wandb_offline(output: Path) -> tuple[dict[int, dict[str, float]], dict, list[dict]]:
    """Every offline W&B run under OUTPUT/wandb: history by step, the config, and each run's
    (id, name, group, project), from the `.wandb` files (a LevelDB-style log of protobuf
    records: 7-byte file header, 32 KiB blocks, 7-byte record headers `<crc, length, kind>`)."""
    from wandb.proto import wandb_internal_pb2 as pb

    history: dict[int, dict[str, float]] = {}
    config, runs = {}, []
    for path in sorted(output.glob("wandb/offline-run-*/run-*.wandb")):
        for raw in _leveldb_records(path.read_bytes()):
            record = pb.Record()
            record.ParseFromString(raw)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                r = record.run
                runs.append({"id": r.run_id, "name": r.display_name, "group": r.run_group,
                             "project": r.project})  # fmt: skip
                for item in r.config.update:
                    config[item.key] = json.loads(item.value_json)
            elif kind == "config":
                for item in record.config.update:
                    config[item.key] = json.loads(item.value_json)
            elif kind == "history":
                row = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                       for i in record.history.item}  # fmt: skip
                step = int(row.pop("_step"))
                history[step] = {k: v for k, v in row.items() if not k.startswith("_")}
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    return history, config, runs


def _leveldb_records(data: bytes, block: int = 32768) -> list[bytes]:
    assert data[:4] == b":W&B", "not a W&B transaction log"
    records, pos, part = [], 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if length == 0 and kind == 0:  # zero padding to the end of the block
            pos += left - 7
            continue
        part += data[pos : pos + length]
        pos += length
        if kind in (1, 4):  # FULL or LAST
            records.append(part)
            part = b""
    return records


def trackio_local(trackio_dir: Path, project: str, run: str) -> tuple[dict, dict]:
    """History by step and config of a Trackio run in the local store `trackio_dir`, read by a
    fresh process (trackio fixes its folder at import)."""
    code = (
        "import json, sys; from trackio.sqlite_storage import SQLiteStorage as S; "
        "p, r = sys.argv[1:]; print(json.dumps([S.get_logs(p, r), S.get_run_config(p, r)]))"
    )
    env = {**os.environ, "TRACKIO_DIR": str(trackio_dir)}
    out = subprocess.run(
        [sys.executable, "-c", code, project, run], env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    logs, config = json.loads(out.stdout.strip().splitlines()[-1])
    history = {
        int(row["step"]): {k: v for k, v in row.items() if k not in ("step", "timestamp")}
        for row in logs
    }
    return history, config


def mlflow_store(uri: str, experiment: str) -> list[tuple[object, dict[int, dict[str, float]]]]:
    """Every run of an MLflow experiment, each with its metric history by step, through MLflow's
    own client."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    out = []
    for run in client.search_runs([exp.experiment_id], order_by=["attributes.start_time"]):
        history: dict[int, dict[str, float]] = {}
        for key in run.data.metrics:
            for m in client.get_metric_history(run.info.run_id, key):
                history.setdefault(m.step, {})[key] = m.value
        out.append((run, history))
    return out


def tensorboard_events(folder: Path) -> dict[int, dict[str, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    history: dict[int, dict[str, float]] = {}
    for tag in acc.Tags()["scalars"]:
        for event in acc.Scalars(tag):
            history.setdefault(event.step, {})[tag] = event.value
    return history
