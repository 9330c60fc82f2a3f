"""Customer value model: BG/NBD, Gamma-Gamma, CLV, R/F/M cut points, at-risk model.

Pure functions over numpy arrays (days, amounts): no I/O, clock or
environment. Reading and writing `model.json` is the CLI's job, through
`ValueModel.to_dict` / `ValueModel.from_dict`. Where a likelihood has no
interior maximum, `fit_purchases` and `fit_spend` choose a limit or a
penalised fit on held-out days and say why (`FitChoice`).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.valuemodel.atrisk import AtRiskModel, fit_at_risk
    from scoring.valuemodel.bgnbd import (
        BgNbdParams,
        expected_purchases,
        fit_bgnbd,
        fit_nbd,
        log_p_purchase_days,
        p_alive,
        p_no_purchase,
    )
    from scoring.valuemodel.choice import FitChoice
    from scoring.valuemodel.clv import clv
    from scoring.valuemodel.errors import ValueModelError
    from scoring.valuemodel.evaluate import Evaluation, Score, evaluate
    from scoring.valuemodel.features import (
        FEATURE_NAMES,
        FEATURE_NAMES_V1,
        FEATURE_NAMES_V2,
        at_risk_features,
        feature_columns,
    )
    from scoring.valuemodel.gammagamma import (
        GammaGammaParams,
        conditional_expected_average_profit,
        expected_average_value,
        fit_gamma_gamma,
    )
    from scoring.valuemodel.metrics import precision_at_top, roc_auc
    from scoring.valuemodel.model import MODEL_FORMAT, ValueModel, fit_value_model
    from scoring.valuemodel.penalised import fit_bgnbd_as_lifetimes, fit_bgnbd_ridge
    from scoring.valuemodel.purchasefit import NotEnoughHistoryError, fit_purchases
    from scoring.valuemodel.spendfit import SpendCheck, fit_spend, spend_check
    from scoring.valuemodel.summary import PurchaseLog, Summary, purchase_log, summarise
    from scoring.valuemodel.thresholds import RfmThresholds, quantile_thresholds, rfm_scores

# Each name is imported from its module when first asked for (PEP 562): `import scoring.valuemodel.summary`, as
# the batch readers do, then runs no SciPy import (~1 s). `tierstream fit` reads and folds its history without it
# while the model is fitted in a forked process that imports it.
_HOME = {
    "AtRiskModel": "scoring.valuemodel.atrisk",
    "fit_at_risk": "scoring.valuemodel.atrisk",
    "BgNbdParams": "scoring.valuemodel.bgnbd",
    "expected_purchases": "scoring.valuemodel.bgnbd",
    "fit_bgnbd": "scoring.valuemodel.bgnbd",
    "fit_nbd": "scoring.valuemodel.bgnbd",
    "log_p_purchase_days": "scoring.valuemodel.bgnbd",
    "p_alive": "scoring.valuemodel.bgnbd",
    "p_no_purchase": "scoring.valuemodel.bgnbd",
    "FitChoice": "scoring.valuemodel.choice",
    "clv": "scoring.valuemodel.clv",
    "ValueModelError": "scoring.valuemodel.errors",
    "Evaluation": "scoring.valuemodel.evaluate",
    "Score": "scoring.valuemodel.evaluate",
    "evaluate": "scoring.valuemodel.evaluate",
    "FEATURE_NAMES": "scoring.valuemodel.features",
    "FEATURE_NAMES_V1": "scoring.valuemodel.features",
    "FEATURE_NAMES_V2": "scoring.valuemodel.features",
    "at_risk_features": "scoring.valuemodel.features",
    "feature_columns": "scoring.valuemodel.features",
    "GammaGammaParams": "scoring.valuemodel.gammagamma",
    "conditional_expected_average_profit": "scoring.valuemodel.gammagamma",
    "expected_average_value": "scoring.valuemodel.gammagamma",
    "fit_gamma_gamma": "scoring.valuemodel.gammagamma",
    "precision_at_top": "scoring.valuemodel.metrics",
    "roc_auc": "scoring.valuemodel.metrics",
    "MODEL_FORMAT": "scoring.valuemodel.model",
    "ValueModel": "scoring.valuemodel.model",
    "fit_value_model": "scoring.valuemodel.model",
    "fit_bgnbd_as_lifetimes": "scoring.valuemodel.penalised",
    "fit_bgnbd_ridge": "scoring.valuemodel.penalised",
    "NotEnoughHistoryError": "scoring.valuemodel.purchasefit",
    "fit_purchases": "scoring.valuemodel.purchasefit",
    "SpendCheck": "scoring.valuemodel.spendfit",
    "fit_spend": "scoring.valuemodel.spendfit",
    "spend_check": "scoring.valuemodel.spendfit",
    "PurchaseLog": "scoring.valuemodel.summary",
    "Summary": "scoring.valuemodel.summary",
    "purchase_log": "scoring.valuemodel.summary",
    "summarise": "scoring.valuemodel.summary",
    "RfmThresholds": "scoring.valuemodel.thresholds",
    "quantile_thresholds": "scoring.valuemodel.thresholds",
    "rfm_scores": "scoring.valuemodel.thresholds",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # asked for once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(ModuleType):
    """Two modules share their names with the function they define (`clv`, `evaluate`). Importing a submodule
    sets it as the package's attribute of its name: for those two the attribute stays the function, as when
    this package imported everything at once (`from scoring.valuemodel import evaluate` is the function)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _HOME.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


importlib.import_module(__name__).__class__ = _Package  # this module (as it is being loaded)


__all__ = [
    "FEATURE_NAMES",
    "FEATURE_NAMES_V1",
    "FEATURE_NAMES_V2",
    "MODEL_FORMAT",
    "AtRiskModel",
    "BgNbdParams",
    "Evaluation",
    "FitChoice",
    "GammaGammaParams",
    "NotEnoughHistoryError",
    "PurchaseLog",
    "RfmThresholds",
    "Score",
    "SpendCheck",
    "Summary",
    "ValueModel",
    "ValueModelError",
    "at_risk_features",
    "clv",
    "conditional_expected_average_profit",
    "evaluate",
    "expected_average_value",
    "expected_purchases",
    "feature_columns",
    "fit_at_risk",
    "fit_bgnbd",
    "fit_bgnbd_as_lifetimes",
    "fit_bgnbd_ridge",
    "fit_gamma_gamma",
    "fit_nbd",
    "fit_purchases",
    "fit_spend",
    "fit_value_model",
    "log_p_purchase_days",
    "p_alive",
    "p_no_purchase",
    "precision_at_top",
    "purchase_log",
    "quantile_thresholds",
    "rfm_scores",
    "roc_auc",
    "spend_check",
    "summarise",
]
