import torch

# Small models on 2-core CI machines: one thread is faster (no thread hand-offs on tiny ops)
# and makes timings of other processes on the machine irrelevant to the tests.
torch.set_num_threads(1)
