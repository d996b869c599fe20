"""pcapclass: passive traffic analyzer and PCAP classifier for GEMOS 4, Sesam/ISENet and
C.M.I. networks. The library entry point is :func:`analyzer.pipeline.analyze`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pcapclass")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
