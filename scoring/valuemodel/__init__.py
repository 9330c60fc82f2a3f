"""Customer value model: BG/NBD, Gamma-Gamma, CLV, R/F/M cut points, at-risk model.

Pure functions over numpy arrays (days, amounts): no I/O, clock or
environment. Reading and writing `model.json` is the CLI's job, through
`ValueModel.to_dict` / `ValueModel.from_dict`. Where a likelihood has no
interior maximum, `fit_purchases` and `fit_spend` choose a limit or a
penalised fit on held-out days and say why (`FitChoice`).
"""

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
