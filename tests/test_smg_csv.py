"""The SMG-style CSV readers (`mgrec.smg_csv`); most of their refusals are tested through the commands that use them
(`data/test_annotations.py`, `evaluate/test_predictions.py`)."""

import pytest

from mgrec.errors import InputError
from mgrec.records import Detection
from mgrec.smg_csv import read_data_file, read_label_file, read_prediction_rows, smg_label_paths, smg_label_text


def test_a_spreadsheet_s_trailing_empty_cells_and_empty_rows_are_no_columns(tmp_path):
    # Excel, Google Sheets and LibreOffice write every row as wide as the sheet's widest: `5,100,200,` (a note once
    # in a fourth column), `,,,` for an empty row inside the table; refused as `expected 3 columns ..., found 4`
    labels = tmp_path / "Sample0001_finelabels.csv"
    labels.write_text("5,100,200,\r\n,,,\r\n9,300,400,,\r\n")
    assert [(row.line, row.class_number, row.start_frame, row.end_frame)
            for row in read_label_file(labels, 17)] == [(1, 5, 100, 200), (3, 9, 300, 400)]
    data = tmp_path / "Sample0001_data.csv"
    data.write_text("numFrames,fps,maxDepth,\n5000,28,4000,\n")
    assert read_data_file(data) == (5000, 28.0)
    predictions = tmp_path / "Sample0001.csv"
    predictions.write_text("5,100,200,0.9,\n,,,,\n9,300,400,0.5,\n")
    rows, columns = read_prediction_rows(predictions, 17)
    assert columns == 4 and [(row.class_number, row.score) for row in rows] == [(5, 0.9), (9, 0.5)]
    # a cell with a value is still a column, wherever it is; a score left empty on one row of scored rows is named
    labels.write_text("5,100,200,x\n")
    with pytest.raises(InputError, match=r"Sample0001_finelabels.csv:1: expected 3 columns .*, found 4"):
        read_label_file(labels, 17)
    labels.write_text(",5,100,200\n")
    with pytest.raises(InputError, match=r"Sample0001_finelabels.csv:1: expected 3 columns .*, found 4"):
        read_label_file(labels, 17)
    predictions.write_text("5,100,200,0.9\n9,300,400,\n")
    with pytest.raises(InputError, match=r"Sample0001.csv:2: 3 columns but earlier rows have 4"):
        read_prediction_rows(predictions, 17)


def test_times_given_instead_of_frame_numbers_are_named_as_times(tmp_path):
    # refused as `expected whole numbers class(1..17),start_frame,end_frame, got 5,1.5,2.25`, not saying why
    labels = tmp_path / "Sample0001_finelabels.csv"
    predictions = tmp_path / "Sample0001.csv"
    for row, hint in (("5,1.5,2.25", r"times in seconds\? SMG files hold frame numbers: frame = seconds x fps"),
                      ("5,00:00:01.500,00:00:02.250", r"times as hh:mm:ss; SMG files hold frame numbers"),
                      ("5,01:02,01:03", r"times as hh:mm:ss")):
        labels.write_text(row + "\n")
        with pytest.raises(InputError, match=rf"Sample0001_finelabels.csv:1: expected whole numbers .*got {row} "
                                             rf"\({hint}"):
            read_label_file(labels, 17)
        predictions.write_text(row + ",0.9\n")
        with pytest.raises(InputError, match=rf"Sample0001.csv:1: class, start_frame and end_frame must be integers, "
                                             rf"got .* \({hint}"):
            read_prediction_rows(predictions, 17)
    # whole numbers written with a point are no times: the plain refusal
    labels.write_text("5,100.0,200.0\n")
    with pytest.raises(InputError, match=r"got 5,100.0,200.0$"):
        read_label_file(labels, 17)


def test_a_detection_shorter_than_a_frame_is_written_as_one_frame_that_reads_back(tmp_path):
    # 1.0-1.01 s at 28 fps: both ends round to frame 28; the row `1,28,28` was refused by every reader
    detections = [Detection("v", 1.0, 1.01, 0, "a", 0.9), Detection("v", 2.0, 3.0, 1, "b", 0.8),
                  Detection("v", 4.0, 4.0, 2, "c", 0.7, start_frame=112, end_frame=112)]
    file = tmp_path / "v.csv"
    file.write_text(smg_label_text(detections, 28.0, with_scores=True))
    rows, _ = read_prediction_rows(file, 17)
    assert [(row.class_number, row.start_frame, row.end_frame) for row in rows] == [(1, 28, 29), (2, 56, 84),
                                                                                   (3, 112, 113)]
    file.write_text(smg_label_text(detections, 28.0))
    assert [(row.start_frame, row.end_frame) for row in read_label_file(file, 17)] == [(28, 29), (56, 84), (112, 113)]


@pytest.mark.parametrize(("text", "message"), [
    # a header in any case, with a spreadsheet's byte-order mark and CRLF line ends
    (b"\xef\xbb\xbfClass,Start_Frame,End_Frame,Score\r\n5,10,20,0.9\r\n",
     r"p.csv:1: looks like a header row \(Class,Start_Frame,End_Frame,Score\); SMG files have no header, every row "
     r"is class\(1..17\),start_frame,end_frame\[,score\] \(pandas: to_csv\(FILE, header=False, index=False\)\)"),
    # pandas' to_csv with its index column: a header starting with an empty cell, then rows of five
    (b",class,start,end,score\n0,5,10,20,0.9\n", r"p.csv:1: looks like a header row \(,class,start,end,score\)"),
    (b"0,5,10,20,0.9\n1,6,30,40,0.8\n", r"p.csv:1: expected class,start_frame,end_frame\[,score\], got 5 columns "
                                        r"\(a first column of row numbers, as pandas' to_csv writes its index\?"),
    # label ids written as classes: numbered from 0
    (b"0,10,20,0.9\n", r"p.csv:1: class 0 is outside 1..17 \(SMG label files number classes from 1; a file "
                       r"written from 0 needs every class raised by one\)"),
])
def test_a_prediction_file_s_header_index_column_and_classes_from_0_are_named(tmp_path, text, message):
    file = tmp_path / "p.csv"
    file.write_bytes(text)
    with pytest.raises(InputError, match=message):
        read_prediction_rows(file, 17)


@pytest.mark.parametrize("row, said", [
    (",5,120,158", "cell 1 of ,5,120,158 is empty"),
    ("5,,120,158", "cell 2 of 5,,120,158 is empty"),
    ("5,,120,,158", "cells 2, 4 of 5,,120,,158 are empty"),
])
def test_a_label_row_with_a_blank_column_before_or_between_its_values_says_which_cell_is_empty(tmp_path, row, said):
    # A spreadsheet's blank column A (or one between the values) exported as `,5,120,158`: refused as "expected 3
    # columns ..., found 4" with nothing pointing at the empty cell (a trailing one, `5,120,158,`, is read)
    labels = tmp_path / "Sample0001_finelabels.csv"
    labels.write_text(f"{row}\r\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_label_file(labels, 17)
    assert str(info.value) == (f"{labels}:1: expected 3 columns class(1..17),start_frame,end_frame, found "
                               f"{row.count(',') + 1} ({said}: a blank column of the spreadsheet it was exported "
                               "from? delete the column)")
    data = tmp_path / "Sample0001_data.csv"
    data.write_text(row.replace("5", "28").replace("120", "5000").replace("158", "4095") + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"found \d \(cells? [0-9, ]+ of .* empty: a blank column"):
        read_data_file(data)


def test_a_data_file_written_with_semicolons_is_said_so_not_taken_for_a_header(tmp_path):
    # `173;28;4500` (a spreadsheet set to ';') was dropped as a header row, the file then refused as holding
    # "exactly one row numFrames,fps,maxDepth, found 0"
    data = tmp_path / "Sample0001_data.csv"
    data.write_text("173;28;4500\r\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_data_file(data)
    assert str(info.value) == (f"{data}:1: expected 3 columns numFrames,fps,maxDepth, found 1 (its cells are "
                               "separated by ';'; SMG files separate them by commas)")
    data.write_text("numFrames;fps;maxDepth\n173;28;4500\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"_data\.csv:2: expected 3 columns .* found 1 \(its cells are separated by"):
        read_data_file(data)
    data.write_text("numFrames,fps,maxDepth\n173,28,4500\n", encoding="utf-8")  # a header is still read past
    assert read_data_file(data) == (173, 28.0)


@pytest.mark.parametrize("row, message", [
    ("18,10,20", "class 18 is outside 1..17"),
    ("0,10,20", "class 0 is outside 1..17 (SMG label files number classes from 1;"),
    ("5,-3,20", "start frame -3 is negative"),
    ("5,20,20", "start frame 20 is not before end frame 20"),
    ("5,30,20", "start frame 30 is not before end frame 20"),
    (f"5,0,{'9' * 400}", "frame number out of range in "),
    (f"{'9' * 400},0,20", "is outside 1..17"),
])
def test_a_row_out_of_range_is_worded_alike_in_label_and_prediction_files(tmp_path, row, message):
    """The label reader (`data convert`) and the prediction reader (`score --pred FOLDER`) checked the same ranges
    of a row in two wordings (`class must be in 1..17, got 18` beside `class 18 is outside 1..17`, `start_frame 20
    must be < end_frame 20` beside `start frame 20 is not before end frame 20`): one function (`check_row`) now
    checks and words them for both."""
    said = []
    for name, read in (("labels.csv", lambda path: read_label_file(path, 17)),
                       ("predictions.csv", lambda path: read_prediction_rows(path, 17))):
        path = tmp_path / name
        path.write_text(f"5,1,2\n{row}\n")
        with pytest.raises(InputError) as info:
            read(path)
        text = str(info.value)
        assert text.startswith(f"{path}:2: ") and message in text, text
        said.append(text.removeprefix(f"{path}:2: "))
    assert said[0] == said[1]


def test_an_end_past_the_video_s_frames_is_named_with_where_they_are_counted(tmp_path):
    labels = tmp_path / "Sample0001_finelabels.csv"
    labels.write_text("5,10,20\n5,90,101\n")
    assert len(read_label_file(labels, 17, num_frames=101)) == 2  # an exclusive end at the last frame
    with pytest.raises(InputError, match=r"Sample0001_finelabels.csv:2: end frame 101 is past the video's end: it has "
                                         r"100 frames \(numFrames in .*Sample0001_data.csv\)"):
        read_label_file(labels, 17, num_frames=100, frames_source=tmp_path / "Sample0001_data.csv")


def test_a_label_folder_removed_while_its_set_is_written_is_refused_not_taken_for_a_set(tmp_path, monkeypatch):
    # the writers made the folder again (OUT/VID/), the marker was gone with the folder, and its end removed nothing:
    # a set of the videos written after the removal, without the earlier ones, that `mgrec score` read as whole
    import shutil

    from mgrec import smg_csv

    out = tmp_path / "out"
    written, real_write = [], smg_csv.write_smg_label_file

    def removed_after_the_first(path, *args, **kwargs):
        real_write(path, *args, **kwargs)
        written.append(path.name)
        if len(written) == 1:
            shutil.rmtree(out)  # another terminal's `rm -rf out`, a cleanup job

    monkeypatch.setattr(smg_csv, "write_smg_label_file", removed_after_the_first)
    detections = {video: [Detection(video, 1.0, 2.0, 0, "a", 0.9)] for video in ("v1", "v2", "v3")}
    with pytest.raises(InputError, match=r"out: its \.mgrec-incomplete went away while label files were written there "
                                         r"\(the folder removed, emptied or replaced meanwhile\?\), so some videos may "
                                         r"have no file; write the set again into an empty folder"):
        smg_csv.write_smg_labels(detections, out, fps=28.0)
    assert written == ["v1_finelabels.csv", "v2_finelabels.csv", "v3_finelabels.csv"]
    with pytest.raises(InputError, match=r"did not finish \(.*\.mgrec-incomplete is there\): some videos have no file"):
        smg_csv.refuse_an_incomplete_set(out)


def test_an_interrupted_label_set_says_which_video_how_many_files_and_that_the_folder_is_refused(tmp_path, monkeypatch):
    """Ctrl-C while `detect --format smg` wrote its label files said "mgrec: interrupted" alone: not that some files
    were there, in a folder every reader (and the same command again) refuses while its marker is there."""
    import re

    from mgrec import smg_csv

    out, real_write, written = tmp_path / "out", smg_csv.write_smg_label_file, []

    def interrupted_at_the_third(path, *args, **kwargs):
        if len(written) == 2:
            raise KeyboardInterrupt
        real_write(path, *args, **kwargs)
        written.append(path.name)

    monkeypatch.setattr(smg_csv, "write_smg_label_file", interrupted_at_the_third)
    detections = {video: [Detection(video, 1.0, 2.0, 0, "a", 0.9)] for video in ("v1", "v2", "v3", "v4")}
    with pytest.raises(KeyboardInterrupt) as caught:
        smg_csv.write_smg_labels(detections, out, fps=28.0)
    assert str(caught.value) == (
        f"stopped in video 'v3' (3 of 4: 2 finished before it): 2 of the 4 label files are in {out}, which stays "
        f"marked unfinished ({out / '.mgrec-incomplete'}: `mgrec score` and the other readers refuse the folder); "
        f"remove {out} and run the same command again")
    # no half file under a final name: the two finished, whole, and the marker
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [".mgrec-incomplete", "v1_finelabels.csv",
                                                                     "v2_finelabels.csv"]
    with pytest.raises(InputError, match=re.escape("did not finish")):
        smg_csv.refuse_an_incomplete_set(out)


def test_label_folders_one_folder_on_macos_or_windows_are_refused(tmp_path):
    """detect and stream --format smg wrote OUT/S01/ and OUT/s01/ (two folders' features, one call): one folder on
    macOS, Windows and exFAT disks, the second video's labels then beside the first's, and a set copied there that
    scored one video as missed. Refused before any is made, as a folder already there of that name is."""
    with pytest.raises(InputError, match=r"the label folders of videos 'S01' and 's01' would be 'S01' and 's01', one "
                                         r"name where case and Unicode normalisation are not told apart"):
        smg_label_paths(["S01", "s01"], tmp_path)
    (tmp_path / "Sample0001").mkdir()
    with pytest.raises(InputError, match=r"Sample0001: already there, where the label folders of video 'sample0001' "
                                         r"would be sample0001"):
        smg_label_paths(["sample0001"], tmp_path)
    assert list(smg_label_paths(["Sample0001", "Sample0002"], tmp_path)) == ["Sample0001", "Sample0002"]
