"""Import a script of training/ (not a package) as a module, for testing its functions."""
import importlib.util
from pathlib import Path
from types import ModuleType

TRAINING_DIR = Path(__file__).resolve().parents[1] / "training"


def load_training_script(name: str) -> ModuleType:
    """``name`` without ``.py``, e.g. "package_model"."""
    spec = importlib.util.spec_from_file_location(name, TRAINING_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
