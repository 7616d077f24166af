"""`receipts eval`: measure the read pipeline on labelled receipts. One subcommand per stage."""

from __future__ import annotations

import importlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from models.evaluation.corrections import CorrectionError, corrected_receipts
from models.evaluation.crossval import Labelled, calibration_from, cross_validate_extractor
from models.evaluation.detector_cli import detector_command
from models.evaluation.finder_cli import finder_command
from models.evaluation.header_words import MIN_SHOPS, header_words, known_words, to_json
from models.evaluation.learn import cross_validate, fit_chosen, header_example
from models.evaluation.ocr_cli import ocr_command
from models.evaluation.scoring import FIELDS, ReceiptScore, Report, score_receipt, summarise
from models.evaluation.shops import grouped_folds, round_robin_folds, shop_groups, singletons
from models.evaluation.sroie import SPLIT_FILE, DatasetError, load_split, samples
from models.evaluation.synthetic import SyntheticSetError, is_synthetic_set, synthetic_receipts
from models.extraction import Extraction, extract_fields
from models.extraction.calibration import TABLE_FILE
from models.extraction.extract import DEFAULT_MODELS
from models.extraction.linear import TABLE_FILE as MODELS_FILE
from models.extraction.wordfix import LEXICON_FILE
from models.receipt import OcrLine

log = logging.getLogger(__name__)

OCR_CHOICES = ("gt", "litert", "tesseract")

#: Regularisation of the learned header scorers (chosen by `train-lines` cross-validation).
DEFAULT_L2 = 10.0


@click.group("eval")
def eval_group() -> None:
    """Measure the read pipeline on labelled receipts (SROIE layout)."""


eval_group.add_command(ocr_command)
eval_group.add_command(finder_command)
eval_group.add_command(detector_command)


@dataclass(frozen=True, slots=True)
class Case:
    """One receipt to score: its lines (or image) and the answer key of the fields to score."""

    id: str
    key: dict[str, str]
    lines: Callable[[], list[OcrLine]]
    image_path: Path | None = None
    image_size: tuple[int, int] | None = None


def _sroie_cases(data: Path, split_file: Path, split_name: str) -> list[Case]:
    split = load_split(split_file)
    ids = split["train"] + split["val"] if split_name == "all" else split[split_name]
    return [Case(s.id, asdict(s.key()), s.lines, s.image_path) for s in samples(data, sorted(ids))]


def _correction_cases(data: Path) -> list[Case]:
    return [
        Case(r.receipt_id, r.key(), lambda r=r: r.lines, None, r.image_size)  # type: ignore[misc]
        for r in corrected_receipts(data)
        if r.key()
    ]


def _synthetic_cases(data: Path) -> list[Case]:
    return [
        Case(r.id, r.key(), r.lines, r.image_path, r.label.paper_size)
        for r in synthetic_receipts(data)
    ]


def _reader(
    ocr: str, model_dir: Path | None = None, finder: str = "auto"
) -> Callable[[Case], Extraction]:
    """How a case becomes an Extraction: from its stored lines or via the read pipeline."""
    if ocr == "gt":
        return lambda c: extract_fields(c.lines(), c.image_size)
    try:
        pipeline = importlib.import_module("models.pipeline")
        imageio = importlib.import_module("models.imageio")
    except ImportError as exc:
        raise click.ClickException(
            f"--ocr {ocr} needs the read pipeline (models.pipeline), which is not available yet "
            f"({exc}); use --ocr gt to score extraction from the ground-truth lines"
        ) from exc
    try:
        engine: dict[str, object] = {"type": ocr}
        if ocr == "litert" and model_dir is not None:
            engine["model_dir"] = model_dir
        config = pipeline.PipelineConfig.model_validate({"ocr": engine, "finder": finder})
        reader = pipeline.build_pipeline(config)
    except Exception as exc:  # any set-up failure is reported the same way
        raise click.ClickException(
            f"could not build the read pipeline with OCR {ocr!r}: {exc}"
        ) from exc

    def run(case: Case) -> Extraction:
        if case.image_path is None:
            raise click.ClickException(f"receipt {case.id} has no image under img/")
        receipt = reader.read(imageio.load_image(case.image_path)).receipt
        return Extraction(receipt.fields, receipt.needs_review, list(receipt.review_reasons))

    return run


def _print_report(report: Report, ocr: str, split: str, ms: list[float]) -> None:
    click.echo(f"{split}, {report.n} receipts, OCR: {ocr}")
    for name in FIELDS:
        if name in report.accuracy:
            click.echo(
                f"  {name:<8} {100 * report.accuracy[name]:6.2f} %  (n={report.counts[name]})"
            )
    click.echo(f"  {'mean':<8} {100 * report.mean:6.2f} %")
    click.echo("accuracy per confidence decile (all four fields):")
    for low, high, count, acc in report.deciles:
        shown = "   -  " if math.isnan(acc) else f"{100 * acc:6.2f} %"
        click.echo(f"  [{low:.1f}, {high:.1f}) n={count:<4} {shown}")
    wrong = report.review_wrong_share
    click.echo(
        f"needs_review: {100 * report.review_share:.1f} % of receipts; of those, "
        f"{'-' if math.isnan(wrong) else f'{100 * wrong:.1f} %'} had a wrong field; "
        f"{report.wrong_unflagged} receipts with a wrong field were not flagged"
    )
    if ms:
        ms_sorted = sorted(ms)
        click.echo(
            f"time per receipt: median {ms_sorted[len(ms) // 2]:.2f} ms, max {ms_sorted[-1]:.2f} ms"
        )


@eval_group.command("fields")
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="SROIE-layout folder with box/, key/ and img/, an exported corrections folder "
    "(*.jsonl, see models/evaluation/corrections.py), or `receipts synth` output (photos with "
    "JSON labels, see models/evaluation/synthetic.py).",
)
@click.option(
    "--ocr",
    type=click.Choice(OCR_CHOICES),
    default="gt",
    show_default=True,
    help="Where the text lines come from: the ground-truth boxes or an OCR engine.",
)
@click.option(
    "--split",
    "split_name",
    type=click.Choice(["val", "train", "all"]),
    default="val",
    show_default=True,
    help="Which part of the committed split to score.",
)
@click.option(
    "--split-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=SPLIT_FILE,
    show_default=True,
    help="JSON {train: [...], val: [...]}.",
)
@click.option(
    "--errors",
    is_flag=True,
    help="List each wrong field (allowed on --split train only, to keep val unseen).",
)
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    default=None,
    help="Cross-validate on the train split: each receipt is read with learned scorers and a "
    "calibration fitted on the other folds only (honest figures for tuning; train split only).",
)
@click.option(
    "--group-by-shop/--no-group-by-shop",
    default=True,
    show_default=True,
    help="With --folds: keep all receipts of one shop in one fold, so every receipt is scored "
    "as if its shop were unseen (as most val shops are); also reports the receipts whose shop "
    "occurs once (see models/evaluation/shops.py).",
)
@click.option(
    "--l2",
    type=float,
    default=DEFAULT_L2,
    show_default=True,
    help="With --folds: regularisation of the header scorers refitted per fold.",
)
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --ocr litert: the model folder (default models/artifacts).",
)
@click.option(
    "--finder",
    type=click.Choice(["auto", "contour", "litert"]),
    default="auto",
    show_default=True,
    help="With an OCR engine: the receipt finder the read pipeline uses (as `pipeline.finder`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def fields(
    *,
    data: Path,
    ocr: str,
    model_dir: Path | None,
    finder: str,
    split_name: str,
    split_file: Path,
    errors: bool,
    folds: int | None,
    group_by_shop: bool,
    l2: float,
    as_json: bool,
) -> None:
    """Score company, date, address and total as SROIE does."""
    corrections = not (data / "box").is_dir() and any(data.glob("*.jsonl"))
    synthetic = not (data / "box").is_dir() and not corrections and is_synthetic_set(data)
    if errors and split_name != "train" and not (corrections or synthetic):
        raise click.UsageError("--errors is for the train split only; tune rules on train, not val")
    if folds is not None:
        if split_name != "train" or corrections or synthetic or ocr != "gt":
            raise click.UsageError("--folds cross-validates the SROIE train split: --split train")
        cases = _train_cases(data, split_file)
        _cross_validated(cases, folds, l2, errors, as_json, group_by_shop=group_by_shop)
        return
    if corrections and ocr != "gt":
        raise click.UsageError("a corrections folder has no images: use --ocr gt (stored lines)")
    try:
        if corrections:
            cases, title = _correction_cases(data), f"corrections in {data}"
        elif synthetic:
            cases, title = _synthetic_cases(data), f"synthetic receipts in {data}"
        else:
            cases = _sroie_cases(data, split_file, split_name)
            title = f"SROIE {split_name} split"
    except (DatasetError, CorrectionError, SyntheticSetError, OSError, json.JSONDecodeError) as exc:
        raise click.ClickException(str(exc)) from exc
    read = _reader(ocr, model_dir, finder)
    scores: list[ReceiptScore] = []
    ms: list[float] = []
    for case in cases:
        start = time.perf_counter()
        result = read(case)
        ms.append(1000 * (time.perf_counter() - start))
        score = score_receipt(case.id, result.fields, case.key, result.needs_review)
        scores.append(score)
        if errors:
            _echo_errors(case, result, score)
    report = summarise(scores)
    if as_json:
        click.echo(json.dumps({"ocr": ocr, "split": split_name, **asdict(report)}, default=str))
    else:
        _print_report(report, ocr, title, ms)


def _labelled(cases: list[Case]) -> list[Labelled]:
    return [Labelled(c.id, c.key, c.lines) for c in cases]


def _cross_validated(
    cases: list[Case], folds: int, l2: float, errors: bool, as_json: bool, *, group_by_shop: bool
) -> None:
    keep = tuple(DEFAULT_MODELS.models)
    groups = shop_groups([c.key for c in cases])
    once = singletons(groups)
    try:
        assignment = (
            grouped_folds(groups, folds) if group_by_shop else round_robin_folds(len(cases), folds)
        )
    except ValueError as exc:
        raise click.UsageError(f"{exc}, or pass --no-group-by-shop") from exc
    start = time.perf_counter()
    result = cross_validate_extractor(
        _labelled(cases), folds, l2=l2, keep=keep, assignment=assignment
    )
    seconds = time.perf_counter() - start
    if errors:
        for case, extraction, score in zip(cases, result.extractions, result.scores, strict=True):
            _echo_errors(case, extraction, score)
    report = summarise(result.scores)
    single = summarise([s for s, o in zip(result.scores, once, strict=True) if o])
    grouping = "shop-grouped" if group_by_shop else "round-robin"
    title = (
        f"SROIE train split, {folds}-fold {grouping} cross-validation, {max(groups) + 1} shops "
        f"(learned: {', '.join(keep) or '-'})"
    )
    if as_json:
        body = {
            "ocr": "gt",
            "split": "train",
            "folds": folds,
            "group_by_shop": group_by_shop,
            "shops": max(groups) + 1,
            **asdict(report),
            "single_shop": {"n": single.n, "accuracy": single.accuracy},
        }
        click.echo(json.dumps(body, default=str))
    else:
        _print_report(report, "gt", title, [])
        click.echo(f"receipts whose shop occurs once in train ({single.n}):")
        for name in FIELDS:
            if name in single.accuracy:
                click.echo(f"  {name:<8} {100 * single.accuracy[name]:6.2f} %")
        click.echo(f"({seconds:.0f} s)")


def _echo_errors(case: Case, result: Extraction, score: ReceiptScore) -> None:
    f = result.fields
    got = {
        "company": f.merchant.value if f.merchant else None,
        "date": f.date.value.isoformat() if f.date else None,
        "address": f.address.value if f.address else None,
        "total": str(f.total.value) if f.total else None,
    }
    for name, r in score.fields.items():
        if not r.correct:
            click.echo(
                f"{case.id} {name}: got {got[name]!r} want {case.key[name]!r} conf={r.confidence}"
            )


def _train_split_options(command: Callable[..., None]) -> Callable[..., None]:
    """--data and --split-file of the commands that fit on the train split only."""
    command = click.option(
        "--split-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=SPLIT_FILE,
        show_default=True,
        help="JSON {train: [...], val: [...]}; only train is used.",
    )(command)
    return click.option(
        "--data",
        required=True,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="SROIE-layout folder with box/ and key/.",
    )(command)


def _out_option(
    default: Path, help_text: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--out: the file a fitting command writes."""
    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help_text,
    )


def _train_cases(data: Path, split_file: Path) -> list[Case]:
    """The SROIE train split's cases; a dataset problem becomes a ClickException."""
    try:
        return _sroie_cases(data, split_file, "train")
    except (DatasetError, OSError, json.JSONDecodeError) as exc:
        raise click.ClickException(str(exc)) from exc


@eval_group.command("calibrate")
@_train_split_options
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    default=5,
    show_default=True,
    help="The raw confidences are taken out of fold: each receipt read by scorers fitted on "
    "the other folds, so the table maps held-out confidences to held-out accuracy.",
)
@click.option("--l2", type=float, default=DEFAULT_L2, show_default=True)
@_out_option(TABLE_FILE, "Where to write the calibration table.")
def calibrate(*, data: Path, split_file: Path, folds: int, l2: float, out: Path) -> None:
    """Fit the per-field confidence calibration on held-out train folds (never on val)."""
    cases = _train_cases(data, split_file)
    keep = tuple(DEFAULT_MODELS.models)
    result = cross_validate_extractor(_labelled(cases), folds, l2=l2, keep=keep)
    table = calibration_from(
        result.pairs,
        f"SROIE train split of {split_file.name}, {len(cases)} receipts, "
        f"out-of-fold confidences ({folds} folds)",
    )
    out.write_text(table.to_json())
    for name, steps in table.fields.items():
        click.echo(f"{name:<8} {len(steps.values)} steps, {len(result.pairs[name])} pairs")
    click.echo(f"wrote {out}")


@eval_group.command("train-lines")
@_train_split_options
@click.option(
    "--l2",
    "l2_grid",
    multiple=True,
    type=float,
    default=(1.0, 3.0, 10.0, 30.0),
    show_default=True,
    help="Regularisation strengths to compare by cross-validation on train.",
)
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True)
@_out_option(MODELS_FILE, "Where to write the learned scorers.")
def train_lines(
    *, data: Path, split_file: Path, l2_grid: tuple[float, ...], folds: int, out: Path
) -> None:
    """Fit the merchant and address run scorers on the train split (never on val).

    Chooses the regularisation by k-fold cross-validation on train and keeps a field's scorer
    only if it beat the hand rules there. Refit the calibration afterwards. On a busy machine
    set OPENBLAS_NUM_THREADS=1: the matrices are small and BLAS threads only contend.
    """
    cases = _train_cases(data, split_file)
    if len(cases) < 5 * folds:
        raise click.ClickException(
            f"{len(cases)} train receipts are too few for {folds}-fold cross-validation; "
            f"need at least {5 * folds}"
        )
    examples = [header_example(c.lines(), c.key) for c in cases]
    results = [cross_validate(examples, l2, folds) for l2 in l2_grid]
    for r in results:
        click.echo(
            f"l2={r.l2:<6g} CV company {100 * r.company:6.2f} % (rules {100 * r.rule_company:6.2f})"
            f"  address {100 * r.address:6.2f} % (rules {100 * r.rule_address:6.2f})"
        )
    best = max(results, key=lambda r: (r.company + r.address, -r.l2))
    models = fit_chosen(
        examples, best.l2, best, f"SROIE train split of {split_file.name}, {len(cases)} receipts"
    )
    out.write_text(models.to_json())
    kept = ", ".join(models.models) or "none (the rules stay)"
    click.echo(f"l2={best.l2:g}; learned scorers kept: {kept}; wrote {out}")


@eval_group.command("header-words")
@_train_split_options
@click.option(
    "--min-shops",
    type=click.IntRange(1, 100),
    default=MIN_SHOPS,
    show_default=True,
    help="A word must occur at this many shops of the train split to be kept.",
)
@_out_option(LEXICON_FILE, "Where to write the header lexicon.")
def header_words_command(*, data: Path, split_file: Path, min_shops: int, out: Path) -> None:
    """Build the lexicon unsure header readings are repaired against, from train only."""
    cases = _train_cases(data, split_file)
    keys = [c.key for c in cases]
    transcripts = ["\n".join(ln.text for ln in c.lines()) for c in cases]
    words = header_words(keys, min_shops)
    known = known_words(keys, transcripts, min_shops)
    source = f"SROIE train split of {split_file.name}, {len(cases)} receipts"
    out.write_text(to_json(words, known, source, min_shops))
    click.echo(f"{len(words)} header words, {len(known)} known words; wrote {out}")
