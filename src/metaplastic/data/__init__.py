"""Digits and two-digit MNIST images."""

from metaplastic.data.mnist import DataError, DigitSource, load_digits
from metaplastic.data.two_digit import CLASSES, TwoDigitSpec, build_class

__all__ = ["CLASSES", "DataError", "DigitSource", "TwoDigitSpec", "build_class", "load_digits"]
