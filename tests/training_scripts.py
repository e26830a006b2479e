"""Import a script of training/ or benchmarks/ (not packages) as a module, for testing its functions."""
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAINING_DIR = REPO_ROOT / "training"


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def load_training_script(name: str) -> ModuleType:
    """``name`` without ``.py``, e.g. "package_model"."""
    return load_script(TRAINING_DIR / f"{name}.py")


def load_benchmark_script(name: str) -> ModuleType:
    """``name`` without ``.py``, e.g. "benchmark_backends"."""
    return load_script(REPO_ROOT / "benchmarks" / f"{name}.py")
