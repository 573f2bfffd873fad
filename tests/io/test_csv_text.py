"""csv_text: the atoms tables' CSV, the same bytes as pandas writes."""

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from atomlens.io import csv_text as module
from atomlens.io.csv_text import csv_text, write_csv


def _tricky() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "f": [1.0, np.nan, -1e-12, np.inf, 123456789.0],
            "f32": np.array([0.1, np.nan, 3.3, -np.inf, 1e30], np.float32),
            "i": [1, 2, 3, -4, 5],
            "u": np.array([1, 2, 3, 4, 5], np.uint8),
            "b": [True, False, True, True, False],
            "nb": pd.array([True, None, False, True, None], dtype="boolean"),
            "s": ["a", "b,c", 'q"x', None, "line\nbreak"],
            "cr": ["a\rb", "", "x", "y", "z"],
            "o": pd.Series([1.5, "x", None, True, np.float32(2.25)], dtype=object),
            "o_na": pd.Series([np.datetime64("NaT"), Decimal("NaN"), "x", 1, pd.NA], dtype=object),
            "cat": pd.Categorical(["C", "Si", None, "C", "Si"]),
            "num_cat": pd.Categorical([1.5, None, 2.25, 1.5, 2.25]),
            "na,me": ["", " sp", "nan", "x", "y"],
        }
    )


def _pandas(t: pd.DataFrame, fmt: str = "%.6g", header: bool = True) -> str:
    return t.to_csv(index=False, header=header, float_format=fmt)


@pytest.mark.parametrize("fmt", ["%.6g", "%.3f", "%10.2e"])
def test_csv_text_is_what_pandas_writes(fmt):
    """NaN, ±inf, float32, flags with gaps, quoting (as this Python's csv module quotes,
    carriage returns included), missing values of every kind in object columns, string and
    numeric categories, a lone column with empty fields, no rows, no header."""
    table = _tricky()
    cases = [table, table.iloc[:0], *(table[[c]] for c in table.columns)]
    for t in cases:
        for header in (True, False):
            assert csv_text(t, float_format=fmt, header=header) == _pandas(t, fmt, header), list(
                t.columns
            )


def test_repeated_names_and_odd_headers():
    t = pd.DataFrame([[1.0, "a", 2.5], [np.nan, "b", 3.25]], columns=["x", "x", "y"])
    assert csv_text(t) == _pandas(t)
    for names in ([""], ["", "b"], [None, "b"], [0, 1]):  # unnamed, not strings: to pandas
        u = pd.DataFrame([[1.5] * len(names)], columns=names)
        assert csv_text(u) == _pandas(u), names
    m = pd.DataFrame([[1.5, 2.5]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]))
    assert csv_text(m) == _pandas(m)


def test_what_it_does_not_know_goes_to_pandas():
    """Dates, nullable integers, date categories and float formats other than %e/%f/%g
    ("%s" would widen float32) are written by pandas."""
    t = pd.DataFrame({"x": [1.5, 2.5], "n": pd.array([1, None], dtype="Int64")})
    t["when"] = pd.to_datetime(["2026-12-06", "2026-12-07"])
    assert csv_text(t) == _pandas(t)
    d = pd.DataFrame({"d": pd.Categorical(pd.to_datetime(["2026-01-01", "2026-01-02"]))})
    assert csv_text(d) == _pandas(d)
    f = pd.DataFrame({"f32": np.array([0.1, 0.2], np.float32), "f": [0.1, 1 / 3]})
    for fmt in ("%s", "%r", "{:.6g}"):
        assert csv_text(f, float_format=fmt) == _pandas(f, fmt), fmt


def test_write_csv_in_blocks_refuses_to_overwrite_and_appends(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "ROWS_PER_CHUNK", 7)  # 50 rows: 8 blocks
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"x_A": rng.normal(size=50) * 1e3, "class": ["C"] * 50})
    path = tmp_path / "atoms.csv"
    write_csv(t, path)
    with pytest.raises(FileExistsError, match=r"atoms\.csv exists: pass mode='w'"):
        write_csv(t, path)
    write_csv(t, path, mode="a", header=False)
    assert path.read_text() == _pandas(t) + _pandas(t, header=False)
    write_csv(t.iloc[:3], path, mode="w")
    assert path.read_text() == _pandas(t.iloc[:3])
    with pytest.raises(ValueError, match="mode must be 'x'"):
        write_csv(t, path, mode="wb")
    back = pd.read_csv(tmp_path / "atoms.csv")
    np.testing.assert_allclose(back["x_A"], t["x_A"][:3], rtol=1e-5)
