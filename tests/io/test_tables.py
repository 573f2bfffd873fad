"""TableWriter: tables written frame by frame into one CSV and Parquet file."""

import numpy as np
import pandas as pd

from atomlens.io.tables import TableWriter, read_table


def test_tables_are_written_frame_by_frame_with_one_schema(tmp_path):
    """Empty frames, a frame without a column and an int/float mix end in one table."""
    w = TableWriter(tmp_path, "atoms")
    w.write(pd.DataFrame({"frame": pd.Series([], dtype=int), "x_A": [], "class": []}))
    w.write(pd.DataFrame({"frame": [1, 1], "x_A": [0.5, 1.5], "class": ["C", "Si"]}))
    w.write(pd.DataFrame({"frame": [2], "class": ["C"]}))  # no x_A here
    w.write(pd.DataFrame({"frame": [3], "x_A": [2], "class": ["C"]}))  # int where float was
    w.close()
    pq = read_table(tmp_path / "atoms.csv", tmp_path / "atoms.parquet")
    csv = pd.read_csv(tmp_path / "atoms.csv")
    assert w.rows == len(pq) == len(csv) == 4
    assert dict(w.classes) == {"C": 3, "Si": 1}
    np.testing.assert_array_equal(pq["frame"], [1, 1, 2, 3])
    np.testing.assert_allclose(pq["x_A"], [0.5, 1.5, np.nan, 2.0])
    empty = TableWriter(tmp_path, "rejected")
    empty.write(pd.DataFrame({"frame": pd.Series([], dtype=int), "x_A": []}))
    empty.close()
    assert list(pd.read_csv(tmp_path / "rejected.csv").columns) == ["frame", "x_A"]


def test_a_flag_a_table_lacks_stays_empty(tmp_path):
    w = TableWriter(tmp_path, "atoms")
    w.write(pd.DataFrame({"x_A": [0.5], "refined": [False]}))
    w.write(pd.DataFrame({"x_A": [1.5]}))  # no refined column here
    w.write(pd.DataFrame({"x_A": [2.5], "refined": [True]}))
    w.close()
    pq = read_table(tmp_path / "atoms.csv", tmp_path / "atoms.parquet")
    assert pq["refined"].tolist()[::2] == [False, True] and pd.isna(pq["refined"][1])
    csv = pd.read_csv(tmp_path / "atoms.csv", keep_default_na=False)
    assert csv["refined"].astype(str).tolist() == ["False", "", "True"]
