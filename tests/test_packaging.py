"""Packaging: the declared extras and cibuildwheel configuration, the archive checks of
tools/check_dist.py and the smoke script on the installed package. The full build +
fresh-venv run (tools/wheel_smoke.sh, minutes) is a separate script, see the README."""

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

sys.path.insert(0, str(ROOT / "tools"))
import check_dist  # noqa: E402


def pyproject():
    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("not run from a source checkout")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_extras_declared():
    extras = pyproject()["project"]["optional-dependencies"]
    assert {"dask", "onnx", "progress", "plot", "test", "docs"} <= set(extras)
    assert "dask[array,dataframe]>=2025.3" in extras["dask"]
    assert "distributed>=2025.3" in extras["dask"]
    assert {e.split(">")[0] for e in extras["onnx"]} == {"skl2onnx", "onnxruntime"}
    assert any(e.startswith("matplotlib") for e in extras["plot"])
    assert {e.split(">")[0] for e in extras["docs"]} >= {"sphinx", "numpydoc",
                                                         "sphinx-gallery", "matplotlib"}


def test_cibuildwheel_config():
    config = pyproject()["tool"]["cibuildwheel"]
    assert set(config["linux"]["archs"]) == {"x86_64", "aarch64"}
    assert "macos" in config
    script = config["test-command"].split()[-1].replace("{project}", str(ROOT))
    assert Path(script).is_file()


def _sdist(tmp_path, names):
    path = tmp_path / "fastgd-0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in names:
            info = tarfile.TarInfo(f"fastgd-0/{name}")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    return path


def _wheel(tmp_path, names):
    path = tmp_path / "fastgd-0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for name in names:
            whl.writestr(name, "x")
    return path


def test_check_dist_accepts_good_and_names_bad_archives(tmp_path, capsys):
    modules = [f"fastgd/{p.name}" for p in (ROOT / "fastgd").glob("*.py")]
    sdist = _sdist(tmp_path, check_dist.SOURCES + modules)
    wheel = _wheel(tmp_path, modules + ["fastgd/_kernels.cpython-311-x86_64-linux-gnu.so"])
    assert check_dist.main(sdist, wheel) == 0
    bad_sdist = _sdist(tmp_path, [n for n in check_dist.SOURCES if n != "fastgd/_vmath.h"]
                       + ["fastgd/_kernels.c"])
    bad_wheel = _wheel(tmp_path, modules + ["fastgd/_kernels.pyx"])
    assert check_dist.main(bad_sdist, bad_wheel) == 1
    err = capsys.readouterr().err
    assert "sdist lacks fastgd/_vmath.h" in err
    assert "sdist holds fastgd/_kernels.c" in err
    assert "wheel holds fastgd/_kernels.pyx" in err
    assert "wheel holds no compiled kernels" in err


def test_smoke_script_on_installed_package(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "smoke.py")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smoke test passed" in proc.stdout
