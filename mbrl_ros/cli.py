"""The `mbrl-ros` command."""

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mbrl-ros", description=__doc__)
    parser.parse_args(argv)
    return 0
