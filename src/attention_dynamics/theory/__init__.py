"""Theory independent of the integrator: the two-cluster reduced ODE and escape bound (:mod:`.twocluster`), the Gegenbauer growth rates of the mean-field instability (:mod:`.gegenbauer`)."""
