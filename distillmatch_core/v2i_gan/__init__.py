"""V2I-GAN: visible -> pseudo-infrared translation (DistillMatch Sec. 3.5), one module per responsibility.

config.py             typed configs (networks, losses, training run), YAML-loadable
semantic_features.py  frozen semantic-feature extractor feeding STFA (stand-in for DINOv2)
generator.py          encoder-decoder generator with STFA in the encoder
discriminator.py      PatchGAN discriminator
losses.py             LSGAN, cycle, identity, reconstruction, structured gradient alignment
trainer.py            one optimisation step, cycle (unpaired) or paired mode
training_data.py      in-memory random-crop batches from the aligned pairs
checkpoint.py         generator / training-state files (torch.load weights_only=True)
image_tensors.py      uint8 images <-> [-1, 1] tensors
translator.py         V2IGanTranslator: uint8 RGB -> uint8 pseudo-infrared, same size
translation_quality.py  L1 / SSIM / histogram distances to real infrared, baselines

Importing this package does not import torch; the modules above do.
"""
