"""Settings: defaults need nothing; env and darkroom.toml override them."""

from __future__ import annotations

from pathlib import Path

from darkroom.config import Settings


def test_defaults_live_in_home(monkeypatch, tmp_path):
    monkeypatch.delenv("DARKROOM_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.home == Path.home() / ".darkroom"
    assert s.resolved_database_url == f"sqlite:///{s.home / 'darkroom.db'}"
    assert s.resolved_storage_url == str(s.home / "blobs")
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_env_beats_toml(monkeypatch, tmp_path):
    (tmp_path / "darkroom.toml").write_text('port = 9001\nhost = "0.0.0.0"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DARKROOM_PORT", "9002")
    monkeypatch.setenv("DARKROOM_STORAGE_OPTIONS", '{"anon": true}')
    s = Settings()
    assert s.port == 9002
    assert s.host == "0.0.0.0"
    assert s.storage_options == {"anon": True}
