"""`receipts train`: training commands; TensorFlow is imported only when one runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

logger = logging.getLogger(__name__)

DEFAULT_RUNS = Path.home() / ".cache" / "receipt-manager" / "runs"

ConfigT = TypeVar("ConfigT", bound="DataclassInstance")
TrainerT = TypeVar("TrainerT", bound="_Trainer")


def _tensorflow_or_explain() -> None:
    try:
        import tensorflow  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            "training needs TensorFlow: use the training environment "
            "(python3 -m venv .venv-train && .venv-train/bin/pip install tensorflow -e .) "
            "or pip install 'receipt-manager[train]'"
        ) from exc


@click.group()
def train() -> None:
    """Train the on-device models (resumable runs)."""


_SCHEDULE_OPTION = click.option(
    "--schedule-epochs",
    default=None,
    type=click.IntRange(min=1),
    help="Epochs over which the learning rate falls along a cosine (new runs).",
)


_INIT_OPTION = click.option(
    "--init-weights",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Start a new run from these weights (e.g. another run's best.weights.h5) with a fresh "
    "optimizer; ignored when the run folder already has checkpoints.",
)


_INIT_TFLITE_OPTION = click.option(
    "--init-tflite",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Start a new run from a published .tflite (e.g. models/artifacts/recognizer_int8.tflite "
    "or detector_int8.tflite: its weights, batch norms calibrated on training batches) with a "
    "fresh optimizer; ignored when the run folder already has checkpoints, so the same command "
    "resumes.",
)


@train.command()
@click.option(
    "--out",
    "run_dir",
    default=str(DEFAULT_RUNS / "recognizer"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: config, checkpoints, logs.",
)
@click.option(
    "--epochs",
    default=60,
    show_default=True,
    type=click.IntRange(min=1),
    help="Total epochs for the run (not additional ones).",
)
@click.option(
    "--steps-per-epoch",
    default=None,
    type=click.IntRange(min=1),
    help="Batches per epoch (new runs).",
)
@click.option(
    "--batch-size", default=None, type=click.IntRange(min=1), help="Lines per batch (new runs)."
)
@_SCHEDULE_OPTION
@_INIT_OPTION
@_INIT_TFLITE_OPTION
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue from the run folder's last checkpoint (--no-resume refuses a used folder).",
)
@click.option(
    "--export/--no-export",
    "do_export",
    default=True,
    show_default=True,
    help="After training, export float and int8 .tflite and evaluate them.",
)
@click.option(
    "--export-only",
    is_flag=True,
    help="Only export and evaluate the run's best weights so far (safe while it trains).",
)
def recognizer(  # noqa: PLR0917 (click passes options positionally)
    run_dir: Path,
    epochs: int,
    steps_per_epoch: int | None,
    batch_size: int | None,
    schedule_epochs: int | None,
    init_weights: Path | None,
    init_tflite: Path | None,
    resume: bool,
    do_export: bool,
    export_only: bool,
) -> None:
    """Train the line recognizer (CTC) on synthetic lines + SROIE train crops."""
    if init_weights and init_tflite:
        raise click.UsageError("--init-weights and --init-tflite exclude each other")
    _tensorflow_or_explain()
    from dataclasses import replace

    from models.training.export import export_and_evaluate
    from models.training.recognizer import RecognizerConfig, Trainer

    _check_run_dir(run_dir, resume, export_only)
    cfg = RecognizerConfig()
    if steps_per_epoch:
        cfg = replace(cfg, steps_per_epoch=steps_per_epoch)
    if batch_size:
        cfg = replace(cfg, batch_size=batch_size)
    if schedule_epochs:
        cfg = replace(cfg, schedule_epochs=schedule_epochs)
    fresh = not (run_dir / "ckpt").exists()
    trainer = Trainer(run_dir, cfg)
    if init_weights and fresh:
        trainer.model.load_weights(str(init_weights))
        logger.info("new run %s starts from %s", run_dir, init_weights)
    if init_tflite and fresh and not export_only:
        from models.training.from_tflite import TfliteMismatch

        try:
            trainer.warm_start(init_tflite)
        except TfliteMismatch as exc:
            raise click.ClickException(str(exc)) from exc
        logger.info("new run %s starts from %s", run_dir, init_tflite)
    import tensorflow as tf

    logger.info("devices: %s", [d.name for d in tf.config.list_physical_devices()])
    if not export_only:
        trainer.fit(epochs)
    if do_export or export_only:
        export_and_evaluate(trainer, run_dir / "export")


_RUN_OPTION = click.option(
    "--out",
    "run_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: config, checkpoints, logs.",
)
_EPOCHS_OPTION = click.option(
    "--epochs",
    default=40,
    show_default=True,
    type=click.IntRange(min=1),
    help="Total epochs for the run (not additional ones).",
)
_STEPS_OPTION = click.option(
    "--steps-per-epoch",
    default=None,
    type=click.IntRange(min=1),
    help="Batches per epoch (new runs).",
)
_EXPORT_ONLY_OPTION = click.option(
    "--export-only", is_flag=True, help="Only export and evaluate the best weights so far."
)
_RESUME_OPTION = click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue from the run folder's last checkpoint (--no-resume refuses a used folder).",
)


def _check_run_dir(run_dir: Path, resume: bool, export_only: bool) -> None:
    if export_only and not (run_dir / "best.weights.h5").exists():
        raise click.ClickException(
            f"{run_dir} has no best.weights.h5 yet: wait for its first epoch"
        )
    if not resume and (run_dir / "ckpt").exists():
        raise click.ClickException(
            f"{run_dir} already has checkpoints; use --resume or another --out"
        )


class _Trainer(Protocol):
    model: Any  # a tf.keras.Model (TensorFlow is imported only by the training commands)

    def fit(self, epochs: int) -> None: ...


def _run_options(command: Callable[..., None]) -> Callable[..., None]:
    """--out, --epochs, --steps-per-epoch, --schedule-epochs, --init-weights, --resume and
    --export-only of a model's command."""
    for option in (
        _EXPORT_ONLY_OPTION,
        _RESUME_OPTION,
        _INIT_OPTION,
        _SCHEDULE_OPTION,
        _STEPS_OPTION,
        _EPOCHS_OPTION,
        _RUN_OPTION,
    ):
        command = option(command)
    return command


def _train_and_export(
    name: str,
    cfg: ConfigT,
    trainer_type: Callable[[Path, ConfigT], TrainerT],
    export: Callable[[TrainerT, Path], object],
    *,
    run_dir: Path | None,
    epochs: int,
    steps_per_epoch: int | None,
    schedule_epochs: int | None,
    init_weights: Path | None,
    resume: bool,
    export_only: bool,
    init_tflite: Path | None = None,
) -> None:
    """Train a run (new or resumed; default folder DEFAULT_RUNS/name) to `epochs` epochs
    unless export_only, then export it. `init_tflite` needs a trainer with `warm_start`."""
    from dataclasses import replace

    if init_weights and init_tflite:
        raise click.UsageError("--init-weights and --init-tflite exclude each other")
    run_dir = run_dir or DEFAULT_RUNS / name
    _check_run_dir(run_dir, resume, export_only)
    if steps_per_epoch:
        cfg = replace(cfg, steps_per_epoch=steps_per_epoch)
    if schedule_epochs:
        cfg = replace(cfg, schedule_epochs=schedule_epochs)
    fresh = not (run_dir / "ckpt").exists()
    trainer = trainer_type(run_dir, cfg)
    if init_weights and fresh:
        trainer.model.load_weights(str(init_weights))
        logger.info("new run %s starts from %s", run_dir, init_weights)
    if init_tflite and fresh and not export_only:
        from models.training.from_tflite import TfliteMismatch

        warm_start: Callable[[Path], object] | None = getattr(trainer, "warm_start", None)
        if warm_start is None:
            raise click.UsageError(f"--init-tflite is not supported for the {name}")
        try:
            warm_start(init_tflite)
        except TfliteMismatch as exc:
            raise click.ClickException(str(exc)) from exc
        logger.info("new run %s starts from %s", run_dir, init_tflite)
    if not export_only:
        trainer.fit(epochs)
    export(trainer, run_dir / "export")


@train.command()
@_run_options
@_INIT_TFLITE_OPTION
def detector(**options: Any) -> None:
    """Train the text-line detector on SROIE train pages + synthetic flat receipts."""
    _tensorflow_or_explain()
    from models.training.detector import DetectorConfig, DetectorTrainer, export_and_evaluate

    _train_and_export("detector", DetectorConfig(), DetectorTrainer, export_and_evaluate, **options)


@train.command()
@_run_options
def finder(**options: Any) -> None:
    """Train the receipt finder on synthetic countertop photos (and empty countertops)."""
    _tensorflow_or_explain()
    from models.training.finder import FinderConfig, FinderTrainer, export_and_evaluate

    _train_and_export("finder", FinderConfig(), FinderTrainer, export_and_evaluate, **options)


@train.command()
@click.argument("name", type=click.Choice(["recognizer", "detector", "finder"]))
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run folder whose export/ to publish.",
)
@click.option(
    "--to",
    "folder",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Model folder (models/artifacts or an OTA slot); its manifest.json is updated.",
)
@click.option(
    "--precision", type=click.Choice(["int8", "float"]), default="int8", show_default=True
)
@click.option("--version", default=None, help="Version string (default: export time).")
def publish(name: str, run_dir: Path, folder: Path, precision: str, version: str | None) -> None:
    """Copy an exported model into a model folder and list it, with its sha256, in the manifest."""
    from models.training.publish import publish as do_publish

    try:
        manifest = do_publish(
            run_dir / "export", folder, name, precision=precision, version=version
        )
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    entry = manifest.models[name]
    click.echo(
        f"{folder / entry.file}: {name} {entry.version}, {entry.bytes} bytes, {entry.sha256}"
    )


@train.command("lm")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The SROIE-layout folder (../shared/datasets/sroie-train); only train ids are read.",
)
@click.option(
    "--to",
    "folder",
    default=str(Path(__file__).resolve().parents[1] / "artifacts"),
    show_default=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model folder whose recognizer the model is tuned for; charlm.json.gz and its "
    "manifest entry are written there.",
)
@click.option("--order", default=5, show_default=True, type=click.IntRange(2, 10))
@click.option(
    "--synth-receipts",
    default=3000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Synthetic receipts whose rows join the text.",
)
@click.option("--alphas", default="0.2,0.3,0.4,0.5", show_default=True, help="Weights to try.")
@click.option("--betas", default="0.5,1.0,1.5", show_default=True, help="Bonuses to try.")
@click.option("--version", default=None, help="Version string (default: now).")
def lm_command(  # noqa: PLR0917 (click passes options positionally)
    data: Path,
    folder: Path,
    order: int,
    synth_receipts: int,
    alphas: str,
    betas: str,
    version: str | None,
) -> None:
    """Build the recognizer's character language model, tune it on dev, publish it (no TF)."""
    from models.evaluation.sroie import DatasetError
    from models.litert.manifest import ManifestError
    from models.ocr.base import EngineUnavailable
    from models.training.lm import build_and_publish

    try:
        grid = (
            [float(a) for a in alphas.split(",") if a.strip()],
            [float(b) for b in betas.split(",") if b.strip()],
        )
    except ValueError as exc:
        raise click.BadParameter(f"numbers separated by commas: {exc}") from exc
    try:
        entry = build_and_publish(
            data,
            folder,
            order=order,
            synth_receipts=synth_receipts,
            alphas=grid[0],
            betas=grid[1],
            version=version,
        )
    except (DatasetError, ManifestError, EngineUnavailable, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    m = entry.metrics
    click.echo(
        f"{folder / entry.file}: language_model {entry.version}, {entry.bytes} bytes; "
        f"alpha {entry.input['alpha']} beta {entry.input['beta']}; dev CER "
        f"{m['dev_greedy']['cer']:.4f} -> {m['dev_beam']['cer']:.4f}, exact "
        f"{m['dev_greedy']['exact']:.4f} -> {m['dev_beam']['exact']:.4f}"
    )
