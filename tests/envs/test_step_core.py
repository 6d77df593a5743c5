"""The step core every env shares (envs/common.py) and the episode-start draw of the built-in envs."""

from __future__ import annotations

import numpy as np
import pytest

from donkeyrl.envs.common import (EpisodeCore, EpisodeLimits, auto_max_steps, classify_step, donkey_reward,
                                  fit_image, step_info)
from donkeyrl.envs.embedded import TrackChoice, draw_start
from donkeyrl.sim.track import Track
from donkeyrl.units import CONTROL_PERIOD_SEC


def test_classify_checks_failures_before_limits_in_order() -> None:
    limits = EpisodeLimits(max_cte=8.0, max_laps=2)
    args = dict(stuck=True, end_of_road=True, lap_count=2, steps=10, max_steps=10, limits=limits)
    assert classify_step(0.0, "barrier", **args) == ("hit", None)
    assert classify_step(9.0, "none", **args) == ("cte", None)
    assert classify_step(0.0, "none", **args) == (None, "stuck")
    assert classify_step(0.0, "none", **dict(args, stuck=False)) == (None, "end_of_road")
    assert classify_step(0.0, "none", **dict(args, stuck=False, end_of_road=False)) == (None, "max_laps")
    assert classify_step(0.0, "none", **dict(args, stuck=False, end_of_road=False, lap_count=0)) == \
        (None, "step_limit")
    assert classify_step(0.0, "none", **dict(args, stuck=False, end_of_road=False, lap_count=0, steps=9)) == \
        (None, None)


def test_donkey_reward_is_gym_donkeycars() -> None:
    assert donkey_reward(2.0, 3.0, "none", False, 8.0) == pytest.approx(0.75 * 3.0)
    assert donkey_reward(2.0, -1.0, "none", False, 8.0) == -1.0
    assert donkey_reward(0.0, 3.0, "barrier", False, 8.0) == -2.0
    assert donkey_reward(9.0, 3.0, "none", False, 8.0) == -1.0
    assert donkey_reward(0.0, 3.0, "none", True, 8.0) == -1.0


def test_episode_core_counts_steps_and_writes_the_reason() -> None:
    core = EpisodeCore(EpisodeLimits(max_steps=3))
    core.start(track_length=500.0)
    outs = []
    for k in range(3):
        info: dict = {}
        outs.append((core.step(info, cte=0.0, hit="none", forward_vel=1.0, progress=5.0 * (k + 1), lap_count=0,
                               end_of_road=False), info))
    assert [o[0][1:] for o in outs] == [(False, False), (False, False), (False, True)]
    assert outs[-1][1] == {"truncated_reason": "step_limit"} and outs[0][0][0] == 1.0
    info = {}
    core.start(track_length=None)
    assert core.steps == 0 and core.step(info, cte=9.0, hit="none", forward_vel=1.0, progress=0.0, lap_count=0,
                                         end_of_road=False) == (-1.0, True, False)
    assert info == {"terminated_reason": "cte"}


def test_automatic_step_limit_from_the_track_length() -> None:
    assert auto_max_steps(100.0) == 1000 and auto_max_steps(1e6) == 6000
    assert auto_max_steps(500.0) == int(np.ceil(1.5 * 500.0 / 4.0 / CONTROL_PERIOD_SEC)) == 3750
    core = EpisodeCore(EpisodeLimits())
    core.start(None)
    assert core.max_steps == 2000  # no path known (real simulator without nodes)


def test_bad_limits_are_named() -> None:
    with pytest.raises(ValueError, match="max_cte"):
        EpisodeLimits(max_cte=0.0).check()
    with pytest.raises(ValueError, match="max_laps"):
        EpisodeLimits(max_laps=0).check()


def test_fit_image_crops_greys_and_resizes() -> None:
    img = np.zeros((120, 160, 3), np.uint8)
    img[:48] = 255
    img[48:, :, 1] = 100
    grey = fit_image(img, 64, 32, True, 0.4)
    assert grey.shape == (32, 64, 1) and grey.max() < 100 and grey.flags.writeable
    rgb = fit_image(grey, 32, 16, False, 0.0)
    assert rgb.shape == (16, 32, 3) and np.array_equal(rgb[..., 0], rgb[..., 1])
    with pytest.raises(ValueError, match="crop_top"):
        fit_image(img, 64, 32, True, 1.0)


def test_step_info_has_the_contract_keys() -> None:
    info = step_info(pos=(1.0, 0.0, 2.0), cte=0.5, speed=2.0, forward_vel=2.0, hit="none", lap_count=1,
                     last_lap_time=9.0, lap_times=(9.0,), gyro=(0.0, 0.1, 0.0), accel=(0.0, 0.0, 0.0),
                     vel=(0.0, 0.0, 2.0), car=(0.0, 0.0, 90.0), progress=10.0, track_length=200.0, off_track=False,
                     track="oval", time=12.0, steering=0.1, throttle=0.5, heading_error=0.01)
    assert {"pos", "cte", "speed", "forward_vel", "hit", "lap_count", "last_lap_time"} <= set(info)
    assert info["lap_times"] == [9.0]


def test_track_choice_takes_names_regimes_and_tracks() -> None:
    rng = np.random.default_rng(0)
    fixed = TrackChoice("oval")
    assert fixed.fixed and fixed.pick(rng).name == "oval"
    state = rng.bit_generator.state
    fixed.pick(rng)
    assert rng.bit_generator.state == state, "a fixed track draws nothing"
    several = TrackChoice(["oval", "warehouse"])
    assert {several.pick(rng).name for _ in range(20)} == {"oval", "warehouse"}
    procedural = TrackChoice("procedural")
    names = {procedural.pick(rng).name for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("procedural-") for n in names)
    catalogue = TrackChoice("catalogue")
    assert not catalogue.fixed and len(catalogue.tracks) >= 5
    road = Track.from_waypoints("line", np.array([[0.0, z] for z in range(0, 61, 10)], float), 3.0, closed=False)
    assert TrackChoice(road).pick(rng) is road
    assert several.pick(rng, {"track": "mini_monaco"}).name == "mini_monaco"
    with pytest.raises(ValueError, match="nowhere"):
        TrackChoice(["oval", "nowhere"])


def test_draw_start_is_reproducible_from_the_generator() -> None:
    choice = TrackChoice(["oval", "warehouse", "mini_monaco"])

    def draws(seed: int) -> list:
        rng = np.random.default_rng(seed)
        return [draw_start(rng, choice, None, start_noise=True, domain_randomization=True) for _ in range(4)]

    a, b = draws(1), draws(1)
    assert [(s.track.name, s.lateral, s.yaw_offset, s.appearance) for s in a] == \
           [(s.track.name, s.lateral, s.yaw_offset, s.appearance) for s in b]
    quiet = draw_start(np.random.default_rng(1), choice, None, start_noise=False, domain_randomization=False)
    assert (quiet.lateral, quiet.yaw_offset, quiet.appearance) == (0.0, 0.0, None)


def test_domain_randomisation_keeps_the_tracks_own_look_in_some_episodes() -> None:
    """About NOMINAL_LOOK_SHARE of randomised episodes are drawn in the track's own look (the look
    of every evaluation), the others in a random one."""
    from donkeyrl.envs.embedded import NOMINAL_LOOK_SHARE

    rng = np.random.default_rng(3)
    choice = TrackChoice(["oval"])
    looks = [draw_start(rng, choice, None, start_noise=True, domain_randomization=True).appearance
             for _ in range(400)]
    own = sum(a is None for a in looks) / len(looks)
    assert abs(own - NOMINAL_LOOK_SHARE) < 0.07, own
    assert len({a for a in looks if a is not None}) > 250
