"""A scripted two-room environment for exact rollout tests."""


class ScriptedEnv:
    """A two-room game: from the hall, 'go east' reaches the vault and wins; 'look' changes nothing."""

    def __init__(self, max_turns: int = 3):
        self.max_turns = max_turns

    def reset(self):
        self.room, self.turn = "hall", 0
        return "You are in the hall.", self._info()

    def step(self, action):
        self.turn += 1
        if action == "go east":
            self.room = "vault"
        won = self.room == "vault"
        obs = "You are in the vault." if won else ("Nothing happens." if action != "look" else "The hall.")
        return obs, 1.0 if won else 0.0, won, not won and self.turn >= self.max_turns, self._info()

    def _info(self):
        return {"admissible_commands": ["go east", "look"], "won": self.room == "vault",
                "anchor": f"{self.room}\nturn{self.turn}" if self.turn else "hall\nintro", "room": self.room}
