"""The wheel ships the signature catalog, and an installed pcapclass loads it from the
installed package (not from a source checkout)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from analyzer.signatures import load_catalog

ROOT = Path(__file__).resolve().parent.parent
CATALOG_FILES = ("cmi.toml", "common.toml", "gemos4.toml", "sesam.toml")
# What the build needs from the checkout (pyproject: packages analyzer and
# analyzer.signatures_data, the latter mapped onto signatures/; readme = README.md).
BUILD_INPUTS = ("pyproject.toml", "README.md", "analyzer", "signatures")


def _copy_sources(dest: Path) -> Path:
    """Build from a copy so that build/ and *.egg-info never land in the checkout."""
    src = dest / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy2(path, src / name)
        else:  # README.md may not exist yet in a fresh checkout; the build needs one
            (src / name).write_text("pcapclass\n")
    return src


def _probe(code: str, first: Path, cwd: Path) -> str:
    """Run `code` with `first` ahead of everything on the import path; its stdout.
    -S skips site-packages processing, so the checkout's editable-install hook is not
    active; dependencies (pydantic, ...) come from the dev venv via PYTHONPATH, after
    `first`."""
    deps = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{first}:{deps}", "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=cwd, env=env
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp)
    out = tmp / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{done.stdout}\n{done.stderr}")
    (built,) = out.glob("pcapclass-*.whl")
    return built


def test_wheel_contains_the_catalog(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = sorted(n for n in names if n.startswith("analyzer/signatures_data/"))
        assert shipped == [f"analyzer/signatures_data/{name}" for name in CATALOG_FILES]
        for name in CATALOG_FILES:
            data = zf.read(f"analyzer/signatures_data/{name}")
            assert data == (ROOT / "signatures" / name).read_bytes()
    assert "analyzer/signatures.py" in names


def test_installed_package_loads_its_own_catalog(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    install = [
        sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
        str(wheel),
    ]  # fmt: skip
    done = subprocess.run(install, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    probe = (
        "import json, analyzer\n"
        "from analyzer.signatures import load_catalog\n"
        "c = load_catalog()\n"
        "print(json.dumps({'package': analyzer.__file__, 'files': list(c.files),"
        " 'ids': [s.id for s in c.signatures], 'sha256': c.sha256}))\n"
    )
    seen = json.loads(_probe(probe, site, tmp_path))
    assert Path(seen["package"]).resolve().parent == (site / "analyzer").resolve()
    data = (site / "analyzer" / "signatures_data").resolve()
    assert [Path(f).resolve() for f in seen["files"]] == [data / n for n in CATALOG_FILES]
    source = load_catalog(ROOT / "signatures")
    assert seen["ids"] == [sig.id for sig in source.signatures]
    assert seen["sha256"] == source.sha256


def test_source_checkout_without_install_falls_back_to_signatures_folder(
    tmp_path: Path,
) -> None:
    # PYTHONPATH = the checkout, no site processing: analyzer.signatures_data does not
    # exist as a package, so the loader falls back to <checkout>/signatures.
    probe = (
        "import json\n"
        "from analyzer.signatures import load_catalog\n"
        "print(json.dumps(load_catalog().files))\n"
    )
    files = [Path(f) for f in json.loads(_probe(probe, ROOT, tmp_path))]
    assert files == [ROOT / "signatures" / name for name in CATALOG_FILES]
