"""The local API key: from the setting, or generated once and kept for the owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from backend.runtime.settings import Settings, load_settings
from backend.security.api_key import api_key, key_file, load_or_create
from backend.security.private_files import PrivateFileError


def test_generated_once_kept_and_readable_by_the_owner_only():
    first = api_key(Settings())
    assert len(first.reveal()) == 43
    assert api_key(Settings()) == first
    path = key_file()
    assert path.read_text().strip() == first.reveal()
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "***" in repr(first) and first.reveal() not in repr(first)


def test_the_setting_wins_and_nothing_is_written():
    settings = load_settings({"FEEDPOOL_API_KEY": "from-the-environment"})
    assert api_key(settings).reveal() == "from-the-environment"
    assert not key_file().exists()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_key_file_others_can_read_is_tightened(tmp_path):
    path = tmp_path / "api_key"
    path.write_text("kept-key\n")
    path.chmod(0o644)
    assert load_or_create(path).reveal() == "kept-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_empty_key_file_gets_a_new_key(tmp_path):
    path = tmp_path / "api_key"
    path.write_text("")
    key = load_or_create(path).reveal()
    assert key and path.read_text().strip() == key
    assert [p.name for p in tmp_path.iterdir()] == ["api_key"]  # no temporary file left


def test_a_key_file_that_holds_no_key_says_so_and_what_to_do(tmp_path):
    path = tmp_path / "api_key"
    path.write_bytes(b"\xff\xfe not a key\n")
    with pytest.raises(PrivateFileError) as caught:
        api_key(Settings(), path)
    assert str(caught.value) == (
        f"{path} holds no API key (it is not ASCII text); delete it to generate a new key, "
        "or set FEEDPOOL_API_KEY"
    )


def test_print_api_key_prints_the_kept_key(tmp_path):
    def printed(**env: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "backend", "--print-api-key"],
            env={**{k: v for k, v in os.environ.items() if k != "FEEDPOOL_API_KEY"}, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout.strip()

    generated = printed()
    assert generated == api_key(Settings()).reveal()
    assert printed() == generated
    assert printed(FEEDPOOL_API_KEY="mine") == "mine"
