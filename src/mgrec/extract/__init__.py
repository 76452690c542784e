"""Feature extraction: raw videos (or SMG skeleton CSVs) -> one (T, C) feature file per video.

`video` decodes and windows frames, `backbones` turns frames into features, `skeleton` does the
same for Kinect joints, `videomae_convert` turns official VideoMAE V2 checkpoints into
transformers folders, and `run` is the `mgrec extract` job (resumable, shardable, fusing).
"""

# Bounds of `mgrec extract`'s whole-number options, checked when its command line is parsed (this module
# imports nothing, so the parser can read them); the frame size also by EfficientNet-Lite0, for the API.
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
