"""CTC decoding with the character language model: the model, the beam search, the engine."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from models.litert import ModelEntry, sha256_file, upsert_entry
from models.ocr import EngineUnavailable, LiteRTConfig, build_engine
from models.ocr.ctc import (
    EOS,
    CharLM,
    LanguageModelError,
    LineDecoder,
    aligned_confidences,
    beam_search,
    fold,
    greedy_path,
    softmax,
)
from models.ocr.litert import LM_NAME
from models.training.charset import Charset
from tests.models.litert.conftest import make_folder

CHARSET = Charset("ABJLMNO 0123456789")
STREETS = ["JALAN BAHAGIA", "JALAN 12", "NO 3 JALAN MAJU", "JALAN ANGSA"] * 20


def probs_for(steps: list[dict[str, float]]) -> np.ndarray:
    """A [T, C] probability matrix: each step gives some characters' probabilities ('' the
    blank); whatever is left is spread over the blank."""
    out = np.zeros((len(steps), len(CHARSET.chars) + 1))
    for t, step in enumerate(steps):
        for ch, p in step.items():
            out[t, 0 if ch == "" else CHARSET.chars.index(ch) + 1] = p
        out[t, 0] += 1.0 - out[t].sum()
    return out


def spelled(text: str, doubt: dict[int, dict[str, float]] | None = None) -> np.ndarray:
    """Probabilities that spell `text`, one confident step per character with a blank between;
    `doubt` replaces the step of character i by the given distribution."""
    steps: list[dict[str, float]] = []
    for i, ch in enumerate(text):
        steps.append((doubt or {}).get(i, {ch: 0.98}))
        steps.append({"": 0.98})
    return probs_for(steps)


@pytest.fixture(scope="module")
def lm() -> CharLM:
    return CharLM.build(STREETS, order=4)


def test_fold_is_per_character_upper_case_with_spaces_collapsed():
    assert fold("Jalan  ß x") == "JALAN ß X"
    assert len(fold("straße")) == len("straße")


def test_probabilities_of_a_context_sum_to_one_with_the_unseen_share(lm):
    vocab = set("".join(fold(s) for s in STREETS)) | {EOS}
    for context in ("", "JAL", "XYZ", "NO 3 "):
        total = sum(math.exp(lm.logprob(context, c)) for c in vocab)
        unseen = math.exp(lm.logprob(context, "Q"))  # never seen: the uniform share only
        assert 0.9 < total < 1.0 and total + unseen == pytest.approx(1.0, abs=1e-9)
    # the model knows the spelling and is blind to case
    assert lm.logprob("JALA", "N") > lm.logprob("JALA", "M") + 2
    assert lm.logprob("jala", "n") == lm.logprob("JALA", "N")
    assert lm.line_logprob("JALAN MAJU") > lm.line_logprob("JALAM MAJU")


def test_save_and_load_keep_every_probability_and_bad_files_are_refused(lm, tmp_path):
    path = tmp_path / "lm.json.gz"
    lm.save(path)
    again = CharLM.load(path)
    assert again.order == lm.order and again.contexts == lm.contexts
    assert again.logprob("JAL", "A") == lm.logprob("JAL", "A")
    lm.save(tmp_path / "twice.json.gz")
    assert (tmp_path / "twice.json.gz").read_bytes() == path.read_bytes()  # deterministic
    (tmp_path / "plain.txt").write_text("not gzip")
    with pytest.raises(LanguageModelError, match="not a readable language model"):
        CharLM.load(tmp_path / "plain.txt")
    with gzip.open(tmp_path / "other.json.gz", "wt") as f:
        json.dump({"format": "something else"}, f)
    with pytest.raises(LanguageModelError, match="is not a"):
        CharLM.load(tmp_path / "other.json.gz")


def test_greedy_merges_repeats_and_drops_blanks():
    probs = probs_for([{"J": 0.9}, {"J": 0.8}, {"": 0.9}, {"A": 0.7}, {"": 0.9}, {"A": 0.95}])
    classes, confs = greedy_path(probs)
    assert CHARSET.decode(classes) == "JAA"
    assert confs == pytest.approx([0.9, 0.7, 0.95])


def test_the_model_settles_a_doubtful_character_but_not_a_clear_one(lm):
    doubtful = spelled("JALAN", {4: {"M": 0.55, "N": 0.43}})
    assert CHARSET.decode(greedy_path(doubtful)[0]) == "JALAM"
    found = beam_search(doubtful, CHARSET, lm, alpha=0.5, beta=1.0)
    assert CHARSET.decode(found) == "JALAN"
    clear = spelled("JALAM", {4: {"M": 0.97, "N": 0.01}})
    assert CHARSET.decode(beam_search(clear, CHARSET, lm, alpha=0.3, beta=1.0)) == "JALAM"
    # a repeated letter needs a blank between its two steps, and the search keeps both
    assert CHARSET.decode(beam_search(spelled("NO 33"), CHARSET, lm, alpha=0.5, beta=1.0)) == (
        "NO 33"
    )


def test_a_character_the_model_chose_keeps_the_images_low_confidence(lm):
    doubtful = spelled("JALAN", {4: {"M": 0.55, "N": 0.43}})
    decoder = LineDecoder(CHARSET, lm, alpha=0.5, beta=1.0, beam=8, beam_below=0.9)
    text, confs = decoder.decode(np.log(doubtful + 1e-12))
    assert text == "JALAN"
    assert confs[:4] == pytest.approx([0.98] * 4, abs=1e-6)
    assert confs[4] == pytest.approx(0.43, abs=1e-6)
    # the alignment of the greedy text gives the greedy confidences
    classes, greedy_confs = greedy_path(softmax(np.log(doubtful + 1e-12)))
    assert aligned_confidences(doubtful, classes) == pytest.approx(greedy_confs, abs=1e-6)


def test_only_lines_below_the_confidence_bar_are_searched(lm):
    doubtful = np.log(spelled("JALAN", {4: {"M": 0.55, "N": 0.43}}) + 1e-12)
    assert LineDecoder(CHARSET, lm, beam_below=0.5).decode(doubtful)[0] == "JALAM"
    assert LineDecoder(CHARSET, lm, beam_below=0.6).decode(doubtful)[0] == "JALAN"
    assert LineDecoder(CHARSET, None).decode(doubtful)[0] == "JALAM"
    assert LineDecoder(CHARSET, lm, beam=1, beam_below=1.0).decode(doubtful)[0] == "JALAM"
    empty = np.log(probs_for([{"": 1.0}] * 6) + 1e-12)
    assert LineDecoder(CHARSET, lm, beam_below=1.0).decode(empty) == ("", [])


def _with_lm(folder, lm: CharLM, **tuned: float):
    path = folder / "charlm.json.gz"
    lm.save(path)
    entry = ModelEntry(
        file=path.name,
        version="lm-1",
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
        precision="counts",
        input={"order": lm.order, **tuned},
    )
    upsert_entry(folder, LM_NAME, entry)
    return path


def test_the_engine_uses_the_folders_checked_language_model(tmp_path):
    folder = make_folder(tmp_path / "models")
    path = _with_lm(folder, CharLM.build(["ab", "ba"], order=3), alpha=0.4, beta=0.5)
    engine = build_engine(LiteRTConfig(model_dir=folder, require_detector=False))
    assert engine.version == "test-1+lm-lm-1"
    crop = np.full((16, 48), 255, np.uint8)
    crop[:, 16:32] = 0
    assert engine.recognize_crops([crop])[0][0] == "a"
    plain = build_engine(
        LiteRTConfig(model_dir=folder, require_detector=False, language_model=False)
    )
    assert plain.version == "test-1"
    path.write_bytes(path.read_bytes()[:-10])  # a damaged model is refused, not half-used
    with pytest.raises(EngineUnavailable, match="does not match its manifest"):
        build_engine(LiteRTConfig(model_dir=folder, require_detector=False))
