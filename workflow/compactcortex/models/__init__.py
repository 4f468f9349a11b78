"""The networks every stage may use: the ensemble's member and readouts, the compact model, a bank of compact models,
and the teacher (the ensemble's members through a session's mapping)."""
