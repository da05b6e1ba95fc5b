"""scipy's ``curve_fit`` for the challenge's logistic fit, without importing all of ``scipy.optimize``.

``curve_fit(f, x, y, p0, maxfev=N)`` (method "lm": no bounds, no sigma) runs MINPACK's
Levenberg-Marquardt routine ``lmdif`` from scipy's compiled module ``scipy.optimize._minpack``.
Importing ``scipy.optimize`` to reach it takes 0.3-0.5 s (sparse matrices, linear programming,
interpolation, ...), more than scoring a submission; the compiled module alone loads in
milliseconds. :func:`curve_fit` loads just that module from the installed scipy and calls
``lmdif`` with exactly the arguments ``curve_fit`` and ``leastsq`` pass, so the fitted
parameters are scipy's bit for bit (tests compare them with ``scipy.optimize.curve_fit``).
Where the module cannot be loaded on its own, or its entry point is not the one expected
(another scipy layout), it calls ``scipy.optimize.curve_fit`` itself.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

_NAME = "scipy.optimize._minpack"
#: The entry point's documented signature (unchanged from scipy 1.8 to 1.17); any other means "use curve_fit".
_SIGNATURE = "_lmdif(fun, x0, args, full_output, ftol, xtol, gtol, maxfev, epsfcn, factor, diag)"
#: ``leastsq``'s defaults, which ``curve_fit`` keeps.
FTOL = XTOL = 1.49012e-08
GTOL = 0.0
FACTOR = 100
_SUCCESS = (1, 2, 3, 4)
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _messages(info: int, maxfev: int) -> str:
    """``leastsq``'s message for a return code, as ``curve_fit`` puts it in its RuntimeError."""
    return {0: "Improper input parameters.",
            5: f"Number of calls to function has reached maxfev = {maxfev}.",
            6: f"ftol={FTOL:f} is too small, no further reduction in the sum of squares\n  is possible.",
            7: f"xtol={XTOL:f} is too small, no further improvement in the approximate\n  solution is possible.",
            8: f"gtol={GTOL:f} is too small, func(x) is orthogonal to the columns of\n  the Jacobian to machine "
               "precision."}.get(info, f"MINPACK returned code {info}.")


def _load() -> ModuleType | None:
    """scipy's compiled MINPACK module, loaded without its package; ``None`` when that is not possible."""
    loaded = sys.modules.get(_NAME)
    if loaded is not None:
        return loaded if _SIGNATURE in (getattr(getattr(loaded, "_lmdif", None), "__doc__", "") or "") else None
    try:
        spec = importlib.util.find_spec("scipy")
        roots = list(spec.submodule_search_locations or []) if spec is not None else []
        for root in roots:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = os.path.join(root, "optimize", f"_minpack{suffix}")
                if not os.path.isfile(path):
                    continue
                loader = importlib.machinery.ExtensionFileLoader(_NAME, path)
                module_spec = importlib.util.spec_from_file_location(_NAME, path, loader=loader)
                if module_spec is None:
                    continue
                module = importlib.util.module_from_spec(module_spec)
                loader.exec_module(module)
                sys.modules.setdefault(_NAME, module)  # a later `import scipy.optimize` uses this one
                doc = getattr(getattr(module, "_lmdif", None), "__doc__", "") or ""
                return module if _SIGNATURE in doc else None
    except (ImportError, OSError, ValueError):
        return None
    return None


def minpack() -> ModuleType | None:
    """The compiled MINPACK module (loaded once), or ``None`` where ``scipy.optimize.curve_fit`` must be used."""
    with _lock:
        if "module" not in _state:
            _state["module"] = _load()
        module: ModuleType | None = _state["module"]
        return module


def curve_fit(f: Callable[..., np.ndarray], xdata: np.ndarray, ydata: np.ndarray, p0: Any,
              maxfev: int) -> np.ndarray:
    """``scipy.optimize.curve_fit(f, xdata, ydata, p0=p0, maxfev=maxfev)[0]``: the fitted parameters.

    Raises what ``curve_fit`` raises: ``ValueError`` for non-finite or empty data, ``TypeError``
    for more parameters than points, ``RuntimeError("Optimal parameters not found: ...")`` when
    MINPACK stops without converging.
    """
    module = minpack()
    if module is None:
        from scipy.optimize import OptimizeWarning
        from scipy.optimize import curve_fit as scipy_curve_fit

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)  # about the covariance, which is not returned
            popt: np.ndarray = scipy_curve_fit(f, xdata, ydata, p0=p0, maxfev=maxfev)[0]
        return popt
    ydata = np.asarray_chkfinite(ydata, float)
    xdata = np.asarray_chkfinite(xdata, float)
    if ydata.size == 0:
        raise ValueError("`ydata` must not be empty!")
    x0 = np.atleast_1d(p0).flatten()
    n = x0.size
    if ydata.size != 1 and n > ydata.size:
        raise TypeError(f"The number of func parameters={n} must not exceed the number of data points={ydata.size}")

    def residuals(params: np.ndarray) -> np.ndarray:
        return f(xdata, *params) - ydata

    first = np.atleast_1d(residuals(x0[:n]))  # leastsq's shape and dtype check
    if n > first.shape[0]:
        raise TypeError(f"Improper input: func input vector length N={n} must not exceed func output vector "
                        f"length M={first.shape[0]}")
    epsfcn = np.finfo(first.dtype if np.issubdtype(first.dtype, np.inexact) else np.dtype(float)).eps
    x, _, info = module._lmdif(residuals, x0, (), 1, FTOL, XTOL, GTOL, maxfev, epsfcn, FACTOR, None)
    if info not in _SUCCESS:
        raise RuntimeError("Optimal parameters not found: " + _messages(info, maxfev))
    return np.asarray(x)
