"""The detector network: masked building blocks, pyramid encoders, detection heads.

`mgrec.model.detector.build_detector(ModelConfig)` is the entry point. Read top to bottom:
`blocks.py` (masked conv/norm, DFA conv, DynE layer, spatial-temporal attention, local attention),
`encoders.py` (embedding + feature pyramid), `heads.py` (cross-scale heads and final predictors),
`detector.py` (the three variants put together: mgrec, dyfadet, actionformer).
"""
