"""`eanno-client`: annotate CT volumes on an EfficientAnno (Triton) server and write labels for review."""

from __future__ import annotations

import logging
import sys

import click
from eanno_contracts.cli import ErrorGroup

from eanno_client.annotate_cli import annotate
from eanno_client.loadtest_cli import loadtest
from eanno_client.rank_cli import rank
from eanno_client.review_cli import review, status
from eanno_client.server_cli import health, models
from eanno_client.versions import version_option

log = logging.getLogger("eanno_client")


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--url",
    "url",
    envvar="EANNO_URL",
    multiple=True,
    is_eager=True,
    metavar="HOST:PORT",
    help="With --version: also show the model that this server serves.",
)
@version_option
def main(verbose: int, url: tuple[str, ...]) -> None:
    """Annotate pancreatic lesions in CT with an EfficientAnno server.

    \b
    eanno-client health                      is the server up, which model, which threshold
    eanno-client annotate ct.nii.gz --out labels/
    eanno-client annotate dicom_series/ cases.txt --out labels/ --continue
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# Each command lives in its own module; those modules import their heavy libraries inside the commands,
# so `--help` stays fast. The server commands get --version from connection_options, the others here.
for _command in (annotate, health, models, loadtest):
    main.add_command(_command)
main.add_command(version_option(review))
main.add_command(version_option(status))
for _sub in status.commands.values():
    version_option(_sub)
main.add_command(version_option(rank))

if __name__ == "__main__":
    main()
