"""Learning rules: metaplastic optax transformation, straight-through quantisers, EWC, STDP."""

from .ewc import ewc_penalty as ewc_penalty
from .ewc import fisher_diagonal as fisher_diagonal
from .metaplastic import LevelChangeState as LevelChangeState
from .metaplastic import MetaplasticDepthState as MetaplasticDepthState
from .metaplastic import MetaplasticScheduleState as MetaplasticScheduleState
from .metaplastic import MetaplasticState as MetaplasticState
from .metaplastic import count_level_changes as count_level_changes
from .metaplastic import meta_factor as meta_factor
from .metaplastic import metaplastic as metaplastic
from .metaplastic import metaplastic_adam as metaplastic_adam
from .metaplastic import metaplastic_depth as metaplastic_depth
from .metaplastic import weight_matrices as weight_matrices
from .quantize import fixed_point as fixed_point
from .quantize import level_index as level_index
from .quantize import level_step as level_step
from .quantize import level_value as level_value
from .quantize import quantize_levels as quantize_levels
from .quantize import sign_hardtanh_ste as sign_hardtanh_ste
from .quantize import sign_ste as sign_ste
from .stdp import STDP as STDP
from .stdp import WTALayer as WTALayer
from .stdp import WTAState as WTAState
from .stdp import stdp_update as stdp_update
from .stdp import wta_learn as wta_learn
from .stdp import wta_respond as wta_respond

__all__ = [
    "metaplastic",
    "metaplastic_adam",
    "metaplastic_depth",
    "MetaplasticDepthState",
    "meta_factor",
    "MetaplasticScheduleState",
    "MetaplasticState",
    "weight_matrices",
    "count_level_changes",
    "LevelChangeState",
    "quantize_levels",
    "level_index",
    "level_value",
    "level_step",
    "sign_ste",
    "sign_hardtanh_ste",
    "fixed_point",
    "fisher_diagonal",
    "ewc_penalty",
    "STDP",
    "stdp_update",
    "WTALayer",
    "WTAState",
    "wta_learn",
    "wta_respond",
]
