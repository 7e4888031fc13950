"""Learning rules: metaplastic optax transformation, straight-through quantisers, EWC,
and the STDP rule (spikes in, level pulses out; the spiking layer that uses it is
:mod:`memjax.models.wta`)."""

from .ewc import ewc_penalty as ewc_penalty
from .ewc import fisher_diagonal as fisher_diagonal
from .metaplastic import LevelChangeState as LevelChangeState
from .metaplastic import MetaplasticScheduleState as MetaplasticScheduleState
from .metaplastic import MetaplasticState as MetaplasticState
from .metaplastic import count_level_changes as count_level_changes
from .metaplastic import meta_factor as meta_factor
from .metaplastic import metaplastic as metaplastic
from .metaplastic import metaplastic_adam as metaplastic_adam
from .metaplastic import weight_matrices as weight_matrices
from .quantize import fixed_point as fixed_point
from .quantize import level_index as level_index
from .quantize import level_value as level_value
from .quantize import quantize_levels as quantize_levels
from .quantize import sign_hardtanh_ste as sign_hardtanh_ste
from .quantize import sign_ste as sign_ste
from .stdp import STDP as STDP
from .stdp import pre_recent as pre_recent
from .stdp import stdp_pulses as stdp_pulses
from .stdp import steps_since as steps_since

__all__ = [
    "metaplastic",
    "metaplastic_adam",
    "meta_factor",
    "MetaplasticScheduleState",
    "MetaplasticState",
    "weight_matrices",
    "count_level_changes",
    "LevelChangeState",
    "quantize_levels",
    "level_index",
    "level_value",
    "sign_ste",
    "sign_hardtanh_ste",
    "fixed_point",
    "fisher_diagonal",
    "ewc_penalty",
    "STDP",
    "stdp_pulses",
    "steps_since",
    "pre_recent",
]
