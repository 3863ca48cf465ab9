"""curl_rl: contrastive and predictive auxiliary losses for Stable-Baselines3 pixel agents."""

from curl_rl.algos import ALGOS, CurlA2C, CurlDQN, CurlPPO, CurlSAC, CurlTD3
from curl_rl.auxiliary.config import AUX_PRESETS, AuxConfig, resolve_aux_config
from curl_rl.auxiliary.encoder import CenterCropExtractor, CurlEncoder

__version__ = "0.1.0"

__all__ = [
    "ALGOS",
    "AUX_PRESETS",
    "AuxConfig",
    "CenterCropExtractor",
    "CurlA2C",
    "CurlDQN",
    "CurlEncoder",
    "CurlPPO",
    "CurlSAC",
    "CurlTD3",
    "resolve_aux_config",
]
