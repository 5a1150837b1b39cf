"""Analysis of the result tables: scaling-law fits (:mod:`.fits`) and the per-sweep figures (:mod:`.plots`)."""
