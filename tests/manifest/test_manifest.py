"""Manifest: which images a split holds, their channel files, and the shards they fall into."""

from __future__ import annotations

import pandas as pd
import pytest

from stages.manifest.core import (InputError, build_manifest, channel_files, read_listing, round_trip_problems,
                                  shard_count, shard_rows)


def names(*ids, extension=".png", channels=("red", "green", "blue", "yellow")):
    return [f"{image_id}_{channel}{extension}" for image_id in ids for channel in channels]


def test_ids_with_underscores_split_at_last_underscore():
    files = channel_files(names("B2AI_1_untreated_A1_R1", extension=".jpg") + ["notes.txt", "x_purple.png"])
    assert list(files) == ["B2AI_1_untreated_A1_R1"]
    assert files["B2AI_1_untreated_A1_R1"]["yellow"] == "B2AI_1_untreated_A1_R1_yellow.jpg"


def test_shards_cut_in_id_order():
    manifest = build_manifest(names("c_1", "a_1", "b_1", "d_1", "e_1"), None, shard_size=2)
    assert manifest["ID"].tolist() == ["a_1", "b_1", "c_1", "d_1", "e_1"]
    assert manifest["shard"].tolist() == [0, 0, 1, 1, 2]
    assert shard_count(manifest) == 3
    assert shard_rows(manifest, 2)["ID"].tolist() == ["e_1"]
    with pytest.raises(ValueError, match="shard 3 does not exist"):
        shard_rows(manifest, 3)


def test_table_decides_membership_and_labels():
    listed = pd.DataFrame({"ID": ["a_1", "b_1"], "Label": ["0|5", "18"]})
    manifest = build_manifest(names("a_1", "z_9") + names("b_1", channels=("red", "green", "blue")), listed, 10)
    assert manifest["ID"].tolist() == ["a_1", "b_1"]  # z_9 is not in the table
    assert manifest.set_index("ID").loc["a_1", "Label"] == "0|5"
    assert manifest.set_index("ID").loc["b_1", "yellow"] == ""  # reported when the image is read


def test_bad_label_fails_loudly():
    with pytest.raises(ValueError, match="outside 0..18"):
        build_manifest(names("a_1"), pd.DataFrame({"ID": ["a_1"], "Label": ["0|19"]}), 4)


def test_shard_size_must_be_positive():
    with pytest.raises(ValueError, match="shard_size"):
        build_manifest(names("a_1"), None, 0)


# ---------------------------------------------------------------------------------------------- the table, parsed


def listing(text: str, labelled: bool = True, uri: str = "data/train.csv"):
    return read_listing(text.encode(), uri, labelled)


def reasons(found) -> list[str]:
    return [str(problem) for problem in found.problems]


def test_a_good_table_reads_with_lines_and_labels():
    found = listing("\ufeffID,Label\r\na_1,0|5\r\n\r\nb_1, 18 \r\n")  # BOM, CRLF, a blank line, spaces
    assert found.problems == [] and found.labels == {"a_1": "0|5", "b_1": " 18 "}
    assert found.lines == {"a_1": 2, "b_1": 4} and found.where("b_1") == "train.csv line 4"


def test_every_row_problem_names_file_line_and_id():
    found = listing("ID,Label\na_1,0\nb_1,\nc_1,0|25\nd_1,1||2\na_1,3\ne_1,1,2\nf_1\n")
    assert reasons(found) == [
        "data/train.csv line 3, ID b_1: blank Label: every training image needs its classes ('18' is Negative)",
        "data/train.csv line 4, ID c_1: Label '0|25' names unknown class 25, outside 0..18",
        "data/train.csv line 5, ID d_1: Label '1||2' is not class numbers separated by '|' (such as 0|5|16)",
        "data/train.csv line 6, ID a_1: duplicate ID: first listed on line 2",
        "data/train.csv line 7, ID e_1: 3 fields where the header has 2 (ID,Label)",
        "data/train.csv line 8, ID f_1: 1 field where the header has 2 (ID,Label)",
    ]
    assert found.labels["a_1"] == "0"  # the first row of a duplicate is the one kept (and the run fails)


def test_a_quoted_newline_counts_lines_from_where_the_row_starts():
    found = listing('ID,Label\n"a\n1",0\nb_1,25\n')
    assert [problem.line for problem in found.problems] == [2, 4]
    assert "U+000A" in str(found.problems[0]) and "class 25" in str(found.problems[1])


def test_header_problems():
    assert reasons(listing("Id,Label\nx,1\n")) == [
        "data/train.csv line 1: the header line 'Id,Label' lacks the column(s) ID (expected ID,Label)"]
    assert "lacks the column(s) Label" in reasons(listing("ID,Labels\nx,1\n"))[0]
    assert "names ID twice" in reasons(listing("ID,Label,ID\nx,1,x\n"))[0]
    assert "empty" in reasons(listing(""))[0]
    submission = listing("ID,ImageWidth,ImageHeight,PredictionString\nx,1,1,\n", labelled=False)
    assert submission.problems == [] and submission.labels == {"x": ""}


def test_ids_that_cannot_name_an_image():
    found = listing('ID,Label\n,1\n  ,1\n../x,1\n"a\rb",1\nz\u200b,1\n')
    assert [problem.line for problem in found.problems] == [2, 3, 4, 5, 6]
    text = "\n".join(reasons(found))
    assert text.count("blank ID") == 2 and "'/'" in text and "U+000D" in text and "U+200B" in text
    assert found.lines == {}


def test_text_that_is_not_utf8_or_not_csv():
    assert [str(problem) for problem in read_listing(b"ID,Label\na_1,\xff\n", "t.csv", True).problems] == [
        "t.csv line 2: not UTF-8 text (byte 0xff)"]
    assert "does not parse as CSV" in reasons(listing('ID,Label\n"a_1,0\n'))[0]


def test_ids_survive_a_csv_round_trip_or_are_named():
    assert round_trip_problems(["NA", "nan", "null", "", " a", "007", "1e5", "a,b", 'a"b'], lambda i: ("f", 1)) == []
    found = round_trip_problems(["ok_1", "a\rb", "c_1"], lambda image_id: ("data/train.csv", 7))
    assert [(problem.image_id, problem.line) for problem in found] == [("a\rb", 7)]
    assert "does not come back the same from a CSV file" in str(found[0])


def test_build_manifest_refuses_a_duplicate_in_a_table():
    listed = pd.DataFrame({"ID": ["a_1", "b_1", "a_1"], "Label": ["0", "1", "2"]})
    with pytest.raises(InputError, match=r"line 4, ID a_1: duplicate ID: first listed on line 2"):
        build_manifest(names("a_1", "b_1"), listed, 4)


def test_many_problems_make_one_message_with_a_count():
    rows = "".join(f"x_{number},99\n" for number in range(60))
    error = InputError(listing("ID,Label\n" + rows).problems, "the train split's input")
    message = str(error)
    assert message.startswith("the train split's input has 60 problems:")
    assert message.count("\n  - ") == 50 and message.endswith("  ... and 10 more problems")
    assert len(error.problems) == 60
