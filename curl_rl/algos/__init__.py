"""Algorithm glue: the five Curl algorithms (thin SB3 subclasses) and the mixins they share."""

from stable_baselines3.common.base_class import BaseAlgorithm

from curl_rl.algos.a2c import CurlA2C
from curl_rl.algos.dqn import CurlDQN
from curl_rl.algos.ppo import CurlPPO
from curl_rl.algos.sac import CurlSAC
from curl_rl.algos.td3 import CurlTD3

#: algorithm name (as on the command line) -> class
ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": CurlPPO, "a2c": CurlA2C, "sac": CurlSAC, "td3": CurlTD3, "dqn": CurlDQN}

__all__ = ["ALGOS", "CurlA2C", "CurlDQN", "CurlPPO", "CurlSAC", "CurlTD3"]
