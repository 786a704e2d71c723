"""The token: where it is found, how it is shown, how it is removed from text and logs."""

from __future__ import annotations

import io

import huggingface_hub
import pytest

from orchestrator.execution.runners.base import LogPump
from orchestrator.secrets import HfToken, Redactor, find_hf_token


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("no_token")
def test_the_token_is_found_in_order_environment_dotenv_hub_file(monkeypatch, tmp_path):
    assert find_hf_token() is None
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: " hf_fromfile \n")
    assert find_hf_token() == HfToken("hf_fromfile", "the Hub's token file")
    (tmp_path / ".env").write_text("OTHER=1\nHUGGING_FACE_HUB_TOKEN= hf_second \n")
    assert find_hf_token() == HfToken("hf_second", ".env (HUGGING_FACE_HUB_TOKEN)")
    (tmp_path / ".env").write_text("HF_TOKEN=hf_first\nHUGGING_FACE_HUB_TOKEN=hf_second\n")
    assert find_hf_token() == HfToken("hf_first", ".env (HF_TOKEN)")
    assert find_hf_token(tmp_path / "missing.env") == HfToken("hf_fromfile", "the Hub's token file")
    assert find_hf_token(None) == HfToken("hf_fromfile", "the Hub's token file")
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", " hf_envtwo ")
    assert find_hf_token() == HfToken("hf_envtwo", "$HUGGING_FACE_HUB_TOKEN")
    monkeypatch.setenv("HF_TOKEN", "hf_envone")
    assert find_hf_token() == HfToken("hf_envone", "$HF_TOKEN")
    monkeypatch.setenv("HF_TOKEN", "   ")  # blank: the next place is asked
    assert find_hf_token() == HfToken("hf_envtwo", "$HUGGING_FACE_HUB_TOKEN")


@pytest.mark.usefixtures("no_token")
def test_blank_values_are_no_token(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("HF_TOKEN=\nHUGGING_FACE_HUB_TOKEN=  \n")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "  ")
    assert find_hf_token() is None


def test_a_token_never_shows_its_value():
    token = HfToken("hf_secretvalue", "$HF_TOKEN")
    assert repr(token) == str(token) == "HfToken(source='$HF_TOKEN', value='***')"
    assert f"{token}" == str(token) and "hf_secret" not in f"{token!r}"


def test_the_redactor_masks_every_secret_longest_first():
    redact = Redactor("abcd", "abcdefgh", None, "", "abc", "abcd")
    assert redact("x abcdefgh y abcd z abc") == "x *** y *** z abc"  # under 4 characters: kept
    assert redact.bytes(b"\xff abcd \xe2\x82") == b"\xff *** \xe2\x82"  # bytes kept as they were
    assert Redactor().bytes(b"\xff abcd") == b"\xff abcd"
    assert Redactor(None)("abcd") == "abcd"
    # Longest first, not in the order of the text: a secret inside a longer one that sorts
    # after it would otherwise leave the longer one's ends in the log.
    assert Redactor("bcde", "abcdef")("x abcdef y bcde") == "x *** y ***"


def test_the_log_pump_writes_whole_lines_redacted_and_keeps_a_tail():
    sink = io.BytesIO()
    pump = LogPump(sink, Redactor("hf_SECRET"))
    pump.feed(b"first hf_SEC")
    assert sink.getvalue() == b""  # half a line waits for its end
    pump.feed(b"RET line\nsecond")
    assert sink.getvalue() == b"first *** line\n"
    pump.close()
    assert sink.getvalue() == b"first *** line\nsecond\n"
    assert pump.tail() == "first *** line\nsecond\n"
    pump.close()  # nothing pending: nothing more
    assert sink.getvalue() == b"first *** line\nsecond\n"


def test_a_pump_closed_while_its_process_still_writes_keeps_the_output():
    sink = io.BytesIO()
    pump = LogPump(sink, Redactor())
    pump.feed(b"last words")
    pump.close()  # at a timeout, before the copy thread has read the rest
    pump.feed(b" and more\nthe end\n")
    pump.close()
    assert sink.getvalue() == b"last words\n and more\nthe end\n"


def test_a_tail_cut_inside_a_character_is_still_text():
    pump = LogPump(io.BytesIO(), Redactor())
    pump.feed("é".encode() * LogPump.TAIL_BYTES + b"\n")  # 2 bytes each: the cut splits one
    tail = pump.tail()
    assert tail.startswith("\ufffd") and tail.endswith("é\n")


def test_the_tail_is_the_last_bytes_only():
    pump = LogPump(io.BytesIO(), Redactor())
    pump.feed(b"a" * LogPump.TAIL_BYTES + b"\nend\n")
    assert pump.tail() == "a" * (LogPump.TAIL_BYTES - 5) + "\nend\n"


class FullDisk(io.BytesIO):
    def write(self, data):
        raise OSError(28, "No space left on device")


def test_a_log_that_cannot_be_written_still_drains_and_keeps_its_tail():
    pump = LogPump(FullDisk(), Redactor("hf_SECRET"))
    pump.feed(b"one hf_SECRET\ntwo\n")
    pump.feed(b"three\n")
    pump.close()
    assert isinstance(pump.write_error, OSError) and pump.write_error.errno == 28
    assert pump.tail() == "one ***\ntwo\nthree\n"


def test_a_log_that_cannot_be_flushed_says_so():
    class NoFlush(io.BytesIO):
        calls = 0

        def flush(self):
            NoFlush.calls += 1
            if NoFlush.calls > 1:
                raise OSError(5, "Input/output error")

    pump = LogPump(NoFlush(), Redactor())
    pump.feed(b"line\n")
    pump.close()
    assert pump.write_error is not None and pump.write_error.errno == 5
