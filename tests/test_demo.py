"""``python -m stages.demo`` writes synthetic data only where it cannot overwrite a user's files."""

from __future__ import annotations

import pytest

from stages import demo, storage


def arguments(data, **changes):
    return demo.parse_args(["--data", str(data), "--images", "1", "--test-images", "1", "--size", "96",
                            *[item for key, value in changes.items() for item in (f"--{key}", str(value))]])


def test_a_folder_with_foreign_files_is_refused_and_left_alone(tmp_path, capsys):
    data = tmp_path / "mine"
    (data / "test").mkdir(parents=True)
    (data / "sample_submission.csv").write_text("ID,ImageWidth,ImageHeight,PredictionString\nx,1,1,\n")
    before = (data / "sample_submission.csv").read_text()
    assert demo.main(["--data", str(data), "--work", str(tmp_path / "work")]) == 2
    message = capsys.readouterr().err
    assert str(data) in message and "no train.csv" in message and "empty or absent folder" in message
    assert (data / "sample_submission.csv").read_text() == before and sorted(p.name for p in data.iterdir()) == [
        "sample_submission.csv", "test"]


@pytest.mark.parametrize("state", ["absent", "empty"])
def test_an_absent_or_empty_folder_gets_synthetic_data(tmp_path, state, capsys):
    data = tmp_path / "data"
    if state == "empty":
        data.mkdir()
    demo.prepare_data(arguments(data))
    assert storage.is_done(str(data)) and (data / "train.csv").exists()
    assert f"({'new' if state == 'absent' else 'empty'} folder)" in capsys.readouterr().out


def test_generated_or_kaggle_layout_data_is_used_as_it_is(tmp_path, capsys):
    generated = tmp_path / "generated"
    demo.prepare_data(arguments(generated))
    capsys.readouterr()
    stamp = (generated / "train.csv").stat().st_mtime_ns
    demo.prepare_data(arguments(generated))
    assert (generated / "train.csv").stat().st_mtime_ns == stamp and capsys.readouterr().out == ""
    users = tmp_path / "users"
    users.mkdir()
    (users / "train.csv").write_text("ID,Label\n")
    demo.prepare_data(arguments(users))
    assert sorted(p.name for p in users.iterdir()) == ["train.csv"]


def test_bad_input_is_one_message_before_any_work(tmp_path, capsys):
    data, work = tmp_path / "data", tmp_path / "work"
    demo.prepare_data(arguments(data))
    (data / "train.csv").write_text((data / "train.csv").read_text() + "ghost,25\n")
    assert demo.main(["--data", str(data), "--work", str(work)]) == 2
    message = capsys.readouterr().err
    assert "train.csv line 3, ID ghost" in message and "unknown class 25" in message and "Traceback" not in message
    assert not (work / "segment").exists()
