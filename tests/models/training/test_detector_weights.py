"""The detector's optional cross-entropy weights: short boxes' cores and the gaps between
neighbouring segments of a row (NumPy only)."""

from __future__ import annotations

import numpy as np

from models.litert.textmap import core_of
from models.training.detector_data import Page, batches, loss_weights

# one row: a lone quantity, a description two heights to its right, a price far away;
# and a second row below
BOXES = [
    (10.0, 10.0, 16.0, 22.0),  # "1": 6 wide, 12 high
    (40.0, 10.0, 120.0, 22.0),  # gap 24 = 2 heights
    (200.0, 10.0, 240.0, 22.0),  # gap 80 > 3 heights: a column
    (10.0, 30.0, 120.0, 42.0),
]


def test_plain_loss_by_default():
    assert (loss_weights((64, 256), BOXES) == 1).all()


def test_short_cores_and_row_gaps_are_weighted():
    w = loss_weights((64, 256), BOXES, short_weight=5.0, gap_weight=3.0)
    x0, y0, x1, y1 = core_of(BOXES[0])
    assert (w[round(y0) : round(y1), round(x0) : round(x1)] == 5.0).all()
    # the gap between the quantity and the description, over the height their cores share
    assert (w[13:19, 16:40] == 3.0).all()
    assert (w[14:18, 121:199] == 1.0).all()  # a column gap stays plain
    assert (w[24:28, :] == 1.0).all()  # between the rows
    assert (w[30:, :] == 1.0).all()  # the second row has no neighbour and is long
    # only those pixels
    assert (
        (w != 1).sum()
        == (w == 5.0).sum() + (w == 3.0).sum()
        == (round(y1) - round(y0)) * (round(x1) - round(x0)) + 6 * 24
    )


def test_batches_carry_the_weights_as_a_second_target_channel():
    gray = np.full((64, 256), 255, np.uint8)
    page = Page("p", gray, BOXES)
    images, targets = next(
        batches(
            [page],
            batch_size=2,
            seed=1,
            synth_share=0,
            crop=64,
            target_width=256,
            short_weight=5.0,
            gap_weight=3.0,
        )
    )
    assert images.shape == (2, 64, 64, 1) and targets.shape == (2, 64, 64, 2)
    assert set(np.unique(targets[..., 0])) <= {0.0, 1.0}
    assert set(np.unique(targets[..., 1])) <= {1.0, 3.0, 5.0}
    plain = next(batches([page], batch_size=1, seed=1, synth_share=0, crop=64))[1]
    assert (plain[..., 1] == 1).all()
