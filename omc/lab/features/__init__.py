"""Lab features: study inputs with knowledge time, the causal feature library, the feature
spec and matrix, and the data checks (coverage, sample size, class balance, leakage)."""

from omc.lab.features.checks import CheckResult, run_checks
from omc.lab.features.inputs import InputError, StudyInputs, load_inputs
from omc.lab.features.spec import FeatureSpec, build_matrix, features_at

__all__ = [
    "CheckResult",
    "FeatureSpec",
    "InputError",
    "StudyInputs",
    "build_matrix",
    "features_at",
    "load_inputs",
    "run_checks",
]
