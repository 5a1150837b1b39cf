"""The particle engine: the SA/USA vector field, the DOP853 stepper, clusters and collapse, and :func:`simulate`."""
