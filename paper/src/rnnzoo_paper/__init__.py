"""rnnzoo-paper: the reproduction of Maheswaranathan et al. (NeurIPS 2019) on rnnzoo."""
