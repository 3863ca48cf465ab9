"""The CURL/DrQ convolutional encoder, and a centre-crop wrapper for any features extractor.

Both are ordinary SB3 ``BaseFeaturesExtractor`` classes: plain SB3 can use them through
``policy_kwargs=dict(features_extractor_class=CurlEncoder)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from curl_rl.auxiliary.augmentations import center_crop
from curl_rl.auxiliary.conv_trunk import ConvTrunk


class CurlEncoder(BaseFeaturesExtractor):
    """CURL's pixel encoder: conv stack, flatten, Linear, LayerNorm, optional tanh.

    The defaults are CURL's (4 conv layers of 32 3x3 filters, first stride 2, 50 features,
    LayerNorm, tanh on). SB3 has already scaled images to [0, 1] when they arrive here.

    :param observation_space: channel-first image space (SB3 transposes channel-last envs).
    :param features_dim: output size.
    :param num_layers: number of conv layers.
    :param num_filters: filters per conv layer.
    :param strides: stride of each layer; a shorter list is padded with 1.
    :param kernel_size: conv kernel side.
    :param layer_norm: LayerNorm after the linear layer.
    :param tanh: tanh after the LayerNorm (CURL's paper version).
    :param center: subtract 0.5 from the [0, 1] input (DrQ-v2).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        features_dim: int = 50,
        num_layers: int = 4,
        num_filters: int = 32,
        strides: Sequence[int] = (2,),
        kernel_size: int = 3,
        layer_norm: bool = True,
        tanh: bool = True,
        center: bool = False,
    ) -> None:
        super().__init__(observation_space, features_dim)
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 3:
            raise ValueError(
                f"CurlEncoder needs a 3-D image Box space, got {observation_space}; for Dict spaces use "
                "SB3's CombinedExtractor (MultiInputPolicy) and give it CurlEncoder per image key"
            )
        if not is_image_space_channels_first(observation_space):
            raise ValueError(
                f"CurlEncoder expects channel-first images, got shape {observation_space.shape}; "
                "wrap the env in VecTransposeImage (SB3 does this for you in its algorithms)"
            )
        if num_layers < 1:
            raise ValueError("CurlEncoder: num_layers must be >= 1")
        stride_list = list(strides) + [1] * max(0, num_layers - len(strides))
        channels = observation_space.shape[0]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [
                nn.Conv2d(channels if i == 0 else num_filters, num_filters, kernel_size, stride_list[i]),
                nn.ReLU(inplace=True),  # the conv backward keeps its input, not its output
            ]
        self.convs = ConvTrunk(*layers, nn.Flatten())
        side = min(observation_space.shape[1:])
        for stride in stride_list:
            side = (side - kernel_size) // stride + 1
        if side < 1:
            raise ValueError(
                f"CurlEncoder: images of {observation_space.shape[1]}x{observation_space.shape[2]} are too small for "
                f"{num_layers} conv layers of kernel {kernel_size} (strides {stride_list}); render larger images "
                "(env image_size) or use fewer layers (features_extractor_kwargs num_layers)"
            )
        with torch.no_grad():
            sample = torch.as_tensor(observation_space.sample()[None]).float()
            n_flat = self.convs(sample).shape[1]
        head: list[nn.Module] = [nn.Linear(n_flat, features_dim)]
        if layer_norm:
            head.append(nn.LayerNorm(features_dim))
        if tanh:
            head.append(nn.Tanh())
        self.head = nn.Sequential(*head)
        self.center = center

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        if self.center:
            observations = observations - 0.5
        return self.head(self.convs(observations))


def cropped_space(space: gym.spaces.Box, size: int) -> gym.spaces.Box:
    """The image space after a centre crop to ``size`` x ``size``.

    :param space: channel-first image space.
    :param size: crop side.
    :return: the smaller Box.
    """
    c = space.shape[0]
    low = np.full((c, size, size), np.min(space.low), dtype=space.dtype)
    high = np.full((c, size, size), np.max(space.high), dtype=space.dtype)
    return gym.spaces.Box(low=low, high=high, dtype=space.dtype)


class CenterCropExtractor(BaseFeaturesExtractor):
    """Wrap any extractor so it is built for ``crop_size`` inputs and centre-crops larger ones.

    Training feeds random crops of ``crop_size`` (unchanged here); acting feeds full frames,
    which get the centre crop, as in CURL's evaluation protocol.

    :param observation_space: the env's (channel-first) image space.
    :param crop_size: side of the crops the inner extractor sees.
    :param inner_class: the wrapped extractor class.
    :param inner_kwargs: its keyword arguments.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        crop_size: int,
        inner_class: type[BaseFeaturesExtractor] = CurlEncoder,
        inner_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not is_image_space(observation_space, check_channels=False):
            raise ValueError(f"CenterCropExtractor needs an image space, got {observation_space}")
        h, w = observation_space.shape[1:]
        if crop_size > min(h, w):
            raise ValueError(
                f"crop_size={crop_size} is larger than the {h}x{w} observations; render larger frames "
                f"(e.g. 100x100 for 84 crops) or lower crop_size"
            )
        inner = inner_class(cropped_space(observation_space, crop_size), **(inner_kwargs or {}))
        super().__init__(observation_space, inner.features_dim)
        self.inner = inner
        self.crop_size = crop_size

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.inner(center_crop(observations, self.crop_size))
