"""curl_rl: contrastive and predictive auxiliary losses for Stable-Baselines3 pixel agents.

The public names load on first use (PEP 562), so ``curl-rl --help`` and the pure parts
(``curl_rl.auxiliary``) do not pay for importing torch and Stable-Baselines3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curl_rl._lazy import lazy_attributes

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "ALGOS": "curl_rl.algos",
    "CurlA2C": "curl_rl.algos",
    "CurlDQN": "curl_rl.algos",
    "CurlPPO": "curl_rl.algos",
    "CurlSAC": "curl_rl.algos",
    "CurlTD3": "curl_rl.algos",
    "AUX_PRESETS": "curl_rl.auxiliary.config",
    "AuxConfig": "curl_rl.auxiliary.config",
    "resolve_aux_config": "curl_rl.auxiliary.config",
    "CenterCropExtractor": "curl_rl.auxiliary.encoder",
    "CurlEncoder": "curl_rl.auxiliary.encoder",
    "preset_kwargs": "curl_rl.experiment.config",
    "CurlCallbacks": "curl_rl.experiment.curl_callbacks",
}

__all__ = [
    "ALGOS",
    "AUX_PRESETS",
    "AuxConfig",
    "CenterCropExtractor",
    "CurlA2C",
    "CurlCallbacks",
    "CurlDQN",
    "CurlEncoder",
    "CurlPPO",
    "CurlSAC",
    "CurlTD3",
    "preset_kwargs",
    "resolve_aux_config",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from curl_rl.algos import ALGOS, CurlA2C, CurlDQN, CurlPPO, CurlSAC, CurlTD3
    from curl_rl.auxiliary.config import AUX_PRESETS, AuxConfig, resolve_aux_config
    from curl_rl.auxiliary.encoder import CenterCropExtractor, CurlEncoder
    from curl_rl.experiment.config import preset_kwargs
    from curl_rl.experiment.curl_callbacks import CurlCallbacks


# `import curl_rl` makes gym.make("curl_rl/...") work, as `import ale_py` does for "ALE/..."
# (gymnasium 1.x has no plugin entry points): importing curl_rl.envs registers the ids, and imports
# gymnasium and numpy, not torch
import curl_rl.envs  # noqa: E402, F401

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
