"""The two MNIST ConvNets: the classic reference network and the fast one."""

from __future__ import annotations

from torch import nn

__all__ = ["ReferenceNet", "FastNet"]


class ReferenceNet(nn.Module):
    """The network of the classic PyTorch MNIST example.

    conv 32 -> conv 64 -> max-pool -> dropout -> fc 128 -> dropout -> fc 10.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(9216, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FastNet(nn.Module):
    """A small ConvNet shaped for throughput on CPUs and small GPUs.

    The 28x28 image is folded into 4 channels of 14x14 (pixel-unshuffle), which
    costs nothing and quarters the work of every later layer; then three
    conv-BN-ReLU blocks (two followed by max-pooling) and a linear classifier.
    """

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 64)) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            nn.PixelUnshuffle(2),
            *_conv_bn_relu(4, c1),
            nn.MaxPool2d(2),
            *_conv_bn_relu(c1, c2),
            nn.MaxPool2d(2),
            *_conv_bn_relu(c2, c3),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(c3 * 3 * 3, 10)

    def forward(self, x):
        return self.classifier(self.features(x))
