"""npgan: a small, fast NumPy GAN, CGAN and InfoGAN for MNIST — the code of 第21章 生成对抗网络."""

from .data import load_fashion_mnist, load_mnist
from .gan import CGAN, GAN, GANConfig, one_hot
from .infogan import InfoGAN, InfoGANConfig
from .dcgan import DCGAN, DCGANConfig
from .wgan import WGAN, WGANConfig
from .models import BOOK_EPOCHS, book_config, build
from .layers import Dropout, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh, mlp
from .losses import bce_with_logits, sigmoid
from .optim import SGD, Adam
from .plot import SnapshotTable, image_grid, plot_history, show_grid
from .train import History, TrainingDiverged, notebook_progress, train

__version__ = "0.1.0"
