"""decompnet-tf: decompNet (Park & Berg, ICLR 2016 workshop) in TensorFlow/Keras."""

__version__ = "0.1.0"
