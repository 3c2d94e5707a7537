"""Environment adapters: the toy TextWorld task (and ALFWorld)."""
