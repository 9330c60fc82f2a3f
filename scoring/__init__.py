"""tierstream's functional core: state in, event and `now` in, new state and decisions out.

No I/O, no clock, no environment: `now` and the config are arguments.
"""

from scoring.btyd import BtydSummary, btyd_summary
from scoring.calibrate import apply_calibration, calibrate
from scoring.calibration import Calibration, parse_calibration
from scoring.codec import decode_state, encode_state
from scoring.config import ScoringConfig, parse_config, parse_config_yaml
from scoring.decisions import ActionRequest, Alert, Decision, ScoreChanged, TierChange
from scoring.errors import CalibrationError, ConfigError, ScoringError, StateDecodeError
from scoring.events import CoreEvent, Kind
from scoring.fold import Applied, Outcome, apply, fold
from scoring.plan import check_frequency_cap, roi_guard
from scoring.review import next_review_at, next_review_day
from scoring.rfm import Score, score
from scoring.state import NEW_STATE, CustomerState
from scoring.step import Evaluation, StepResult, evaluate, step
from scoring.tiers import assign_tier

__all__ = [
    "NEW_STATE",
    "ActionRequest",
    "Alert",
    "Applied",
    "BtydSummary",
    "Calibration",
    "CalibrationError",
    "ConfigError",
    "CoreEvent",
    "CustomerState",
    "Decision",
    "Evaluation",
    "Kind",
    "Outcome",
    "Score",
    "ScoreChanged",
    "ScoringConfig",
    "ScoringError",
    "StateDecodeError",
    "StepResult",
    "TierChange",
    "apply",
    "apply_calibration",
    "assign_tier",
    "btyd_summary",
    "calibrate",
    "check_frequency_cap",
    "decode_state",
    "encode_state",
    "evaluate",
    "fold",
    "next_review_at",
    "next_review_day",
    "parse_calibration",
    "parse_config",
    "parse_config_yaml",
    "roi_guard",
    "score",
    "step",
]
