"""Stream keys and credentials never reach the screen, a log or an error (issue 5, items 1 and 5).

``mask_secrets`` is checked on the URL shapes people paste (RTMP ingest URLs of the big services,
cameras with user:password@, keys in query strings, typos). Then the plumbing: a logged exception
whose chain carries a URL, an unexpected error under ``--debug``, a worker thread that dies, and
``blurcli stream`` failing on a malformed URL, a camera that does not exist and a server that is
down, in this process and in a real one.
"""
from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import pytest

from blurcli._cli.common import setup_logging
from blurcli.errors import StreamError
from blurcli.secrets import MASK, forget_secrets, learn_secrets, mask_exception, mask_secrets, register_secret
from tests.hardening_support import assert_clean_failure, cli, run_blurcli
from tests.media_factory import make_clip

KEY = "SECRETKEY"
URL = f"rtmp://127.0.0.1:1/live/{KEY}"


@pytest.fixture(autouse=True)
def _fresh_secrets():
    forget_secrets()
    yield
    forget_secrets()


# ---------------------------------------------------------------- mask_secrets


@pytest.mark.parametrize(
    "text, masked, hidden",
    [
        ("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop", "rtmp://a.rtmp.youtube.com/live2/****", "abcd"),
        ("rtmps://live-api-s.facebook.com:443/rtmp/FB-1234?s_bl=1&s_sc=ABC", "rtmps://live-api-s.facebook.com:443/rtmp/****", "FB-1234"),
        ("rtmp://live.twitch.tv/app/live_123456_AbCdEf", "rtmp://live.twitch.tv/app/****", "live_123456"),
        ("rtmp://host:1935/live/key?token=t0k3n", "rtmp://host:1935/live/****", "t0k3n"),
        ("rtmp://host/live/a/b/c", "rtmp://host/live/****", "a/b/c"),
        ("rtmp://[::1]:1935/live/KEY", "rtmp://[::1]:1935/live/****", "KEY"),
        ("RTMP://HOST/APP/KEY", "RTMP://HOST/APP/****", "KEY"),
        ("rtmpt://h/app/KEY", "rtmpt://h/app/****", "KEY"),
        ("rtmpe://h/app/KEY", "rtmpe://h/app/****", "KEY"),
        ("rtmpts://h/app/KEY", "rtmpts://h/app/****", "KEY"),
        ("rtmp:/h/live/KEY", "rtmp:/h/live/****", "KEY"),  # a typo still carries the key
        ("rtmp:h/live/KEY", "rtmp:h/live/****", "KEY"),
        ("rtmp:///live/KEY", "rtmp:///live/****", "KEY"),  # no host
        ("rtmp://user:pa55word@host/live/KEY", "rtmp://****@host/live/****", "pa55word"),
        ("rtsp://admin:hunter2@10.0.0.5:554/stream1", "rtsp://****@10.0.0.5:554/stream1", "hunter2"),
        ("rtsp://admin:p@ss@cam/x", "rtsp://****@cam/x", "ss@cam"),  # @ inside the password
        ("srt://host:9000?streamid=publish/KEY&passphrase=abcdefgh", "srt://host:9000?streamid=****&passphrase=****", "abcdefgh"),
        ("https://api.example.com/v1?api_key=ZZZZ&access_token=YYYY&page=2", "https://api.example.com/v1?api_key=****&access_token=****&page=2", "ZZZZ"),
        ("rtmp://h/live?key=K3Y", "rtmp://h/live?key=****", "K3Y"),
        ("see rtmp://h/app/KEY, then retry.", "see rtmp://h/app/****, then retry.", "KEY"),
        ("(rtmp://h/app/KEY)", "(rtmp://h/app/****)", "KEY"),
        ("url='rtmp://h/app/KEY'", "url='rtmp://h/app/****'", "KEY"),
        ("two: rtmp://a/x/K1 and rtsp://u:p@b/y", "two: rtmp://a/x/**** and rtsp://****@b/y", "K1"),
        ("line\nrtmp://h/live/KEY\nnext", "line\nrtmp://h/live/****\nnext", "KEY"),
    ],
)
def test_mask_secrets(text, masked, hidden):
    assert mask_secrets(text) == masked
    assert hidden not in mask_secrets(text)


@pytest.mark.parametrize(
    "text",
    ["rtmp://host/app", "rtmp://host/app/", "rtmp: connection refused", "C:/Users/me/photo.jpg", "file:///tmp/a.mp4",
     "udp://239.0.0.1:1234", "https://github.com/blurcli/blurcli#readme", "", "no url here", "in.jpg: 3 faces"],
)
def test_text_without_secrets_is_unchanged(text):
    assert mask_secrets(text) == text


def test_learned_secrets_are_masked_anywhere_and_forgotten_between_commands():
    assert mask_secrets(f"the server refused key {KEY}") == f"the server refused key {KEY}"
    learn_secrets(f"--rtmp {URL}")
    register_secret("hunter22")
    assert mask_secrets(f"the server refused key {KEY}, password hunter22") == f"the server refused key {MASK}, password {MASK}"
    learn_secrets("rtsp://ab:cd@host/x")  # secrets under 4 characters are masked in URLs only
    assert mask_secrets("abc cd") == "abc cd"
    forget_secrets()
    assert KEY in mask_secrets(f"key {KEY}")


def test_mask_exception_masks_the_whole_chain_and_file_names():
    try:
        try:
            raise OSError(111, "Connection refused", URL)
        except OSError as inner:
            raise StreamError(f"could not stream to {URL}") from inner
    except StreamError as exc:
        caught = exc
    caught.__cause__.add_note(f"while opening {URL}")
    mask_exception(caught)
    for exc in (caught, caught.__cause__):
        assert KEY not in str(exc) and KEY not in repr(exc.args)
    assert caught.__cause__.filename == "rtmp://127.0.0.1:1/live/****"
    assert KEY not in " ".join(caught.__cause__.__notes__)


def test_mask_exception_on_pyav_errors():
    import av

    exc = av.error.ConnectionRefusedError(111, "Connection refused", URL)
    mask_exception(exc)
    assert KEY not in str(exc) and "****" in str(exc)


# ---------------------------------------------------------------- logs and tracebacks


def _log_failure(logger: logging.Logger) -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused", URL)
        except OSError as inner:
            raise StreamError(f"could not stream to {URL}") from inner
    except StreamError:
        logger.warning("stream to %s failed", URL, exc_info=True)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_logged_exception_carrying_a_url_is_masked(capsys, debug):
    setup_logging(debug)
    try:
        _log_failure(logging.getLogger("blurcli.live"))
    finally:
        setup_logging(False)
    err = capsys.readouterr().err
    assert "stream to rtmp://127.0.0.1:1/live/****" in err and "StreamError" in err
    assert KEY not in err
    if debug:
        assert "ConnectionRefusedError" in err and "StreamError" in err  # the chain is shown, masked


def test_exception_formatted_by_another_handler_first_is_still_masked(capsys, caplog):
    """pytest's (or any) handler may format the traceback text before ours sees the record."""
    root = logging.getLogger()
    plain = logging.StreamHandler()  # formats and caches record.exc_text, unmasked, on the root logger
    plain.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(plain)
    setup_logging(False)
    try:
        logger = logging.getLogger("blurcli.test")
        logger.propagate = False
        logger.addHandler(plain)
        for handler in logging.getLogger("blurcli").handlers:
            logger.addHandler(handler)  # ours runs second
        _log_failure(logger)
    finally:
        root.removeHandler(plain)
        logger.handlers.clear()
        logger.propagate = True
    ours = capsys.readouterr().err.split("stream to")[-1]
    assert KEY not in ours


def test_unexpected_error_under_debug_is_masked(tmp_path, monkeypatch, caplog):
    """A bug's traceback is shown with --debug, through the masking logger (never raw to stderr)."""
    from blurcli._cli import stream as stream_cli

    class Broken:
        def __init__(self, settings):
            raise RuntimeError(f"bug while connecting to {URL}; server said key {KEY} is bad")

    monkeypatch.setattr(stream_cli, "LiveStream", Broken)
    caplog.errors_expected = True
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    for debug in ([], ["--debug"]):
        outcome = cli(*debug, "stream", clip, "--rtmp", URL)
        assert outcome.code == 1, outcome.stderr
        assert outcome.exception is None
        assert KEY not in outcome.stderr + outcome.stdout
        assert outcome.lines()[-1].startswith("error: unexpected RuntimeError")
        if debug:
            assert "Traceback" in outcome.stderr and "Broken" in outcome.stderr


def test_worker_thread_crash_is_logged_masked(tmp_path, monkeypatch, caplog):
    from blurcli._cli import stream as stream_cli

    class CrashingWorker:
        def __init__(self, settings):
            self.stats = SimpleNamespace(sent=0, repeated=0, dropped=0, whole_hidden=0, reconnects=0, line=lambda: "")

        def run(self):
            worker = threading.Thread(target=self._work, name="blurcli-sender")
            worker.start()
            worker.join()

        def _work(self):
            raise BrokenPipeError(32, "Broken pipe", URL)

    monkeypatch.setattr(stream_cli, "LiveStream", CrashingWorker)
    caplog.errors_expected = True
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    outcome = cli("stream", clip, "--rtmp", URL, "--no-status")
    assert KEY not in outcome.stderr + outcome.stdout
    assert "blurcli-sender" in outcome.stderr and "BrokenPipeError" in outcome.stderr


# ---------------------------------------------------------------- blurcli stream: bad input


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "in.mp4", frames=10, size=(64, 48))


STREAM_ROWS = [
    # id, arguments (CLIP is replaced by a real clip), exit code, message, parser error
    ("camera-does-not-exist", ["--device", "99", "--rtmp", URL], 3, r"camera /dev/video99 not found", False),
    ("camera-as-a-path", ["--device", "/dev/video99", "--rtmp", URL], 2, r"--device", True),
    ("url-typo-one-slash", ["CLIP", "--rtmp", f"rtmp:/127.0.0.1/live/{KEY}"], 2, r"must start with rtmp://", False),
    ("url-wrong-scheme", ["CLIP", "--rtmp", f"http://127.0.0.1/live/{KEY}"], 2, r"must start with rtmp://", False),
    ("url-without-host", ["CLIP", "--rtmp", "rtmp://"], 2, r"(host|malformed|must look like)", False),
    ("url-without-host-with-key", ["CLIP", "--rtmp", f"rtmp:///live/{KEY}"], 2, r"(host|malformed|must look like)", False),
    ("source-missing", ["missing.mp4", "--rtmp", URL], 3, r"missing\.mp4 does not exist", False),
    ("source-is-text", ["TEXT", "--rtmp", URL], 3, r"cannot open .*notes\.mp4", False),
    ("rtmp-and-output", ["CLIP", "--rtmp", URL, "--output", "out.flv"], 2, r"not both", False),
    ("output-unknown-extension", ["CLIP", "--output", "out.xyz"], 2, r"\.flv or \.mp4", False),
]


@pytest.mark.parametrize("args, code, message, usage", [r[1:] for r in STREAM_ROWS], ids=[r[0] for r in STREAM_ROWS])
def test_stream_bad_input_fails_cleanly_without_the_key(tmp_path, clip, monkeypatch, args, code, message, usage):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.mp4").write_text("not a video")
    args = [str(clip) if a == "CLIP" else "notes.mp4" if a == "TEXT" else a for a in args]
    outcome = cli("stream", *args, "--no-status")
    assert_clean_failure(outcome, code, message, usage=usage)
    assert KEY not in outcome.stderr + outcome.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "notes.mp4"]  # nothing written


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
@pytest.mark.parametrize("via", ["option", "environment"])
def test_server_down_in_a_real_process_never_shows_the_key(tmp_path, clip, debug, via):
    url = f"rtmp://user:pa55word@127.0.0.1:1/live/{KEY}?token=T0KEN"
    args = [*debug, "stream", clip, "--max-retries", "0", "--no-status"]
    env = {}
    if via == "option":
        args += ["--rtmp", url]
    else:
        env["BLURCLI_RTMP_URL"] = url
    outcome = run_blurcli(*args, cwd=tmp_path, timeout=120, **env)
    everything = outcome.stderr + outcome.stdout
    assert outcome.code == 8, everything
    for secret in (KEY, "pa55word", "T0KEN"):
        assert secret not in everything
    assert "rtmp://****@127.0.0.1:1/live/****" in everything
    if debug:
        assert "Traceback" in everything
    else:
        assert "Traceback" not in everything and outcome.lines()[-1].startswith("error: could not stream")


def test_camera_that_does_not_exist_in_a_real_process(tmp_path):
    outcome = run_blurcli("stream", "--device", "99", "--rtmp", URL, cwd=tmp_path, timeout=120)
    assert_clean_failure(outcome, 3, r"camera /dev/video99 not found")
    assert KEY not in outcome.stderr + outcome.stdout
