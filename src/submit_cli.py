"""`submit` subcommands: send the compiled pipeline to Vertex AI or a KFP endpoint."""

from __future__ import annotations

import argparse


def add_submit_parser(commands: argparse._SubParsersAction) -> None:
    submit = commands.add_parser("submit", help="submit the compiled pipeline to Vertex AI or KFP")
    submit.set_defaults(handler=lambda args: (print("submit: not implemented yet"), 2)[1])
