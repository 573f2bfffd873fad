"""csv_text: the atoms tables' CSV, the same bytes as pandas writes."""

import numpy as np
import pandas as pd
import pytest

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
            "o": pd.Series([1.5, "x", None, True, np.float32(2.25)], dtype=object),
            "cat": pd.Categorical(["C", "Si", None, "C", "Si"]),
            "na,me": ["", " sp", "nan", "x", "y"],
        }
    )


@pytest.mark.parametrize("fmt", ["%.6g", "%.3f"])
def test_csv_text_is_what_pandas_writes(fmt):
    """NaN, ±inf, float32, flags with gaps, quoting, object and category columns, a lone
    column with empty fields, no rows, no header: byte for byte pandas' text."""
    table = _tricky()
    cases = [table, table.iloc[:0], *(table[[c]] for c in table.columns)]
    for t in cases:
        for header in (True, False):
            assert csv_text(t, float_format=fmt, header=header) == t.to_csv(
                index=False, header=header, float_format=fmt
            ), list(t.columns)


def test_repeated_names_and_numeric_categories():
    t = pd.DataFrame([[1.0, "a", 2.5], [np.nan, "b", 3.25]], columns=["x", "x", "y"])
    t["c"] = pd.Categorical([1.5, None])
    for fmt in ("%.6g", "%.3f"):
        assert csv_text(t, float_format=fmt) == t.to_csv(index=False, float_format=fmt)


def test_a_type_it_does_not_know_goes_to_pandas():
    t = pd.DataFrame({"x": [1.5, 2.5], "n": pd.array([1, None], dtype="Int64")})
    t["when"] = pd.to_datetime(["2026-12-06", "2026-12-07"])
    assert csv_text(t) == t.to_csv(index=False, float_format="%.6g")


def test_write_csv_replaces_and_appends(tmp_path):
    rng = np.random.default_rng(0)
    t = pd.DataFrame({"x_A": rng.normal(size=50) * 1e3, "class": ["C"] * 50})
    path = tmp_path / "atoms.csv"
    write_csv(t, path)
    write_csv(t, path, mode="a", header=False)
    assert path.read_text() == t.to_csv(index=False, float_format="%.6g") + t.to_csv(
        index=False, header=False, float_format="%.6g"
    )
    back = pd.read_csv(path)
    np.testing.assert_allclose(back["x_A"], np.tile(t["x_A"], 2), rtol=1e-5)
