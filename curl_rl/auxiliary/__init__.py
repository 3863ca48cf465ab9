"""Pure auxiliary parts: config, augmentations, losses, momentum encoder, encoders, the head.

Nothing here imports Stable-Baselines3's algorithms or the rest of curl_rl: these pieces work on
tensors and ``nn.Module``s and can be reused outside SB3.
"""
