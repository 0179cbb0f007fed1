"""Reinforcement-learning baselines on the replay env (stable-baselines3 / sb3-contrib).

- :mod:`agents.rl.macro`: the six-action macro MDP (``tts_gym/ReplayMacro-v0``, which lives in
  :mod:`tts_gym.env.macro_env`), re-exported;
- :mod:`agents.rl.eval_callback`: periodic protocol evaluation during training (best model kept);
- :mod:`agents.rl.wrappers`: a flattening wrapper for the atomic env's Dict observation;
- :mod:`agents.rl.sb3_vec`: an SB3 ``VecEnv`` adapter over the native batched atomic env;
- :mod:`agents.rl.train`: the training script (``tts-gym train-rl``);
- :mod:`agents.rl.policy`: a trained policy as a controller (``rl:DIR/model.zip``);
- :mod:`agents.rl.sb3_numpy`: reads the policy network from ``model.zip`` without torch.

Heavy dependencies (torch, stable-baselines3) are imported only by ``train`` (and by ``policy``
for architectures ``sb3_numpy`` does not read): evaluating a trained policy needs numpy only.
"""
