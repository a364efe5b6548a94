"""Statement profiles: the bundled ones load, a profile file loads with its defaults filled
in, and every bad value is refused with one line naming the file, the section and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InputError
from app.recon.model import STATUSES, TYPES
from app.recon.profile import ProfileError, bundled_profiles, load_profile

MINIMAL = """
format = "csv"
[columns]
rrn = "参考号"
amount = "交易金额"
"""


def _write(tmp_path: Path, text: str, name: str = "bank.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_profiles_are_the_three_posterm_host_layouts() -> None:
    assert bundled_profiles() == ["posterm-host-csv", "posterm-host-txt", "posterm-host-xlsx"]


@pytest.mark.parametrize(("suffix", "name", "fmt"), [
    (".csv", "posterm-host-csv", "csv"), (".txt", "posterm-host-txt", "fixed"),
    (".xlsx", "posterm-host-xlsx", "xlsx"), (".CSV", "posterm-host-csv", "csv")])
def test_no_profile_named_picks_the_bundled_one_by_the_statements_suffix(
        suffix: str, name: str, fmt: str) -> None:
    profile = load_profile(None, Path(f"stmt{suffix}"))
    assert (profile.name, profile.format) == (name, fmt)
    assert profile.statuses["added"] == "settled" and profile.statuses["voided"] == "voided"
    assert profile.summary is not None


def test_a_bundled_profile_by_name_and_a_profile_file_by_path(tmp_path: Path) -> None:
    assert load_profile("posterm-host-txt", Path("x.csv")).format == "fixed"
    path = _write(tmp_path, MINIMAL)
    profile = load_profile(str(path), Path("x.dat"))
    assert profile.name == "bank" and profile.source == str(path)
    # the defaults a merchant does not have to write
    assert (profile.encoding, profile.delimiter, profile.quote, profile.header) == (
        "utf-8", ",", '"', True)
    assert (profile.skip_rows, profile.end, profile.footer_rows, profile.amount_unit) == (
        0, "eof", 0, "yuan")
    assert profile.date_formats[0] == "%Y-%m-%d" and profile.time_formats[0] == "%H:%M:%S"
    assert profile.types == {t: t for t in TYPES}
    assert profile.statuses == {s: s for s in STATUSES}
    assert profile.summary is None


def test_delimiter_words_markers_and_lists_of_date_patterns(tmp_path: Path) -> None:
    path = _write(tmp_path, """
format = "delimited"
delimiter = "tab"
header = false
end = "^合计"
[columns]
stan = 1
amount = 2
[dates]
date = ["%Y%m%d", "%d/%m/%Y"]
[summary]
style = "labels"
label = 1
value = 2
count = ["合计笔数", "笔数"]
""")
    profile = load_profile(str(path), Path("x"))
    assert profile.delimiter == "\t" and profile.quote == ""
    assert profile.end == "marker" and profile.end_marker is not None
    assert profile.end_marker.search("合计金额")
    assert profile.date_formats == ("%Y%m%d", "%d/%m/%Y")
    assert profile.summary is not None
    assert profile.summary.labels == {"合计笔数": "count", "笔数": "count"}


def _refused(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path), Path("x.csv"))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert isinstance(caught.value, InputError)
    return message


BAD = [
    ('format = "pdf"\n[columns]\nrrn = 1\namount = 2',
     "format: 'pdf' is not allowed; allowed: csv, delimited, fixed, xlsx"),
    ('[columns]\nrrn = 1\namount = 2', "format: missing; allowed: csv"),
    ('format = "csv"\nencoding = "latin-1"\n[columns]\nrrn = 1\namount = 2',
     "encoding: 'latin-1' is not allowed; allowed: utf-8, utf-8-sig, gbk, gb18030"),
    ('format = "csv"\nskip = 2\n[columns]\nrrn = 1\namount = 2',
     "skip: unknown key; allowed: name"),
    ('format = "csv"\n[columns]\nrrn = "参考号"', "[columns] amount: missing"),
    ('format = "csv"\n[columns]\namount = 3', "[columns] rrn: missing, and so is stan"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\nprice = 3',
     "[columns] price: unknown key; allowed: terminal_id"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\ndate = 3\ndatetime = 4',
     "[columns] datetime: given together with date"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 0',
     "[columns] amount: 0 is not a column; allowed: the header's name for it, or its number"),
    ('format = "csv"\nheader = false\n[columns]\nrrn = "参考号"\namount = 2',
     "[columns] rrn: '参考号' is a header name but header = false"),
    ('format = "fixed"\n[columns]\nrrn = 60\namount = [122, 135]',
     "[columns] rrn: 60 is not a position range; allowed: [first, last]"),
    ('format = "fixed"\n[columns]\nrrn = [71, 60]\namount = [122, 135]',
     "[columns] rrn: [71, 60] is not a position range"),
    ('format = "fixed"\nheader = true\n[columns]\nrrn = [1, 2]\namount = [3, 4]',
     "header: a fixed-width file takes its columns from positions"),
    ('format = "csv"\nskip_rows = -1\n[columns]\nrrn = 1\namount = 2',
     "skip_rows: -1 is not a count; allowed: a whole number 0 or more"),
    ('format = "csv"\nfooter_rows = "2"\n[columns]\nrrn = 1\namount = 2',
     "footer_rows: '2' is not a count"),
    ('format = "csv"\nheader = "yes"\n[columns]\nrrn = 1\namount = 2',
     "header: 'yes' is not allowed; allowed: true, false"),
    ('format = "csv"\nend = "(合计"\n[columns]\nrrn = 1\namount = 2',
     "end: '(合计' is not a regular expression"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[dates]\ndate = "%Y-%m"',
     "[dates] date: '%Y-%m' is not a date pattern; allowed: strptime patterns with %Y, %m, %d"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[dates]\ntime = ["%H:%M:%S", 5]',
     "[dates] time: 5 is not a time pattern"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[amounts]\nunit = "cents"',
     "[amounts] unit: 'cents' is not allowed; allowed: yuan, fen"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[types]\n"消费" = "purchase"',
     "[types] 消费: 'purchase' is not allowed; allowed: sale, completion"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[statuses]\n"成功" = "ok"',
     "[statuses] 成功: 'ok' is not allowed; allowed: settled, voided, reversed, declined"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[summary]\nstyle = "x"\namount = 3',
     "[summary] style: 'x' is not allowed; allowed: row, labels"),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[summary]\nstyle = "row"\namount = 3',
     "[summary] marker: missing for style = \"row\""),
    ('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[summary]\nstyle = "row"\nmarker = "^t"',
     "[summary] amount: missing; give at least one of count, amount, fee, net"),
    (('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[summary]\nstyle = "labels"\n'
     'label = 1\nvalue = 2\namount = 5'), "[summary] amount: 5 is not a label"),
    (('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[summary]\nstyle = "labels"\n'
     'value = 2\namount = "合计"'), "[summary] label: missing for style = \"labels\""),
    (('format = "csv"\n[columns]\nrrn = 1\namount = 2\n[summary]\nstyle = "row"\n'
     'marker = "^t"\namount = "金额"'), "[summary] amount: '金额' is a name; allowed: a column"),
    ('format = "delimited"\n[columns]\nrrn = 1\namount = 2',
     "delimiter: missing for format = \"delimited\""),
    ('format = "csv"\nquote = "\\"\\""\n[columns]\nrrn = 1\namount = 2',
     "quote: '\"\"' is not one character"),
    ('format = "csv"\nquote = ""\n[columns]\nrrn = 1\namount = 2',
     "quote: format = \"csv\" is quoted"),
    ('format = "csv"\ndelimiter = "||"\n[columns]\nrrn = 1\namount = 2',
     "delimiter: '||' is longer than one character"),
    ('format = "csv"\nsheet = "statement"\n[columns]\nrrn = 1\namount = 2',
     "sheet: only for format = \"xlsx\""),
    ('format = "xlsx"\nsheet = 0\n[columns]\nrrn = 1\namount = 2',
     "sheet: 0 is not allowed; allowed: the sheet's name, or its number counting from 1"),
    ('format = "csv"\npositions = "bytes"\n[columns]\nrrn = 1\namount = 2',
     "positions: only for format = \"fixed\""),
    ('format = "csv"\ncolumns = 3', "columns: must be a table ([columns]), not 3"),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e[:40] for _, e in BAD])
def test_every_bad_value_is_refused_with_one_line_naming_the_key(
        tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _refused(tmp_path, text)


def test_a_file_that_is_not_toml_is_refused_with_the_place(tmp_path: Path) -> None:
    message = _refused(tmp_path, 'format = "csv"\n[columns\n')
    assert "not valid TOML" in message and "line 2" in message


def test_unknown_names_missing_files_and_unknown_suffixes(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"^no bundled profile 'icbc'; bundled: "
                       r"posterm-host-csv, posterm-host-txt, posterm-host-xlsx"):
        load_profile("icbc", Path("x.csv"))
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ProfileError, match=r"nowhere.toml: no such profile file$"):
        load_profile(str(missing), Path("x.csv"))
    with pytest.raises(ProfileError, match=r"^stmt.dat: no bundled profile reads '.dat' "
                       r"files; name one with --profile"):
        load_profile(None, Path("stmt.dat"))
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ProfileError, match=r"cannot read the profile: not UTF-8 text"):
        load_profile(str(binary), Path("x.csv"))
