"""pystac reading http(s) documents with a timeout: its own reader waits on a stalled server
forever. Kept apart from `bandfusion.io.remote` so that opening a remote raster never imports
pystac."""

from __future__ import annotations

from bandfusion.io.remote import fetch_text
from pystac.stac_io import DefaultStacIO


class TimeoutStacIO(DefaultStacIO):
    """pystac's reader, fetching http(s) hrefs through `fetch_text` (timeout, size bound, one
    line naming the URL on failure); local files as pystac reads them.

    `pystac.Item.from_file(url, stac_io=TimeoutStacIO())`; an ItemCollection, which pystac
    reads with no StacIO, is `pystac.ItemCollection.from_dict(fetch_json(url))`.
    """

    def __init__(self, timeout: float | None = None) -> None:
        super().__init__()
        self.timeout = timeout

    def read_text_from_href(self, href: str) -> str:
        if href.startswith(("http://", "https://")):
            return fetch_text(href, timeout=self.timeout)
        return super().read_text_from_href(href)
