"""`receipts eval finder` scores finders on held-out synthetic frames with true corners."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from models.document import ContourFinder, Detection
from models.evaluation.cli import eval_group
from models.evaluation.finder_cli import held_out_frames, score_finder


class _Oracle:
    """Answers the true corners of the frames it was given: a perfect finder."""

    name = "oracle"
    version = "1"

    def __init__(self, frames: list[tuple[np.ndarray, np.ndarray | None]]) -> None:
        self._truth = {id(img): quad for img, quad in frames}

    def find(self, image: np.ndarray) -> Detection | None:
        quad = self._truth[id(image)]
        return None if quad is None else Detection(quad=quad, score=1.0, flat_scan=False)


def test_a_perfect_finder_scores_one_and_a_blind_one_misses_everything():
    frames = held_out_frames(3, 2, size=(192, 256))
    assert [q is None for _, q in frames] == [False, False, False, True, True]
    perfect = score_finder(_Oracle(frames), frames)
    assert perfect["mean_iou"] > 0.999 and perfect["mean_corner_error"] < 1e-6
    assert perfect["missed"] == 0 and perfect["false_quads"] == 0

    class Blind:
        name, version = "blind", "1"

        def find(self, image: np.ndarray) -> Detection | None:
            return None

    blind = score_finder(Blind(), frames)
    assert blind["mean_iou"] == 0.0 and blind["missed"] == 3 and blind["false_quads"] == 0


def test_the_command_scores_the_contour_finder_and_names_a_missing_model(tmp_path):
    result = CliRunner().invoke(
        eval_group,
        ["finder", "--receipts", "4", "--empties", "1", "--model-dir", str(tmp_path), "--json"],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == {"contour"}
    assert 0.0 <= figures["contour"]["mean_iou"] <= 1.0 and figures["contour"]["receipts"] == 4
    assert "litert: unavailable" in result.stderr
    assert isinstance(ContourFinder().find(held_out_frames(1, 0)[0][0]), Detection | None)
