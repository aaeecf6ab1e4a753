"""The names a model file may use: an explicit allow-list, and names nothing makes loadable.

skops imports what a file names and calls it: a class is instantiated, a function reference
is handed to the model (a FunctionTransformer calls it on every request). Whole-library
prefixes (``numpy.*``) would admit exec-like test helpers such as
``numpy.testing._private.utils.runstring`` and subprocess helpers such as
``sklearn.utils._testing.assert_run_python_script_without_output``, so every name here is
listed on purpose, by its fully qualified name as skops reports it.

Three parts are computed from the installed libraries, once, on first use: scikit-learn's
public estimators (``sklearn.utils.all_estimators``), numpy's scalar types and the metric
functions of scikit-learn's named scorers. A written-out list would drift from the installed
scikit-learn, whose private module paths move between releases; computing it costs nothing
extra, because skops runs ``all_estimators()`` on import anyway. Nothing here imports a
heavy library at module level: ``import cellops`` stays fast.
"""

from __future__ import annotations

import functools
import sys

# Plain data types only: a list of what to refuse would miss whatever hands code execution
# or file access to whoever crafted the file.
SAFE_BUILTINS = frozenset(
    f"builtins.{name}"
    for name in (
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "object", "range", "set", "slice", "str", "tuple", "type",
    )
)  # fmt: skip


def _under(module: str, names: str) -> set[str]:
    """``module.name`` for each space-separated name."""
    return {f"{module}.{name}" for name in names.split()}


# Containers and arrays skops rebuilds from data (arrays with allow_pickle=False).
PLAIN_DATA = frozenset(
    {
        "collections.OrderedDict",
        "collections.defaultdict",
        # its function and arguments are names and values of the same file, checked alike
        "functools.partial",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.ma.MaskedArray",
        "numpy.ma.core.MaskedArray",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        *_under("numpy.random", "MT19937 PCG64 PCG64DXSM Philox SFC64"),
        # scipy.sparse.load_npz reads these (allow_pickle=False)
        *(
            f"scipy.sparse._{fmt}.{fmt}_{kind}"
            for fmt in ("csr", "csc", "coo", "bsr", "dia")
            for kind in ("matrix", "array")
        ),
    }
)

_LOSSES = """AbsoluteError ExponentialLoss HalfBinomialLoss HalfGammaLoss HalfMultinomialLoss
    HalfPoissonLoss HalfSquaredError HalfTweedieLoss HalfTweedieLossIdentity HuberLoss PinballLoss"""
# scikit-learn objects fitted models hold that are not public estimators.
SKLEARN_INTERNALS = frozenset(
    {
        *_under(
            "sklearn._loss.link",
            "HalfLogitLink IdentityLink Interval LogitLink LogLink MultinomialLogit",
        ),
        *_under("sklearn._loss.loss", _LOSSES),
        *_under("sklearn._loss._loss", " ".join(f"Cy{name}" for name in _LOSSES.split())),
        *_under(
            "sklearn.linear_model._sgd_fast",
            "EpsilonInsensitive Hinge Huber Log ModifiedHuber SquaredEpsilonInsensitive "
            "SquaredHinge SquaredLoss",
        ),
        *_under(
            "sklearn.metrics._scorer",
            "_Scorer _PassthroughScorer _MultimetricScorer _PredictScorer _ProbaScorer "
            "_ThresholdScorer",
        ),
        *_under(
            "sklearn.model_selection._split",
            "KFold StratifiedKFold GroupKFold StratifiedGroupKFold ShuffleSplit "
            "StratifiedShuffleSplit GroupShuffleSplit RepeatedKFold RepeatedStratifiedKFold "
            "TimeSeriesSplit LeaveOneOut LeavePOut LeaveOneGroupOut LeavePGroupsOut "
            "PredefinedSplit _CVIterableWrapper",
        ),
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.utils._bunch.Bunch",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        *_under("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer SGDOptimizer"),
        *_under("sklearn.compose._column_transformer", "make_column_selector _RemainderColsList"),
    }
)

# Tree node storage holds raw indices scikit-learn reads without bounds checks: accepted
# only after serialize.check has validated its arrays (see tree_storage.py).
TREE = "sklearn.tree._tree.Tree"
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
VALIDATED = frozenset({TREE, TREE_PREDICTOR})

# Function references: pure elementwise math and scoring, nothing that reads, writes,
# imports or executes. A model calls these on request data.
_UFUNCS = """absolute negative positive reciprocal sign fabs sqrt cbrt square exp exp2 expm1 log
    log2 log10 log1p sin cos tan arcsin arccos arctan sinh cosh tanh arcsinh arccosh arctanh
    floor ceil rint trunc isnan isfinite isinf deg2rad rad2deg clip"""
# skops finds a scipy.special function's module by searching sys.modules, so the same
# function is reported under whichever of these modules was imported first.
_SCIPY_SPECIAL_MODULES = (
    "scipy.special",
    "scipy.special._ufuncs",
    "scipy.special._special_ufuncs",
    "scipy.special._basic",
    "scipy.special._logsumexp",
)
_SCIPY_SPECIAL = """expit logit log_expit erf erfc erfinv gammaln boxcox1p inv_boxcox1p
    softmax log_softmax logsumexp"""
VETTED_FUNCTIONS = frozenset(
    {
        *_under("numpy", _UFUNCS),
        *(name for module in _SCIPY_SPECIAL_MODULES for name in _under(module, _SCIPY_SPECIAL)),
        # HistGradientBoosting* with categorical features keeps partial(check_array, ...)
        "sklearn.utils.validation.check_array",
        *_under(
            "sklearn.feature_selection._univariate_selection",
            "f_classif f_regression chi2 r_regression",
        ),
        *_under(
            "sklearn.feature_selection._mutual_info",
            "mutual_info_classif mutual_info_regression",
        ),
    }
)

# Defense in depth: names that run code, start processes, or read or write files or the
# network when called. No trusted=[...] makes them loadable, even in the user's own module.
DENIED_MODULES = frozenset(
    {
        "os", "posix", "nt", "subprocess", "sys", "shutil", "pickle", "_pickle", "pickletools",
        "copyreg", "marshal", "shelve", "dbm", "importlib", "pkgutil", "runpy", "code",
        "codeop", "pdb", "bdb", "timeit", "doctest", "pydoc", "profile", "cProfile", "trace",
        "pty", "socket", "ssl", "http", "urllib", "ftplib", "smtplib", "webbrowser", "ctypes",
        "multiprocessing", "concurrent", "threading", "_thread", "signal", "asyncio", "io",
        "_io", "pathlib", "tempfile", "glob", "fileinput", "zipfile", "tarfile", "gzip", "bz2",
        "lzma", "sqlite3", "logging",
        "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib", "numpy.lib.format",
        "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.lib._datasource",
        "numpy.lib._utils_impl", "scipy.io", "scipy._lib._testutils", "scipy.datasets",
        "sklearn.utils._testing", "sklearn.datasets", "sklearn.externals",
        "joblib", "cloudpickle", "dill", "skops", "IPython", "ipykernel", "jupyter_client",
        "jupyter_core", "jupyter_server", "tornado", "pip", "setuptools", "distutils",
        "requests", "cellops", "cellops_server",
    }
)  # fmt: skip
DENIED_FUNCTIONS = frozenset(
    {
        "eval", "exec", "compile", "open", "__import__", "import_module", "getattr", "setattr",
        "delattr", "globals", "locals", "vars", "breakpoint", "input", "system", "popen",
        "runstring", "exec_command", "load", "loads", "save", "savez", "savez_compressed",
        "savetxt", "loadtxt", "genfromtxt", "fromfile", "tofile", "fromregex", "memmap",
        "frompyfunc", "load_npz", "save_npz", "dump", "dumps", "DataSource",
    }
)  # fmt: skip

# Names under these are only ever accepted from the allow-list: they are installed wherever
# cellops runs, so they are where a crafted file finds its gadgets.
VETTED_LIBRARIES = frozenset({"numpy", "scipy", "sklearn", *sys.stdlib_module_names})


def is_denied(name: str) -> bool:
    """True for a name that executes code or does I/O, whoever vouches for it."""
    parts = name.split(".")
    last = parts[-1]
    if last in DENIED_FUNCTIONS or (last.startswith("__") and last.endswith("__")):
        return True
    return any(".".join(parts[:i]) in DENIED_MODULES for i in range(1, len(parts)))


def is_vetted_library(name: str) -> bool:
    """True for a name inside numpy, scipy, scikit-learn or the standard library."""
    return name.split(".", 1)[0] in VETTED_LIBRARIES


def is_allowed(name: str) -> bool:
    """True for a name on the allow-list (tree storage counts: its arrays are checked apart)."""
    return name in _allowed() and not is_denied(name)


@functools.cache
def _allowed() -> frozenset[str]:
    return frozenset(
        SAFE_BUILTINS
        | PLAIN_DATA
        | SKLEARN_INTERNALS
        | VALIDATED
        | VETTED_FUNCTIONS
        | _sklearn_estimators()
        | _numpy_scalar_types()
        | _scorer_functions()
    )


def _qualified(obj: object) -> str:
    return f"{obj.__module__}.{obj.__name__}"  # type: ignore[attr-defined]


def _sklearn_estimators() -> frozenset[str]:
    from sklearn.utils import all_estimators

    # sklearn's own estimators only: all_estimators() can list third-party ones too.
    names = (_qualified(cls) for _, cls in all_estimators())
    return frozenset(n for n in names if n.startswith("sklearn."))


def _numpy_scalar_types() -> frozenset[str]:
    import numpy as np

    return frozenset(
        name for t in np.sctypeDict.values() if (name := _qualified(t)).startswith("numpy.")
    )


def _scorer_functions() -> frozenset[str]:
    """The metric functions behind scikit-learn's named scorers (``scoring="roc_auc"``)."""
    from sklearn.metrics import get_scorer, get_scorer_names

    found = set()
    for scorer in map(get_scorer, get_scorer_names()):
        func = getattr(scorer, "_score_func", None)
        if func is not None and _qualified(func).startswith("sklearn.metrics."):
            found.add(_qualified(func))
    return frozenset(found)
