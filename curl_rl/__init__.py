"""curl_rl: contrastive and predictive auxiliary losses for Stable-Baselines3 pixel agents."""

from curl_rl.a2c import CurlA2C
from curl_rl.common.config import AUX_PRESETS, AuxConfig, resolve_aux_config
from curl_rl.common.encoder import CenterCropExtractor, CurlEncoder
from curl_rl.dqn import CurlDQN
from curl_rl.ppo import CurlPPO
from curl_rl.sac import CurlSAC
from curl_rl.td3 import CurlTD3

__version__ = "0.1.0"

#: algorithm name (as on the command line) -> class
ALGOS = {"ppo": CurlPPO, "a2c": CurlA2C, "sac": CurlSAC, "td3": CurlTD3, "dqn": CurlDQN}

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
