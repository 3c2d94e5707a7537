"""Toy TextWorld tasks, generated offline: game families with difficulty levels, a gymnasium env, env worker processes.

    from toy_envs import ensure_games, TextGameEnv
    files = ensure_games("coin", 1, seeds=range(8))
    env = TextGameEnv(files[0])
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step(info["admissible_commands"][0])
"""

from toy_envs.env import INVALID_FEEDBACK, TextGameEnv, clean_observation
from toy_envs.games import FAMILIES, LEVELS, Level, cache_dir, ensure_games, game_info, game_path

__all__ = [
    "FAMILIES",
    "INVALID_FEEDBACK",
    "LEVELS",
    "Level",
    "TextGameEnv",
    "cache_dir",
    "clean_observation",
    "ensure_games",
    "game_info",
    "game_path",
]
