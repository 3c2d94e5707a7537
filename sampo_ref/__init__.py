"""sampo_ref: a readable reference implementation of RL for multi-turn LLM agents."""
