"""Customer value model: BG/NBD, Gamma-Gamma, CLV, R/F/M cut points, at-risk model.

Pure functions over numpy arrays (days, amounts): no I/O, clock or
environment. Reading and writing `model.json` is the CLI's job, through
`ValueModel.to_dict` / `ValueModel.from_dict`.
"""

from scoring.valuemodel.atrisk import AtRiskModel, fit_at_risk
from scoring.valuemodel.bgnbd import BgNbdParams, expected_purchases, fit_bgnbd, p_alive, p_no_purchase
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
    "GammaGammaParams",
    "PurchaseLog",
    "RfmThresholds",
    "Score",
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
    "fit_gamma_gamma",
    "fit_value_model",
    "p_alive",
    "p_no_purchase",
    "precision_at_top",
    "purchase_log",
    "quantile_thresholds",
    "rfm_scores",
    "roc_auc",
    "summarise",
]
