"""pcapclass: passive traffic analyzer and PCAP classifier for GEMOS 4, Sesam/ISENet and
C.M.I. networks. The library entry point is :func:`analyzer.pipeline.analyze`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pcapclass")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"


def baseline(dataset, site=None, date=None):  # type: ignore[no-untyped-def]
    """New communication pairs of a batch dataset ("new since last night"); see
    analyzer.batch.baseline.baseline. Imported on first use: `pcapclass --help` stays fast."""
    from .batch.baseline import baseline as _baseline

    return _baseline(dataset, site=site, date=date)


def open_dataset(path):  # type: ignore[no-untyped-def]
    """One capture's output folder or a batch dataset as pandas frames with the
    contract's dtypes; see analyzer.dataset.open_dataset. Imported on first use."""
    from .dataset import open_dataset as _open_dataset

    return _open_dataset(path)
