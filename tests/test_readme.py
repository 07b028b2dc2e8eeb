"""README states what the code declares."""

from pathlib import Path

from stages.registry import stage_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_stage_table_is_the_registrys():
    table = stage_table()
    assert table.count("\n") > 15  # a row per declared task
    assert table in README.read_text(), "README's stage table differs from stages.registry.stage_table()"
