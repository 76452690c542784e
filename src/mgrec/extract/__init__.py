"""Feature extraction: raw videos (or SMG skeleton CSVs) -> one (T, C) feature file per video.

- `video`: the videos of a job, decoded ahead on a thread and windowed, shared between processes;
- `backbones`: frames -> features (EfficientNet-Lite0, VideoMAE), and a run's adapted backbone;
- `efficientnet`: EfficientNet-Lite0 with fewer memory passes, proven equal to the package's network;
- `adapters`: trainable adapters inside a frozen VideoMAE (end-to-end training), and a trained run's adapted
  backbone; `adapter_memory`: the memory of one end-to-end training step, planned before allocating;
- `videomae_convert`: official VideoMAE V2 checkpoints -> transformers folders;
- `skeleton`: Kinect joints -> window features; `pose`: MediaPipe body and hands (in .venv-pose);
- `outputs`: what the jobs share (results, resuming, refusing foreign files, failures);
- `jobs`: the `mgrec extract` jobs (resumable, shardable, fusing).
"""

# Bounds of `mgrec extract`'s whole-number options, checked when its command line is parsed and by the Python
# API's functions (`number_problem`, below; this module imports nothing, so the parser can read them cheaply).
# Frames are resized to size x size: 32 px is the least EfficientNet-Lite0's five stride-2 stages take;
# 2048 px is 9x its native 224 each way, where the 64 frames decoded ahead already hold 0.8 GB (a
# 100000 px frame, 30 GB, failed inside the decoder and was blamed on the video).
MIN_FRAME_SIZE, MAX_FRAME_SIZE = 32, 2048
# Frames per window, and between window starts: the window's frames are held decoded at once; 1024 frames
# (34 s at 30 fps, 64x the usual 16) is a window no feature network was made for, and a stride beyond it
# leaves one feature per half minute, nothing to detect gestures on.
MAX_WINDOW_FRAMES = 1024
# Network inputs per forward pass (frames, or VideoMAE clips of 16 frames): 256 clips at 224 px are 2.5 GB
# of float input before the network's own activations.
MAX_BATCH = 256

# The one statement of those bounds: option -> (least, most). The command line's parser and the Python API
# (`mgrec.extract.outputs.check_numbers`) both ask `number_problem`.
NUMBER_RANGES = {
    "window": (1, MAX_WINDOW_FRAMES),
    "stride": (1, MAX_WINDOW_FRAMES),
    "size": (MIN_FRAME_SIZE, MAX_FRAME_SIZE),
    "batch": (1, MAX_BATCH),
}


def number_problem(name: str, value: object) -> str | None:
    """What is wrong with `value` for the whole-number option `name` of `NUMBER_RANGES` ('expected a whole
    number in [1, 1024], got 0'), or None when it is one in its range. A bool, a float (even 8.0) or a
    string is not a whole number: the caller converts text first, as the command line does."""
    import operator

    low, high = NUMBER_RANGES[name]
    expected = f"expected a whole number in [{low}, {high}]"
    try:
        whole = operator.index(value)  # int and NumPy's integers
    except TypeError:
        whole = None
    if whole is None or isinstance(value, bool):
        return f"{expected}, got {value!r}"
    if not low <= whole <= high:
        return f"{expected}, got {whole}"
    return None
