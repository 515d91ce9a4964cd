"""The lagaug core: hooks, plugin manager, method contract, data, ensemble, the loop, the run store."""
