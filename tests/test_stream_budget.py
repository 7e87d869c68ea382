"""What the machine sustains live: the start-up choice of size and preset, and the step-down."""
from __future__ import annotations

import logging

import av
import numpy as np
import pytest

from blurcli.live import LiveStream, SourceSpec, StreamSettings
from blurcli.live import budget
from blurcli.live.budget import StepDown, choose
from blurcli.live.encode import Encoder, EncoderSettings, Muxer
from test_stream import SquareFinder, _privacy, read_back, write_flash_beep_clip

PICTURE = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), np.uint8)


def _timer(costs: dict):
    """A fake encoder timer: ms a frame by (height, preset)."""
    calls = []

    def timer(size, preset, picture, fps, bitrate):
        calls.append((size, preset))
        return costs[(size[1], preset)]

    timer.calls = calls
    return timer


COSTS = {(1080, "veryfast"): 40.0, (1080, "superfast"): 15.0, (720, "veryfast"): 14.0, (720, "superfast"): 8.0,
         (540, "superfast"): 5.0, (360, "superfast"): 3.0}


def _choose(**kwargs):
    args = dict(detect_ms=30.0, detect_rate=13.3, bitrate_for=lambda w, h: 4_500_000, picture=PICTURE, cores=2)
    args.update(kwargs)
    return choose((1920, 1080), 30, **args)


def test_a_1080p_source_on_two_cores_is_sent_at_720p_and_the_line_says_why():
    timer = _timer(COSTS)
    choice = _choose(timer=timer)
    assert choice.size == (1280, 720) and choice.preset == "veryfast"
    assert timer.calls == [((1920, 1080), "veryfast"), ((1280, 720), "veryfast")]  # best first, stops at the first fit
    assert "sending 1280x720 with x264 veryfast" in choice.line and "1920x1080 veryfast" in choice.line
    assert "of 2 cores" in choice.line


def test_a_fast_machine_keeps_the_source_size_and_a_slow_one_takes_the_cheapest_rung():
    assert _choose(timer=_timer(COSTS), cores=8).size == (1920, 1080)
    slow = _choose(timer=_timer({k: v * 20 for k, v in COSTS.items()}))
    assert slow.size == (640, 360) and slow.preset == "superfast" and "expect repeated or hidden frames" in slow.line


def test_size_and_preset_given_by_the_user_are_kept():
    forced = _choose(timer=_timer(COSTS), size=(1920, 1080), preset="veryfast")
    assert (forced.size, forced.preset) == ((1920, 1080), "veryfast") and "as --size and --preset say" in forced.line
    assert _choose(timer=_timer(COSTS), preset="superfast").preset == "superfast"
    sized = _choose(timer=_timer(COSTS), size=(1920, 1080))
    assert sized.size == (1920, 1080) and sized.preset == "superfast"  # the size kept, the preset chosen


def test_the_real_encoder_timer_measures_this_machine():
    small, large = (budget.encode_ms(size, "veryfast", PICTURE, 30, 4_500_000) for size in ((320, 180), (1280, 720)))
    assert 0 < small < large


def test_step_down_first_to_superfast_then_a_slower_detection_then_says_nothing_is_left(caplog):
    presets, intervals = [], []
    step = StepDown(30, "veryfast", presets.append, 0.075, intervals.append, max_interval=0.2)
    caplog.set_level(logging.WARNING, logger="blurcli")

    def window(repeated=0, whole=0, behind=0):
        for i in range(150):  # a window: 5 s at 30 fps
            step.tick(repeated=i < repeated, whole=i < whole, backlog=20 if i < behind else 0)

    window(repeated=50)  # the start-up: not counted
    window()  # a good window: nothing changes
    assert not presets and not intervals
    window(repeated=2)  # 2 of 150 is not over 2%
    assert not presets
    window(repeated=10)
    assert presets == ["superfast"]
    window(behind=30)
    assert intervals == [pytest.approx(0.1125)]
    window(whole=10)
    assert intervals == [pytest.approx(0.1125), pytest.approx(0.16875)]
    window(whole=10)
    window(whole=10)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("stepping down" in m for m in messages) == 3
    assert sum("nothing is left to step down" in m for m in messages) == 1  # said once
    assert "10 frames repeated" in messages[0] and "x264 superfast" in messages[0]


def test_a_preset_the_user_chose_is_never_stepped_down():
    presets, intervals = [], []
    step = StepDown(30, None, presets.append, 0.075, intervals.append, max_interval=0.2)
    for _ in range(350):  # the start-up window and two more
        step.tick(repeated=True, whole=False, backlog=0)
    assert not presets and intervals


def test_the_encoder_changes_preset_mid_stream_in_one_playable_file(tmp_path):
    enc = Encoder(EncoderSettings(320, 240, 30, 1_000_000, 60, "veryfast"))
    out = tmp_path / "switch.mp4"
    muxer = Muxer(str(out), "mp4", enc)
    rng = np.random.default_rng(1)
    silence = np.zeros((2, 1600), np.float32)
    for i in range(90):
        packets = enc.set_preset("superfast") if i == 45 else []
        packets += enc.encode(i, rng.integers(0, 255, (240, 320, 3), np.uint8), silence)
        muxer.mux(packets)
    muxer.mux(enc.flush())
    muxer.close()
    with pytest.raises(ValueError, match="other stream headers"):
        enc.set_preset("ultrafast")  # no CABAC: another PPS, which no muxer could take mid-stream
    enc.close()
    packets, frames, *_ = read_back(out)
    assert len(frames) == len(packets) == 90
    assert [i for i, (_, key) in enumerate(packets) if key] == [0, 45]  # the new encoder starts with an IDR
    assert np.abs(np.diff([p for p, _ in packets]) - 1 / 30).max() < 1e-3


def test_a_stream_that_falls_behind_steps_down_and_its_recording_plays_to_the_end(tmp_path, monkeypatch, caplog):
    """Every window counts as overloaded here: the run steps to superfast, then slows detection,
    and the recording has every tick in one file."""
    monkeypatch.setattr(StepDown, "WINDOW_S", 0.5)
    monkeypatch.setattr(StepDown, "LIMIT", -1.0)
    caplog.set_level(logging.INFO, logger="blurcli")
    clip = write_flash_beep_clip(tmp_path / "clip.mp4", seconds=3.0)
    out = tmp_path / "live.mp4"
    settings = StreamSettings(SourceSpec(str(clip), loop=True), output=out, fps=30, delay=0.3, duration=4.5)
    stats = LiveStream(settings, privacy=_privacy(SquareFinder())).run()
    assert stats.step_downs >= 2 and stats.encoding.endswith("superfast")
    messages = [r.getMessage() for r in caplog.records]
    assert any("source at 30 fps: sending 160x120 with x264 veryfast" in m for m in messages)
    assert any("stepping down to x264 superfast" in m for m in messages)
    assert any("stepping down to a detection every" in m for m in messages)
    packets, frames, audio, _, codecs = read_back(out)
    assert codecs == ("h264", "aac", 48000, 2)
    assert len(frames) == len(packets) == stats.recorded == stats.ticks
    keys = [i for i, (_, key) in enumerate(packets) if key]
    assert keys == list(range(0, len(packets), 60))  # the switch waited for a keyframe: still 2 s apart
    assert np.abs(np.diff([p for p, _ in packets]) - 1 / 30).max() < 1e-3
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.profile == "High"
