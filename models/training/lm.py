"""The recognizer's character language model: built from receipt text, tuned on dev, published.

`receipts train lm` does three things (no TensorFlow; seconds to a few minutes):

1. **Text**: the transcripts of the SROIE receipts under `train` in the committed split (never
   `val`), plus the rows of `synth_receipts` synthetic receipts (`models.synth.content`: many
   locales, currencies, date formats), so the model knows receipt language beyond one country.
2. **Tuning**: the weight `alpha` and character bonus `beta` of the beam search are chosen on
   the *dev* receipts (the last `DEV_RECEIPTS` ids of the train split, the same held-out set the
   recognizer's training selects epochs on), with a model built *without* them, reading their
   ground-truth line crops with the folder's own recognizer: the grid's best CER wins. SROIE val
   is never read here.
3. **Publishing**: the final model is built from all train receipts (dev included) with the
   same order and written as `charlm.json.gz` into the model folder, listed in its manifest as
   `language_model` with the tuned `alpha`/`beta`, the dev figures and the training data.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models.evaluation.ocr import receipt_crops, score_lines
from models.evaluation.sroie import SPLIT_FILE, load_split, samples
from models.litert.manifest import (
    ManifestError,
    ModelEntry,
    load_manifest,
    sha256_file,
    upsert_entry,
)
from models.ocr.ctc import CharLM, LineDecoder
from models.ocr.litert import LM_NAME, LiteRTConfig, LiteRTEngine
from models.synth.content import make_content
from models.training.charset import Charset
from models.training.publish import SROIE_TRAIN

logger = logging.getLogger(__name__)

LM_FILE = "charlm.json.gz"
#: The last this many ids of the SROIE train split: the dev receipts (as the recognizer's).
DEV_RECEIPTS = 30
SYNTHETIC_TEXT = "rows of synthetic receipts from models.synth.content (generated, seed fixed)"


@dataclass(frozen=True)
class Tuned:
    """One point of the grid on the dev lines."""

    alpha: float
    beta: float
    cer: float
    exact: float


def synthetic_rows(count: int, seed: int = 7) -> Iterator[str]:
    """Each printed segment of `count` synthetic receipts, and each multi-segment row joined."""
    rng = random.Random(seed)
    for _ in range(count):
        for row in make_content(rng).rows:
            texts = [s.text for s in row.segments]
            yield from texts
            if len(texts) > 1:
                yield " ".join(texts)


def sroie_lines(data: Path, ids: Sequence[str]) -> list[str]:
    """Every ground-truth line text of these SROIE receipts."""
    return [line.text for s in samples(data, list(ids)) for line in s.lines()]


def train_dev_ids(split_file: Path = SPLIT_FILE) -> tuple[list[str], list[str]]:
    """(train ids without dev, dev ids) of the committed split."""
    train = load_split(split_file)["train"]
    return train[:-DEV_RECEIPTS], train[-DEV_RECEIPTS:]


def recognizer_charset(folder: Path) -> Charset:
    """The charset of the folder's recognizer (its manifest entry)."""
    charset = load_manifest(folder).entry("recognizer", folder).charset
    if not charset:
        raise ManifestError(f"{folder}: the recognizer's entry has no charset")
    return Charset(charset)


def dev_logits(data: Path, ids: Sequence[str], model_dir: Path) -> list[tuple[np.ndarray, str]]:
    """The folder recognizer's logits of every ground-truth line crop of the dev receipts."""
    engine = LiteRTEngine(
        LiteRTConfig(model_dir=model_dir, require_detector=False, language_model=False)
    )
    out: list[tuple[np.ndarray, str]] = []
    for sample in samples(data, list(ids)):
        crops = receipt_crops(sample)
        for logits, text in zip(engine.line_logits(crops.crops), crops.texts, strict=True):
            if logits is not None:
                out.append((logits, text))
    return out


def score(decoder: LineDecoder, lines: list[tuple[np.ndarray, str]]) -> tuple[float, float]:
    """Case-insensitive CER and exact match of the decoder on (logits, truth) lines."""
    sc = score_lines([decoder.decode(lg)[0] for lg, _ in lines], [t for _, t in lines])
    return sc.cer, sc.exact


def tune(
    lm: CharLM,
    decoder: LineDecoder,
    lines: list[tuple[np.ndarray, str]],
    alphas: Sequence[float],
    betas: Sequence[float],
) -> list[Tuned]:
    """Every (alpha, beta) of the grid scored on the lines, best (lowest CER) first."""
    results = []
    for alpha in alphas:
        for beta in betas:
            d = LineDecoder(
                decoder.charset,
                lm,
                alpha=alpha,
                beta=beta,
                beam=decoder.beam,
                beam_below=decoder.beam_below,
            )
            c, e = score(d, lines)
            logger.info("alpha %.2f beta %.2f: CER %.4f exact %.4f", alpha, beta, c, e)
            results.append(Tuned(alpha, beta, c, e))
    return sorted(results, key=lambda r: (r.cer, -r.exact))


def build_and_publish(
    data: Path,
    folder: Path,
    *,
    order: int = 5,
    synth_receipts: int = 3000,
    alphas: Sequence[float] = (0.2, 0.3, 0.4, 0.5),
    betas: Sequence[float] = (0.5, 1.0, 1.5),
    split_file: Path = SPLIT_FILE,
    version: str | None = None,
) -> ModelEntry:
    """Tune on dev with a model built without it, then publish the model of all train text."""
    lm_ids, dev_ids = train_dev_ids(split_file)
    synth = list(synthetic_rows(synth_receipts))
    lines = dev_logits(data, dev_ids, folder)
    logger.info("%d dev lines from %d receipts", len(lines), len(dev_ids))
    greedy = LineDecoder(recognizer_charset(folder))
    greedy_cer, greedy_exact = score(greedy, lines)
    dev_lm = CharLM.build([*sroie_lines(data, lm_ids), *synth], order=order)
    best = tune(dev_lm, LineDecoder(greedy.charset), lines, alphas, betas)[0]
    logger.info(
        "dev: greedy CER %.4f exact %.4f; with the model (alpha %.2f beta %.2f) "
        "CER %.4f exact %.4f",
        greedy_cer,
        greedy_exact,
        best.alpha,
        best.beta,
        best.cer,
        best.exact,
    )
    final = CharLM.build([*sroie_lines(data, [*lm_ids, *dev_ids]), *synth], order=order)
    target = folder / LM_FILE
    final.save(target)
    entry = ModelEntry(
        file=LM_FILE,
        version=version or datetime.now(UTC).strftime("%Y.%m.%d-%H%M"),
        sha256=sha256_file(target),
        bytes=target.stat().st_size,
        precision="counts",
        input={
            "kind": "character n-gram, Witten-Bell, case-folded",
            "order": order,
            "alpha": best.alpha,
            "beta": best.beta,
        },
        training_data=[SROIE_TRAIN, f"{SYNTHETIC_TEXT}: {synth_receipts} receipts"],
        metrics={
            "dev_receipts": len(dev_ids),
            "dev_lines": len(lines),
            "dev_greedy": {"cer": greedy_cer, "exact": greedy_exact},
            "dev_beam": {"cer": best.cer, "exact": best.exact},
            "contexts": final.contexts,
        },
    )
    upsert_entry(folder, LM_NAME, entry)
    return entry
