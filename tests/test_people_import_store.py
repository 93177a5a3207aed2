"""The pieces of the browser import that need no server: header recognition, column
letters, and the store that keeps an upload between preview and import."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.errors import NotFoundError
from orchestrator.participants.columns import column_of
from orchestrator.participants.import_preview import UploadStore, column_letter, preview


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("Forum Wunsch 1", "forum_choice_1"),
        ("Forum-Wunsch 2", "forum_choice_2"),
        ("1. Wunsch", "forum_choice_1"),
        ("Wunschforum 3", "forum_choice_3"),
        ("Erstwunsch", "forum_choice_1"),
        ("Zweitwahl", "forum_choice_2"),
        ("forum_choice_2", "forum_choice_2"),
        ("E-Mail", "email"),
        ("Lieblingsfarbe", None),
        ("Forum", None),  # which rank? not guessed
    ],
)
def test_headers_are_recognised_or_not_at_all(header: str, column: str | None) -> None:
    assert column_of(header) == column


def test_column_letters_are_excels() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 27, 701, 702)] == [
        "A",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]


def test_preview_names_unknown_columns_and_bad_rows() -> None:
    data = b"E-Mail;Nachname;Farbe\nx@example.org;Ng;rot\nkaputt;Li;blau\n"
    found = preview("liste.csv", data, set())
    assert [(m.letter, m.header, m.column) for m in found.unknown] == [("C", "Farbe", None)]
    assert (found.rows, found.good, found.bad_rows) == (2, 1, 1)
    assert found.errors[0].row == 3


def test_the_store_keeps_a_file_for_its_conference_for_an_hour(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    name = store.put(7, "Liste\r\n.csv", b"E-Mail\nx@example.org\n")
    kept = store.get(7, name)
    assert (kept.filename, kept.data) == ("Liste.csv", b"E-Mail\nx@example.org\n")
    with pytest.raises(NotFoundError):
        store.get(8, name)  # another conference's upload
    for wrong in ("../../etc/passwd", "x", name + "/"):
        with pytest.raises(NotFoundError):
            store.get(7, wrong)
    store.purge(now=time.time() + 3601)
    with pytest.raises(NotFoundError):
        store.get(7, name)
    assert list((tmp_path / "uploads").iterdir()) == []
