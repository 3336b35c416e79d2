"""`import bandfusion` and `bandfusion predict` load neither scikit-learn, matplotlib, fiona nor
dask.distributed, and the lazily exported names still work however the package was reached."""

from __future__ import annotations

from pathlib import Path

from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import save_model

from tests.helpers import REPO, random_model, run_python

HEAVY = ("sklearn", "matplotlib", "distributed", "fiona")
S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


def test_the_predict_path_imports_no_heavy_optional_packages() -> None:
    loaded = run_python(
        "import sys, bandfusion, bandfusion.cli\n"
        "bandfusion.cli.LazyGroup().get_command(None, 'predict')\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert loaded == "[]"


def test_a_predict_run_imports_no_heavy_optional_packages(tmp_path: Path, data_dir: Path) -> None:
    """Not even dask.distributed, which dask imports to resolve a scheduler given by name."""
    scene = data_dir / S2
    save_model(random_model(open_scene(scene), [0, 1]), tmp_path / "model")
    output = tmp_path / "map.tif"
    argv = ["predict", str(scene), "-m", str(tmp_path / "model"), "-o", str(output), "--quiet"]
    loaded = run_python(
        "import sys\nfrom bandfusion.cli import main\n"
        f"main({argv!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert loaded.splitlines() == [f"map: {output}", "[]"]


def test_lazy_names_are_the_functions_even_after_their_module_was_imported() -> None:
    names = run_python(
        "import bandfusion, bandfusion.engine.train, bandfusion.engine.evaluate\n"
        "from bandfusion.engine.explain import Explanation\n"
        "print(*(type(getattr(bandfusion, n)).__name__ for n in "
        "('train', 'evaluate', 'explain', 'SpectralFusionClassifier')))"
    )
    assert names == "function function function type"


def test_no_public_name_is_also_a_submodule_of_the_package_root() -> None:
    """A function that hides a module of the same name confuses readers and static tools."""
    import bandfusion

    modules = {path.stem for path in Path(bandfusion.__file__).parent.iterdir()}
    assert not set(bandfusion.__all__) & modules


def test_unknown_names_raise_attribute_error() -> None:
    message = run_python(
        "import bandfusion\n"
        "try:\n    bandfusion.no_such_name\n"
        "except AttributeError as exc:\n    print(exc)"
    )
    assert "no_such_name" in message


def test_the_version_is_the_installed_distribution_s() -> None:
    from importlib.metadata import version

    import bandfusion

    assert bandfusion.__version__ == version("bandfusion")


def test_every_sub_package_is_packaged() -> None:
    """A wheel holds only the packages pyproject.toml lists (an editable install hides a gap)."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    roots = {"bandfusion": REPO / "pipeline", "bandfusion.models": REPO / "models"}
    found = {
        ".".join([name, *init.parent.relative_to(root).parts])
        for name, root in roots.items()
        for init in root.rglob("__init__.py")
    }
    assert found == listed
