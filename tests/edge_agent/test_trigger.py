"""The placement trigger on generated frame sequences."""

from __future__ import annotations

import numpy as np

from edge_agent.trigger import PlacementTrigger, TriggerConfig

H, W = 240, 320


def background(level: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    frame = np.full((H, W, 3), level, np.uint8)
    # a little texture and sensor noise, as a real table top has
    frame[::8, :, :] = level + 10
    noise = rng.integers(-3, 4, size=frame.shape)
    return np.clip(frame.astype(int) + noise, 0, 255).astype(np.uint8)


def with_receipt(x: int, y: int = 40, level: int = 60) -> np.ndarray:
    frame = background(level)
    frame[y : y + 160, x : x + 90] = 235  # a white receipt
    frame[y + 20 : y + 140 : 12, x + 10 : x + 80] = 30  # its text lines
    return frame


def run(trigger: PlacementTrigger, frames: list[np.ndarray]) -> list[int]:
    """Indices of the frames the trigger fired on."""
    fired = []
    for i, frame in enumerate(frames):
        still = trigger.update(frame)
        if still is not None:
            assert still is frame
            fired.append(i)
    return fired


def test_fires_once_when_a_receipt_is_placed_and_still() -> None:
    cfg = TriggerConfig(still_frames=4, learn_frames=3)
    frames = [background() for _ in range(5)]
    frames += [with_receipt(x) for x in (0, 40, 80, 120)]  # sliding in: motion
    frames += [with_receipt(120) for _ in range(10)]  # placed and still
    fired = run(PlacementTrigger(cfg), frames)
    assert fired == [5 + 4 + 3], "fires on the 4th still frame, once, although it stays"


def test_rearms_when_removed_and_fires_for_the_next_receipt() -> None:
    cfg = TriggerConfig(still_frames=3, learn_frames=3, clear_frames=2)
    trigger = PlacementTrigger(cfg)
    frames = [background() for _ in range(4)]
    frames += [with_receipt(100) for _ in range(6)]
    frames += [background() for _ in range(3)]  # taken away
    frames += [with_receipt(150) for _ in range(6)]
    fired = run(trigger, frames)
    assert len(fired) == 2
    assert trigger.fired_count == 2
    assert trigger.state == "fired"


def test_no_fire_while_the_scene_keeps_moving() -> None:
    cfg = TriggerConfig(still_frames=3, learn_frames=3)
    frames = [background() for _ in range(4)]
    frames += [with_receipt(x) for x in range(0, 200, 10)]  # a hand moving a receipt about
    trigger = PlacementTrigger(cfg)
    assert run(trigger, frames) == []
    assert trigger.state == "settling"


def test_slow_lighting_change_does_not_fire() -> None:
    cfg = TriggerConfig(still_frames=3, learn_frames=3, background_alpha=0.2)
    frames = [background(60 + i) for i in range(40)]  # dusk to bright, one grey level a frame
    trigger = PlacementTrigger(cfg)
    assert run(trigger, frames) == []
    assert trigger.state == "armed"


def test_removed_before_still_goes_back_to_armed() -> None:
    cfg = TriggerConfig(still_frames=5, learn_frames=3)
    trigger = PlacementTrigger(cfg)
    frames = [background() for _ in range(4)] + [with_receipt(50), with_receipt(90)]
    frames += [background() for _ in range(3)]
    assert run(trigger, frames) == []
    assert trigger.state == "armed"
