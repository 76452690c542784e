"""The detector network: masked blocks, pyramid encoders, detection heads, and the paper's reference.

`mgrec.model.detector.build_detector(ModelConfig)` is the entry point. Read top to bottom:
- `masking.py`: the mask contract; masked statistics, downsampling, masked conv;
- `fastpath.py`: the one switch between the CPU-tuned and the plain forms of the blocks that have both;
- `norm.py`: the channel LayerNorm;
- `residual.py`: the residual-branch helpers of DynE and the transformer block (LayerScale, drop-path);
- `dyfadet.py`: DyFADet's GeReTanH gate, DFA conv and DynE layer;
- `attention.py`: the paper's spatial-temporal attention (Eq. 4-5);
- `actionformer.py`: ActionFormer's local self-attention and transformer block;
- `pyramid.py`: the feature pyramid packed on one time axis, and its per-level statistics;
- `encoders.py`: embedding + feature pyramid;
- `fusion.py`: several input streams in one encoder (concat, sum, gated residual fusion);
- `heads.py`: the cross-scale heads and final predictors, on the packed pyramid;
- `detector.py`: the three variants put together (mgrec, dyfadet, actionformer), the state format;
- `ensemble.py`: several detectors with one pyramid run as one (per-point probabilities averaged);
- `load.py`: a trained run's network from its files (one detector or such an ensemble, its EMA weights);
- `end_to_end.py`: a frozen clip encoder with adapters before the detector (training from raw video);
- `reference.py`: the whole detector again in paper notation, level by level, on the same
  parameters: slow and plain, what the fast modules above are tested against;
- `inputs.py`: one video's features padded into the detector's input;
- `memory.py`: the memory a training or inference pass needs, estimated before anything is
  allocated (`check_fits`).
"""
