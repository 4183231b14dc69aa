"""``python -m fastgd``: the digits demo, ``bench`` and ``train`` (main(argv) calls,
one subprocess run for the module entry point and its exit status)."""

import subprocess
import sys

import joblib
import numpy as np
import pytest

from fastgd.__main__ import main


def write_csv(path, header, rows):
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def classes_csv(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    rows = [(f"{a:.4f}", f"{b:.4f}", lab, f"{c:.4f}") for (a, b, c), lab in zip(X, labels)]
    return write_csv(tmp_path / "classes.csv", ["a", "b", "label", "c"], rows)


@pytest.fixture
def numbers_csv(tmp_path):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(50, 2))
    y = X @ [2.0, -1.0] + 0.5 + 0.01 * rng.normal(size=50)
    rows = [(f"{a:.5f}", f"{b:.5f}", f"{t:.5f}") for (a, b), t in zip(X, y)]
    return write_csv(tmp_path / "numbers.csv", ["x1", "x2", "y"], rows)


def test_digits_demo(capsys):
    assert main(["--max-iter", "5", "--hidden", "8"]) == 0
    out = capsys.readouterr().out
    assert "speed ratio" in out and "fastgd" in out and "scikit-learn" in out
    assert "max |loss_curve_ difference| over the first 5 epochs" in out


def test_bench_table_and_png(tmp_path, capsys):
    png = tmp_path / "bench.png"
    assert main(["bench", "--rows", "0", "--rounds", "2", "--epochs", "1",
                 "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "digits 1797x64" in out and "median of 2 interleaved rounds" in out
    ratio_line = [line for line in out.splitlines() if line.startswith("digits")][0]
    assert ratio_line.split()[-3].endswith("x")
    pytest.importorskip("matplotlib")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_bad_row(capsys):
    assert main(["bench", "--rows", "99", "--no-png"]) == 2
    assert "no row 99" in capsys.readouterr().err


@pytest.mark.parametrize("model, expected", [("mlp", "MLPClassifier"),
                                             ("logistic", "LogisticRegression")])
def test_train_classifier(classes_csv, tmp_path, capsys, model, expected):
    out_file = tmp_path / "model.joblib"
    status = main(["train", str(classes_csv), "--target", "label", "--model", model,
                   "--cv", "3", "--hidden", "5", "--max-iter", "50",
                   "--out", str(out_file)])
    assert status == 0
    out = capsys.readouterr().out
    assert "3-fold cross-validated accuracy" in out and expected in out
    pipeline = joblib.load(out_file)
    assert type(pipeline.steps[-1][1]).__name__ == expected
    assert set(pipeline.predict([[1.0, 1.0, 0.0], [-1.0, -1.0, 0.0]])) <= {"yes", "no"}


@pytest.mark.parametrize("model", ["mlp", "linear"])
def test_train_regressor(numbers_csv, tmp_path, capsys, model):
    out_file = tmp_path / "m.joblib"
    assert main(["train", str(numbers_csv), "--target", "y", "--model", model,
                 "--out", str(out_file), "--max-iter", "300"]) == 0
    out = capsys.readouterr().out
    assert "5-fold cross-validated R^2" in out and "(regression)" in out
    pipeline = joblib.load(out_file)
    if model == "linear":
        assert pipeline.score(np.array([[0.0, 0.0], [1.0, 1.0]]),
                              [0.5, 1.5]) > 0.99


def run_error(argv, capsys):
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("python -m fastgd train: error: ")
    return err


def test_train_errors(tmp_path, classes_csv, numbers_csv, capsys):
    out = ["--out", str(tmp_path / "never.joblib")]
    assert "no such file" in run_error(
        ["train", str(tmp_path / "missing.csv"), "--target", "y", *out], capsys)
    assert "no column 'nope' (columns: a, b, label, c)" in run_error(
        ["train", str(classes_csv), "--target", "nope", *out], capsys)
    # a regression on text labels
    assert "target column 'label' is not numeric ('yes')" in run_error(
        ["train", str(classes_csv), "--target", "label", "--model", "linear", *out],
        capsys)
    # a feature that is text
    bad = write_csv(tmp_path / "text.csv", ["a", "b", "y"],
                    [(1, 2, 0), (3, "red", 1), (4, 5, 0)])
    assert "line 3: column 'b' is not numeric ('red')" in run_error(
        ["train", str(bad), "--target", "y", *out], capsys)
    missing = write_csv(tmp_path / "gap.csv", ["a", "y"], [(1, 0), ("", 1)])
    assert "line 3: missing value in column 'a'" in run_error(
        ["train", str(missing), "--target", "y", *out], capsys)
    ragged = write_csv(tmp_path / "ragged.csv", ["a", "y"], [(1, 0), (2, 1, 7)])
    assert "line 3 has 3 fields, the header has 2" in run_error(
        ["train", str(ragged), "--target", "y", *out], capsys)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "the file is empty" in run_error(
        ["train", str(empty), "--target", "y", *out], capsys)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    assert "not a UTF-8 text file" in run_error(
        ["train", str(binary), "--target", "y", *out], capsys)
    one_class = write_csv(tmp_path / "one.csv", ["a", "y"], [(i, "k") for i in range(9)])
    assert "single class" in run_error(
        ["train", str(one_class), "--target", "y", *out], capsys)
    few = write_csv(tmp_path / "few.csv", ["a", "y"], [(i, i % 2) for i in range(6)])
    assert "the smallest class has 3 rows, fewer than --cv 5 folds" in run_error(
        ["train", str(few), "--target", "y", *out], capsys)
    assert not (tmp_path / "never.joblib").exists()


def test_module_entry_point_exit_status(tmp_path):
    """The real command line: no traceback, status 2, one line on stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "fastgd", "train", str(tmp_path / "none.csv"),
         "--target", "y"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"python -m fastgd train: error: {tmp_path / 'none.csv'}: no such file")
    assert "Traceback" not in proc.stderr
