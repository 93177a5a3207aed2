"""Room templates: the shipped ones load; a bad one is a start-up error naming file and key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from orchestrator.participants.models import Role
from orchestrator.rooms.templates import DEFAULT_DIR, TemplateError, load_templates


def _copy_shipped(target: Path) -> Path:
    for path in DEFAULT_DIR.glob("*.toml"):
        (target / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return target


def test_shipped_templates_say_what_the_issue_asks() -> None:
    templates = load_templates()
    plenary, forum, device = (
        templates["plenary"],
        templates["forum"],
        templates["hybrid-room-system"],
    )
    assert plenary.lobby and plenary.config["startWithAudioMuted"] is True
    assert (plenary.max_occupants or 0) > (forum.max_occupants or 0)
    assert not forum.lobby and forum.config["startWithAudioMuted"] is False
    assert not device.lobby and device.moderator_roles == {Role.ROOM_SYSTEM}
    assert Role.MODERATOR in forum.moderator_roles and Role.ORGANISER in forum.moderator_roles
    assert plenary.open_before == timedelta(minutes=30)


def test_fragment_is_jitsi_url_hash_syntax() -> None:
    fragment = load_templates()["plenary"].fragment()
    pairs = dict(part.split("=", 1) for part in fragment.split("&"))
    assert pairs["config.startWithAudioMuted"] == "true"
    assert pairs["config.prejoinConfig.enabled"] == "true"
    device = load_templates()["hybrid-room-system"].fragment()
    assert "interfaceConfig.SHOW_CHROME_EXTENSION_BANNER=false" in device


def test_string_values_are_json_and_url_encoded(tmp_path: Path) -> None:
    _copy_shipped(tmp_path)
    (tmp_path / "kino.toml").write_text(
        'title = "Kino"\n[config]\nsubject = "Forum & Co #1"\n', encoding="utf-8"
    )
    fragment = load_templates(tmp_path)["kino"].fragment()
    key, value = fragment.split("=", 1)
    assert key == "config.subject" and "&" not in value and "#" not in value
    assert unquote(value) == '"Forum & Co #1"'


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ('title = "X"\nlobby = "vielleicht"\n', "lobby"),
        ('title = "X"\nmax_occupants = 0\n', "max_occupants"),
        ('title = "X"\nopen_before = "halbe Stunde"\n', "open_before"),
        ('title = "X"\nmoderator_roles = ["kaiser"]\n', "moderator_roles"),
        ('title = "X"\ncolour = "red"\n', "colour"),
        ("lobby = true\n", "title"),
        ('title = "X"\nkey = "y"\n', "key"),
    ],
)
def test_bad_template_names_file_and_key(tmp_path: Path, content: str, key: str) -> None:
    _copy_shipped(tmp_path)
    (tmp_path / "forum.toml").write_text(content, encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        load_templates(tmp_path)
    assert "forum.toml" in caught.value.message and key in caught.value.message


def test_missing_standard_template_is_an_error(tmp_path: Path) -> None:
    _copy_shipped(tmp_path)
    (tmp_path / "plenary.toml").unlink()
    with pytest.raises(TemplateError, match="plenary"):
        load_templates(tmp_path)


def test_unparsable_template_is_an_error(tmp_path: Path) -> None:
    _copy_shipped(tmp_path)
    (tmp_path / "forum.toml").write_text("title = ", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"forum\.toml"):
        load_templates(tmp_path)
