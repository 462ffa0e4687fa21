"""Build hook: the wheel carries the default model bundle as package data.

`models/` stays the one copy in the repository; building copies the bundle
that `models/DEFAULT` names (with DEFAULT and the model card) into
`beetsplug/clap/models/` inside the build, where `model.models_roots()`
finds it in an installed wheel. Other bundles a developer keeps in
`models/` are not shipped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODELS = Path(__file__).resolve().parent / "models"
PACKAGE_MODELS = Path("beetsplug", "clap", "models")


def shipped_model_files() -> list[Path]:
    """models/DEFAULT, the model card and every file of the default bundle,
    relative to models/. A missing bundle fails the build: a wheel without
    its model would install a plugin that cannot search."""
    name = (MODELS / "DEFAULT").read_text(encoding="utf-8").strip()
    bundle = MODELS / name
    if not name or not (bundle / "manifest.json").is_file():
        raise SystemExit(f"models/DEFAULT names {name!r}, which is not a bundle")
    files = [MODELS / "DEFAULT", MODELS / "README.md"]
    files += sorted(p for p in bundle.rglob("*") if p.is_file())
    return [p.relative_to(MODELS) for p in files if p.is_file()]


class BuildWithModels(build_py):
    """build_py, then the default bundle copied into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's models/
        target = Path(self.build_lib) / PACKAGE_MODELS
        for rel in shipped_model_files():
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(MODELS / rel, dest)


setup(cmdclass={"build_py": BuildWithModels})
